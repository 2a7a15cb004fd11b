// Block-device and file I/O that Node's fs does not offer: device geometry ioctls, O_DIRECT reads
// into aligned memory, fadvise, SEEK_DATA/SEEK_HOLE, filesystem freeze/thaw, reflink clones, hole
// punching and device zeroing. Each failure is a Node-shaped system error (errors.h).
#include <napi.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>
#include <string>
#include "args.h"
#include "errors.h"

namespace strata {
namespace {

constexpr size_t kMemoryAlign = 4096;       // satisfies every device's DMA alignment
constexpr int64_t kMaxReadBytes = 1LL << 30;  // one read's buffer; the engine asks for a few MiB
constexpr size_t kKeptBounceBytes = size_t{16} << 20;  // bounce memory a pool thread keeps between reads
constexpr unsigned kAioEvents = 256;          // reads one pool thread has in flight at once

Napi::Value Undefined(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

void CheckIoctl(const Napi::CallbackInfo& info, int rc, const char* syscall) {
  if (rc != 0) throw SystemError(info.Env(), errno, syscall);
}

Napi::Value DeviceSizeBytes(const Napi::CallbackInfo& info) {
  uint64_t size = 0;
  CheckIoctl(info, ioctl(RequireFd(info[0], "fd"), BLKGETSIZE64, &size), "ioctl(BLKGETSIZE64)");
  return Napi::Number::New(info.Env(), static_cast<double>(size));
}

Napi::Value LogicalSectorSize(const Napi::CallbackInfo& info) {
  int size = 0;
  CheckIoctl(info, ioctl(RequireFd(info[0], "fd"), BLKSSZGET, &size), "ioctl(BLKSSZGET)");
  return Napi::Number::New(info.Env(), size);
}

Napi::Value PhysicalSectorSize(const Napi::CallbackInfo& info) {
  unsigned int size = 0;
  CheckIoctl(info, ioctl(RequireFd(info[0], "fd"), BLKPBSZGET, &size), "ioctl(BLKPBSZGET)");
  return Napi::Number::New(info.Env(), size);
}

// The alignment O_DIRECT needs on fd: a device's logical sector, or 512 for a file (the smallest
// any Linux filesystem accepts; the kernel still refuses less on 4K-sector disks).
int DirectAlignment(Napi::Env env, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) throw SystemError(env, errno, "fstat");
  if (!S_ISBLK(st.st_mode)) return 512;
  int sector = 0;
  if (ioctl(fd, BLKSSZGET, &sector) != 0) throw SystemError(env, errno, "ioctl(BLKSSZGET)");
  return sector;
}

// pread on the libuv pool into posix_memalign'd memory that JS then owns without a copy.
class ReadDirectWorker : public Napi::AsyncWorker {
 public:
  ReadDirectWorker(Napi::Env env, int fd, int64_t offset, size_t length, size_t sector)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), offset_(offset), length_(length), sector_(sector) {}
  ~ReadDirectWorker() override { std::free(buf_); }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    void* mem = nullptr;
    if (posix_memalign(&mem, kMemoryAlign, length_ == 0 ? kMemoryAlign : length_) != 0) {
      error_ = ENOMEM;
      return;
    }
    buf_ = static_cast<uint8_t*>(mem);
    while (read_ < length_) {
      ssize_t n = pread(fd_, buf_ + read_, length_ - read_, offset_ + static_cast<int64_t>(read_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = errno;
        return;
      }
      if (n == 0) break;
      read_ += static_cast<size_t>(n);
      // Short only at the end; an unaligned count means the end, and retrying would be refused.
      if (read_ % sector_ != 0) break;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (error_ != 0) {
      deferred_.Reject(SystemError(env, error_, "pread").Value());
      return;
    }
    uint8_t* data = buf_;
    buf_ = nullptr;
    // Electron's V8 sandbox forbids external memory; NewOrCopy copies there and frees ours at once.
    deferred_.Resolve(Napi::Buffer<uint8_t>::NewOrCopy(env, data, read_, [](Napi::Env, uint8_t* p) { std::free(p); }));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const int fd_;
  const int64_t offset_;
  const size_t length_;
  const size_t sector_;
  uint8_t* buf_ = nullptr;
  size_t read_ = 0;
  int error_ = 0;
};

Napi::Value ReadDirect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = RequireFd(info[0], "fd");
  const int64_t offset = RequireWholeNumber(info[1], "offsetBytes");
  const int64_t length = RequireWholeNumber(info[2], "lengthBytes");
  const int sector = DirectAlignment(env, fd);
  if (offset % sector != 0 || length % sector != 0) {
    throw SystemError(env, EINVAL, "readDirect",
                      "offsetBytes (" + std::to_string(offset) + ") and lengthBytes (" + std::to_string(length) +
                          ") must be multiples of the logical sector size (" + std::to_string(sector) + ")");
  }
  if (length > kMaxReadBytes) throw SystemError(env, EINVAL, "readDirect", "one read is at most 1 GiB");
  auto* worker = new ReadDirectWorker(env, fd, offset, static_cast<size_t>(length), static_cast<size_t>(sector));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// Several O_DIRECT reads in one task, each into the caller's memory at its own offset: the engine's
// scattered small runs (a tracked backup's changed blocks) cost one trip to the libuv pool per batch
// instead of one per run, and no buffer per run crosses into JS. A run lands directly in the target
// when its address is page-aligned there, else in aligned bounce memory and is copied.
class ReadRunsWorker : public Napi::AsyncWorker {
 public:
  struct Run {
    size_t targetOffset;
    size_t length;
    int64_t offset;
    size_t read = 0;
  };

  ReadRunsWorker(Napi::Env env, int fd, Napi::Uint8Array target, std::vector<Run> runs, size_t sector)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), target_(Napi::Persistent(target)),
        data_(target.Data()), runs_(std::move(runs)), sector_(sector) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // Where each run lands: in place when its address is aligned, else in this thread's bounce
    // memory and copied. A SharedArrayBuffer's memory comes from malloc, 16 bytes past a page
    // boundary, so a backup's windows always bounce: the memory is kept per pool thread, since a
    // fresh mapping per read (page faults, zeroing, unmapping) cost more than the copy.
    std::vector<uint8_t*> bufs(runs_.size());
    std::vector<bool> bounced(runs_.size(), false);
    size_t bounceBytes = 0;
    for (size_t i = 0; i < runs_.size(); i++) {
      uint8_t* dst = data_ + runs_[i].targetOffset;
      if (reinterpret_cast<uintptr_t>(dst) % kMemoryAlign == 0) {
        bufs[i] = dst;
        continue;
      }
      bounced[i] = true;
      bounceBytes += RoundUp(runs_[i].length == 0 ? 1 : runs_[i].length, kMemoryAlign);
    }
    if (bounceBytes > 0) {
      uint8_t* base = Bounce(bounceBytes);
      if (base == nullptr) {
        error_ = ENOMEM;
        return;
      }
      for (size_t i = 0; i < runs_.size(); i++) {
        if (!bounced[i]) continue;
        bufs[i] = base;
        base += RoundUp(runs_[i].length == 0 ? 1 : runs_[i].length, kMemoryAlign);
      }
    }
    // All runs are submitted at once (Linux AIO): a device that works through its queue one request
    // at a time (a loop device's worker) takes a batch about twice as fast as reads one by one.
    // Where AIO is unavailable, or a run came back short of its length, preads finish the run
    // (a read short of a whole sector is the end of the device).
    if (!SubmitAll(bufs)) return;
    for (size_t i = 0; i < runs_.size(); i++) {
      Run& r = runs_[i];
      while (r.read < r.length && r.read % sector_ == 0) {
        ssize_t n = pread(fd_, bufs[i] + r.read, r.length - r.read, r.offset + static_cast<int64_t>(r.read));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          error_ = errno;
          return;
        }
        if (n == 0) break;  // the device ended
        r.read += static_cast<size_t>(n);
      }
      if (bounced[i]) std::memcpy(data_ + r.targetOffset, bufs[i], r.read);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (error_ != 0) {
      deferred_.Reject(SystemError(env, error_, "pread").Value());
      return;
    }
    auto counts = Napi::Float64Array::New(env, runs_.size());
    for (size_t i = 0; i < runs_.size(); i++) counts[i] = static_cast<double>(runs_[i].read);
    deferred_.Resolve(counts);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const int fd_;
  Napi::Reference<Napi::Uint8Array> target_;  // keeps the memory alive until the task ends
  uint8_t* const data_;
  std::vector<Run> runs_;
  const size_t sector_;
  int error_ = 0;
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> oneOff_;

  static size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

  // Aligned bounce memory of at least `bytes`, null if it cannot be had: this pool thread's, kept
  // for its next task, up to kKeptBounceBytes; beyond that the task's own, freed when it ends.
  uint8_t* Bounce(size_t bytes) {
    if (bytes > kKeptBounceBytes) {
      void* mem = nullptr;
      if (posix_memalign(&mem, kMemoryAlign, bytes) != 0) return nullptr;
      oneOff_.reset(static_cast<uint8_t*>(mem));
      return oneOff_.get();
    }
    struct Kept {
      uint8_t* mem = nullptr;
      size_t size = 0;
      ~Kept() { std::free(mem); }
    };
    thread_local Kept kept;
    if (kept.size >= bytes) return kept.mem;
    std::free(kept.mem);
    kept.mem = nullptr;
    kept.size = 0;
    void* mem = nullptr;
    if (posix_memalign(&mem, kMemoryAlign, bytes) != 0) return nullptr;
    kept.mem = static_cast<uint8_t*>(mem);
    kept.size = bytes;
    return kept.mem;
  }

  // Reads every run with io_submit and waits for them all; false (error_ set) on a read error. A
  // run that could not be submitted, or came back short, is left to the preads. Each pool thread
  // keeps one AIO context for good: setting one up and tearing it down costs milliseconds.
  bool SubmitAll(const std::vector<uint8_t*>& bufs) {
    thread_local aio_context_t ctx = 0;
    if (ctx == 0 && syscall(SYS_io_setup, kAioEvents, &ctx) != 0) {
      ctx = 0;
      return true;  // no AIO here: preads only
    }
    std::vector<iocb> cbs(std::min(runs_.size(), static_cast<size_t>(kAioEvents)));
    std::vector<iocb*> ptrs(cbs.size());
    std::vector<io_event> events(cbs.size());
    for (size_t first = 0; first < runs_.size(); first += cbs.size()) {
      const size_t n = std::min(cbs.size(), runs_.size() - first);
      for (size_t j = 0; j < n; j++) {
        const size_t i = first + j;
        std::memset(&cbs[j], 0, sizeof(iocb));
        cbs[j].aio_fildes = static_cast<uint32_t>(fd_);
        cbs[j].aio_lio_opcode = IOCB_CMD_PREAD;
        cbs[j].aio_buf = reinterpret_cast<uint64_t>(bufs[i]);
        cbs[j].aio_nbytes = runs_[i].length;
        cbs[j].aio_offset = runs_[i].offset;
        cbs[j].aio_data = i;
        ptrs[j] = &cbs[j];
      }
      size_t submitted = 0;
      while (submitted < n) {
        long k = syscall(SYS_io_submit, ctx, static_cast<long>(n - submitted), ptrs.data() + submitted);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;  // the rest is read by the preads
        submitted += static_cast<size_t>(k);
      }
      for (size_t done = 0; done < submitted;) {
        long got = syscall(SYS_io_getevents, ctx, 1L, static_cast<long>(submitted - done), events.data(), nullptr);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
          // Reads may still be landing in our buffers: destroying the context waits for them.
          error_ = errno;
          syscall(SYS_io_destroy, ctx);
          ctx = 0;
          return false;
        }
        for (long e = 0; e < got; e++) {
          if (events[e].res < 0) {
            if (error_ == 0) error_ = static_cast<int>(-events[e].res);
          } else {
            runs_[events[e].data].read = static_cast<size_t>(events[e].res);
          }
        }
        done += static_cast<size_t>(got);
      }
    }
    return error_ == 0;
  }
};

// readDirectRuns(fd, target, runs: Float64Array [targetOffset, length, offset, ...]) -> Promise<Float64Array>
// of the bytes each run read (less than asked only where the device ends).
Napi::Value ReadDirectRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = RequireFd(info[0], "fd");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "target must be a Uint8Array");
  }
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(env, "runs must be a Float64Array of [targetOffset, length, offset] triples");
  }
  auto target = info[1].As<Napi::Uint8Array>();
  auto triples = info[2].As<Napi::Float64Array>();
  if (triples.ElementLength() % 3 != 0) throw Napi::TypeError::New(env, "runs must hold [targetOffset, length, offset] triples");
  const int sector = DirectAlignment(env, fd);
  std::vector<ReadRunsWorker::Run> runs;
  runs.reserve(triples.ElementLength() / 3);
  for (size_t i = 0; i < triples.ElementLength(); i += 3) {
    const double to = triples[i], len = triples[i + 1], off = triples[i + 2];
    if (!(to >= 0 && len >= 0 && off >= 0) || to + len > static_cast<double>(target.ByteLength()) || len > static_cast<double>(kMaxReadBytes)) {
      throw SystemError(env, EINVAL, "readDirectRuns", "a run lies outside the target or is longer than 1 GiB");
    }
    const int64_t offset = static_cast<int64_t>(off), length = static_cast<int64_t>(len);
    if (offset % sector != 0 || length % sector != 0 || static_cast<double>(offset) != off || static_cast<double>(length) != len) {
      throw SystemError(env, EINVAL, "readDirectRuns",
                        "offsets (" + std::to_string(offset) + ") and lengths (" + std::to_string(length) +
                            ") must be multiples of the logical sector size (" + std::to_string(sector) + ")");
    }
    runs.push_back({static_cast<size_t>(to), static_cast<size_t>(length), offset});
  }
  auto* worker = new ReadRunsWorker(env, fd, target, std::move(runs), static_cast<size_t>(sector));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

