// Block-device and file I/O that Node's fs does not offer: device geometry ioctls, O_DIRECT reads
// into aligned memory, fadvise, SEEK_DATA/SEEK_HOLE, filesystem freeze/thaw, reflink clones, hole
// punching and device zeroing.
#include <napi.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include "errors.h"

namespace strata {
namespace {

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(ToInt64(info[i], "fd"));
}

Napi::Value DeviceSizeBytes(const Napi::CallbackInfo& info) {
  uint64_t size = 0;
  if (ioctl(FdArg(info, 0), BLKGETSIZE64, &size) != 0) throw SystemError(info.Env(), errno, "ioctl(BLKGETSIZE64)");
  return Napi::Number::New(info.Env(), static_cast<double>(size));
}

Napi::Value LogicalSectorSize(const Napi::CallbackInfo& info) {
  int size = 0;
  if (ioctl(FdArg(info, 0), BLKSSZGET, &size) != 0) throw SystemError(info.Env(), errno, "ioctl(BLKSSZGET)");
  return Napi::Number::New(info.Env(), size);
}

Napi::Value PhysicalSectorSize(const Napi::CallbackInfo& info) {
  unsigned int size = 0;
  if (ioctl(FdArg(info, 0), BLKPBSZGET, &size) != 0) throw SystemError(info.Env(), errno, "ioctl(BLKPBSZGET)");
  return Napi::Number::New(info.Env(), size);
}

constexpr size_t kAlign = 4096;

// pread on the libuv pool into posix_memalign'd memory, handed to JS without a copy.
class ReadDirectWorker : public Napi::AsyncWorker {
 public:
  ReadDirectWorker(Napi::Env env, int fd, int64_t offset, size_t length)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), offset_(offset), length_(length) {}
  ~ReadDirectWorker() override { std::free(buf_); }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (posix_memalign(reinterpret_cast<void**>(&buf_), kAlign, length_ == 0 ? kAlign : length_) != 0) {
      err_ = ENOMEM;
      return;
    }
    size_t done = 0;
    while (done < length_) {
      ssize_t n = pread(fd_, buf_ + done, length_ - done, offset_ + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        err_ = errno;
        return;
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
      // A short read in the middle of a device only happens at its end; O_DIRECT needs aligned retries.
      if (done % kAlign != 0) break;
    }
    read_ = done;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(SystemError(env, err_, "pread(O_DIRECT)").Value());
      return;
    }
    uint8_t* data = buf_;
    buf_ = nullptr;
    auto buffer = Napi::Buffer<uint8_t>::New(env, data, read_, [](Napi::Env, uint8_t* p) { std::free(p); });
    deferred_.Resolve(buffer);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  int64_t offset_;
  size_t length_;
  uint8_t* buf_ = nullptr;
  size_t read_ = 0;
  int err_ = 0;
};

Napi::Value ReadDirect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  int64_t offset = ToInt64(info[1], "offsetBytes");
  int64_t length = ToInt64(info[2], "lengthBytes");
  if (offset % 512 != 0 || length % 512 != 0) {
    throw SystemError(env, EINVAL, "readDirect", "offset and length must be multiples of the logical sector size");
  }
  if (length > (1LL << 30)) throw Napi::RangeError::New(env, "readDirect reads at most 1 GiB at a time");
  auto* worker = new ReadDirectWorker(env, fd, offset, static_cast<size_t>(length));
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  std::string advice = info[3].As<Napi::String>().Utf8Value();
  int a;
  if (advice == "normal") a = POSIX_FADV_NORMAL;
  else if (advice == "sequential") a = POSIX_FADV_SEQUENTIAL;
  else if (advice == "random") a = POSIX_FADV_RANDOM;
  else if (advice == "willneed") a = POSIX_FADV_WILLNEED;
  else if (advice == "dontneed") a = POSIX_FADV_DONTNEED;
  else if (advice == "noreuse") a = POSIX_FADV_NOREUSE;
  else throw Napi::TypeError::New(info.Env(), "unknown fadvise advice " + advice);
  int rc = posix_fadvise(FdArg(info, 0), ToInt64(info[1], "offsetBytes"), ToInt64(info[2], "lengthBytes"), a);
  if (rc != 0) throw SystemError(info.Env(), rc, "posix_fadvise");
  return info.Env().Undefined();
}