int ParseAdvice(const Napi::Value& v) {
  const std::string advice = RequireString(v, "advice");
  if (advice == "normal") return POSIX_FADV_NORMAL;
  if (advice == "sequential") return POSIX_FADV_SEQUENTIAL;
  if (advice == "random") return POSIX_FADV_RANDOM;
  if (advice == "willneed") return POSIX_FADV_WILLNEED;
  if (advice == "dontneed") return POSIX_FADV_DONTNEED;
  if (advice == "noreuse") return POSIX_FADV_NOREUSE;
  throw SystemError(v.Env(), EINVAL, "posix_fadvise", "unknown advice \"" + advice + "\"");
}

Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  const int fd = RequireFd(info[0], "fd");
  const int64_t offset = RequireWholeNumber(info[1], "offsetBytes");
  const int64_t length = RequireWholeNumber(info[2], "lengthBytes");
  const int advice = ParseAdvice(info[3]);
  const int rc = posix_fadvise(fd, offset, length, advice);  // returns the error, leaves errno alone
  if (rc != 0) throw SystemError(info.Env(), rc, "posix_fadvise");
  return Undefined(info);
}

Napi::Value Seek(const Napi::CallbackInfo& info, int whence, const char* syscall) {
  const off_t at = lseek(RequireFd(info[0], "fd"), RequireWholeNumber(info[1], "offsetBytes"), whence);
  if (at >= 0) return Napi::Number::New(info.Env(), static_cast<double>(at));
  if (errno == ENXIO) return Napi::Number::New(info.Env(), -1);  // at or past the end: nothing more
  throw SystemError(info.Env(), errno, syscall);
}

Napi::Value SeekData(const Napi::CallbackInfo& info) { return Seek(info, SEEK_DATA, "lseek(SEEK_DATA)"); }
Napi::Value SeekHole(const Napi::CallbackInfo& info) { return Seek(info, SEEK_HOLE, "lseek(SEEK_HOLE)"); }

Napi::Value Freeze(const Napi::CallbackInfo& info) {
  int unused = 0;
  CheckIoctl(info, ioctl(RequireFd(info[0], "fd"), FIFREEZE, &unused), "ioctl(FIFREEZE)");
  return Undefined(info);
}

Napi::Value Thaw(const Napi::CallbackInfo& info) {
  int unused = 0;
  CheckIoctl(info, ioctl(RequireFd(info[0], "fd"), FITHAW, &unused), "ioctl(FITHAW)");
  return Undefined(info);
}

Napi::Value CloneFile(const Napi::CallbackInfo& info) {
  const int src = RequireFd(info[0], "srcFd");
  const int dst = RequireFd(info[1], "dstFd");
  CheckIoctl(info, ioctl(dst, FICLONE, src), "ioctl(FICLONE)");
  return Undefined(info);
}

Napi::Value CloneRange(const Napi::CallbackInfo& info) {
  file_clone_range range{};
  range.src_fd = RequireFd(info[0], "srcFd");
  range.src_offset = static_cast<uint64_t>(RequireWholeNumber(info[1], "srcOffsetBytes"));
  range.src_length = static_cast<uint64_t>(RequireWholeNumber(info[2], "lengthBytes"));
  const int dst = RequireFd(info[3], "dstFd");
  range.dest_offset = static_cast<uint64_t>(RequireWholeNumber(info[4], "dstOffsetBytes"));
  CheckIoctl(info, ioctl(dst, FICLONERANGE, &range), "ioctl(FICLONERANGE)");
  return Undefined(info);
}