Napi::Value Seek(const Napi::CallbackInfo& info, int whence, const char* name) {
  off_t r = lseek(FdArg(info, 0), ToInt64(info[1], "offsetBytes"), whence);
  if (r < 0) {
    if (errno == ENXIO) return Napi::Number::New(info.Env(), -1);
    throw SystemError(info.Env(), errno, name);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

Napi::Value SeekData(const Napi::CallbackInfo& info) { return Seek(info, SEEK_DATA, "lseek(SEEK_DATA)"); }
Napi::Value SeekHole(const Napi::CallbackInfo& info) { return Seek(info, SEEK_HOLE, "lseek(SEEK_HOLE)"); }

Napi::Value Freeze(const Napi::CallbackInfo& info) {
  int arg = 0;
  if (ioctl(FdArg(info, 0), FIFREEZE, &arg) != 0) throw SystemError(info.Env(), errno, "ioctl(FIFREEZE)");
  return info.Env().Undefined();
}

Napi::Value Thaw(const Napi::CallbackInfo& info) {
  int arg = 0;
  if (ioctl(FdArg(info, 0), FITHAW, &arg) != 0) throw SystemError(info.Env(), errno, "ioctl(FITHAW)");
  return info.Env().Undefined();
}

Napi::Value CloneFile(const Napi::CallbackInfo& info) {
  if (ioctl(FdArg(info, 1), FICLONE, FdArg(info, 0)) != 0) throw SystemError(info.Env(), errno, "ioctl(FICLONE)");
  return info.Env().Undefined();
}

Napi::Value CloneRange(const Napi::CallbackInfo& info) {
  file_clone_range r{};
  r.src_fd = FdArg(info, 0);
  r.src_offset = static_cast<uint64_t>(ToInt64(info[1], "srcOffset"));
  r.src_length = static_cast<uint64_t>(ToInt64(info[2], "lengthBytes"));
  r.dest_offset = static_cast<uint64_t>(ToInt64(info[4], "dstOffset"));
  if (ioctl(FdArg(info, 3), FICLONERANGE, &r) != 0) throw SystemError(info.Env(), errno, "ioctl(FICLONERANGE)");
  return info.Env().Undefined();
}

Napi::Value PunchHole(const Napi::CallbackInfo& info) {
  if (fallocate(FdArg(info, 0), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ToInt64(info[1], "offsetBytes"), ToInt64(info[2], "lengthBytes")) != 0) {
    throw SystemError(info.Env(), errno, "fallocate(PUNCH_HOLE)");
  }
  return info.Env().Undefined();
}

Napi::Value ZeroOut(const Napi::CallbackInfo& info) {
  uint64_t range[2] = {static_cast<uint64_t>(ToInt64(info[1], "offsetBytes")), static_cast<uint64_t>(ToInt64(info[2], "lengthBytes"))};
  if (ioctl(FdArg(info, 0), BLKZEROOUT, range) != 0) throw SystemError(info.Env(), errno, "ioctl(BLKZEROOUT)");
  return info.Env().Undefined();
}

}  // namespace

void RegisterBlockIo(Napi::Env env, Napi::Object exports) {
  exports.Set("deviceSizeBytes", Napi::Function::New(env, DeviceSizeBytes));
  exports.Set("logicalSectorSize", Napi::Function::New(env, LogicalSectorSize));
  exports.Set("physicalSectorSize", Napi::Function::New(env, PhysicalSectorSize));
  exports.Set("readDirect", Napi::Function::New(env, ReadDirect));
  exports.Set("fadvise", Napi::Function::New(env, Fadvise));
  exports.Set("seekData", Napi::Function::New(env, SeekData));
  exports.Set("seekHole", Napi::Function::New(env, SeekHole));
  exports.Set("freeze", Napi::Function::New(env, Freeze));
  exports.Set("thaw", Napi::Function::New(env, Thaw));
  exports.Set("cloneFile", Napi::Function::New(env, CloneFile));
  exports.Set("cloneRange", Napi::Function::New(env, CloneRange));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole));
  exports.Set("zeroOut", Napi::Function::New(env, ZeroOut));
}

}  // namespace strata