Napi::Value PunchHole(const Napi::CallbackInfo& info) {
  const int fd = RequireFd(info[0], "fd");
  const int64_t offset = RequireWholeNumber(info[1], "offsetBytes");
  const int64_t length = RequireWholeNumber(info[2], "lengthBytes");
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0) {
    throw SystemError(info.Env(), errno, "fallocate(PUNCH_HOLE)");
  }
  return Undefined(info);
}

Napi::Value ZeroOut(const Napi::CallbackInfo& info) {
  const int fd = RequireFd(info[0], "fd");
  uint64_t range[2] = {static_cast<uint64_t>(RequireWholeNumber(info[1], "offsetBytes")),
                       static_cast<uint64_t>(RequireWholeNumber(info[2], "lengthBytes"))};
  CheckIoctl(info, ioctl(fd, BLKZEROOUT, range), "ioctl(BLKZEROOUT)");
  return Undefined(info);
}

}  // namespace

void RegisterBlockIo(Napi::Env env, Napi::Object exports) {
  exports.Set("deviceSizeBytes", Napi::Function::New(env, DeviceSizeBytes));
  exports.Set("logicalSectorSize", Napi::Function::New(env, LogicalSectorSize));
  exports.Set("physicalSectorSize", Napi::Function::New(env, PhysicalSectorSize));
  exports.Set("readDirect", Napi::Function::New(env, ReadDirect));
  exports.Set("readDirectRuns", Napi::Function::New(env, ReadDirectRuns));
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
