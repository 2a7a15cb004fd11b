// The in-kernel half of the 'bpf' live-tracker backend: two hand-assembled eBPF programs on the
// block tracepoints block_bio_queue and block_rq_complete, which record every write, discard and
// write-zeroes of one disk's sector range in a kernel hash map, and a drain that empties that map
// from userspace. Raw bpf(2) and perf_event_open(2) only: no libbpf, no clang, nothing to install.
//
// What the programs do, per event: compare the event's dev_t with the tracked disk's (an
// immediate), skip reads, count a zero-length flush in counters[1], keep only events that overlap
// [start, end), then insert the key {sector, nr_sector, kind 0} into "marks" with BPF_NOEXIST. A
// key that is already there (EEXIST: the same range written twice, or its queue and completion
// events) needs nothing more. Any other failure (E2BIG: the map is full) adds one to counters[0].
// The queue program also counts reads of exactly the first sector in counters[2]: the sentinel
// read that proves the programs see this device's events.
//
// Why the drain cannot lose a mark. Each hash bucket has a lock; an insert takes it, and so does
// BPF_MAP_LOOKUP_AND_DELETE_BATCH, which copies a bucket's entries and unlinks them in the same
// critical section. An insert is therefore either before the drain's visit of its bucket (the
// entry is returned now) or after it (it creates a fresh entry, returned by the next drain). An
// insert that finds its key present (EEXIST) found it before the drain visited the bucket, so the
// drain returns that key. Nothing ever modifies a value in place and nothing reads and then
// deletes in two steps, which is what would open a window. And the programs run synchronously in
// the tracepoint (the writer's own context for the queue event, the completion path for the
// other), so every event emitted before a drain starts is already in the map: a drain is a barrier.
//
// Overflow. A full map refuses new keys; the program cannot wait, so it counts the refusal. The
// drain returns the running counters and the TypeScript side turns any increase into lost events,
// i.e. a gap: the next backup resyncs, no block is ever silently dropped. The kernel's own skips
// are reported too: a tracepoint that fires while another BPF program runs on that CPU (an
// interrupt on top of a program, frequent for completions under load) does not run ours; the
// kernel counts those in each program's recursion_misses, which the drain returns per program
// (bpf-probe.ts decides: a skipped queue event is a gap, a skipped completion re-marks the ranges
// drained just before the last take).
//
// Attaching. A tracepoint's BPF programs hang off the tracepoint itself, not off a perf event or a
// CPU: one perf event (pid -1, on one online CPU) with PERF_EVENT_IOC_SET_BPF runs the program for
// every CPU's events. (A second perf event per CPU would attach the same program again, which the
// kernel refuses with EEXIST.) The program returns 0, so no perf sample is ever written.
#include <napi.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>
#include "args.h"
#include "errors.h"

namespace strata {
namespace {

// ---- bpf(2) and perf_event_open(2) ---------------------------------------------------------------

long Bpf(int cmd, union bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

// Maps are charged to the memory cgroup on current kernels; older ones charge RLIMIT_MEMLOCK and
// answer EPERM when it is too small. Raise it once, then retry.
bool RaiseMemlock() {
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  return setrlimit(RLIMIT_MEMLOCK, &unlimited) == 0;
}

int CreateMap(uint32_t type, uint32_t keySize, uint32_t valueSize, uint32_t maxEntries, const char* name) {
  for (int attempt = 0; attempt < 2; attempt++) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.map_type = type;
    attr.key_size = keySize;
    attr.value_size = valueSize;
    attr.max_entries = maxEntries;
    std::strncpy(attr.map_name, name, sizeof(attr.map_name) - 1);
    int fd = static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
    if (fd >= 0) return fd;
    if (errno != EPERM || attempt > 0 || !RaiseMemlock()) return -1;
  }
  return -1;
}

// ---- a tiny assembler ------------------------------------------------------------------------------

// Our own encoders for the few instruction forms the programs use (eBPF ISA: opcode = class |
// size/op | source; registers r0-r10, r10 the read-only frame pointer).
enum Reg : uint8_t { R0 = 0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP };

constexpr uint8_t kClassLd = 0x00, kClassLdx = 0x01, kClassSt = 0x02, kClassStx = 0x03, kClassJmp = 0x05, kClassJmp32 = 0x06,
                  kClassAlu64 = 0x07;
constexpr uint8_t kSizeW = 0x00, kSizeB = 0x10, kSizeDW = 0x18;
constexpr uint8_t kModeImm = 0x00, kModeMem = 0x60, kModeAtomic = 0xc0;
constexpr uint8_t kSrcK = 0x00, kSrcX = 0x08;
constexpr uint8_t kAluAdd = 0x00, kAluMov = 0xb0;
constexpr uint8_t kJa = 0x00, kJeq = 0x10, kJge = 0x30, kJne = 0x50, kJle = 0xb0, kCall = 0x80, kExit = 0x90;
constexpr int32_t kAtomicAdd = 0x00;
constexpr uint8_t kPseudoMapFd = 1;

uint8_t SizeCode(int bytes) {
  switch (bytes) {
    case 1:
      return kSizeB;
    case 4:
      return kSizeW;
    default:
      return kSizeDW;
  }
}

class Assembler {
 public:
  using Label = int;

  Label NewLabel() {
    labels_.push_back(-1);
    return static_cast<Label>(labels_.size() - 1);
  }
  void Bind(Label l) { labels_[l] = static_cast<int>(code_.size()); }

  void MovReg(Reg dst, Reg src) { Emit(kClassAlu64 | kAluMov | kSrcX, dst, src, 0, 0); }
  void MovImm(Reg dst, int32_t imm) { Emit(kClassAlu64 | kAluMov | kSrcK, dst, R0, 0, imm); }
  void AddReg(Reg dst, Reg src) { Emit(kClassAlu64 | kAluAdd | kSrcX, dst, src, 0, 0); }
  void AddImm(Reg dst, int32_t imm) { Emit(kClassAlu64 | kAluAdd | kSrcK, dst, R0, 0, imm); }
  // dst = *(size *)(src + off), zero-extended.
  void Load(int bytes, Reg dst, Reg src, int16_t off) { Emit(kClassLdx | kModeMem | SizeCode(bytes), dst, src, off, 0); }
  void Store(int bytes, Reg dst, int16_t off, Reg src) { Emit(kClassStx | kModeMem | SizeCode(bytes), dst, src, off, 0); }
  void StoreImm(int bytes, Reg dst, int16_t off, int32_t imm) { Emit(kClassSt | kModeMem | SizeCode(bytes), dst, R0, off, imm); }
  // lock *(u64 *)(dst + off) += src
  void AtomicAdd64(Reg dst, int16_t off, Reg src) { Emit(kClassStx | kModeAtomic | kSizeDW, dst, src, off, kAtomicAdd); }
  // The two-slot 64-bit immediate load; with src = kPseudoMapFd the kernel turns a map fd into the map.
  void LoadImm64(Reg dst, uint64_t imm, uint8_t src = 0) {
    Emit(kClassLd | kModeImm | kSizeDW, dst, static_cast<Reg>(src), 0, static_cast<int32_t>(static_cast<uint32_t>(imm)));
    Emit(0, R0, R0, 0, static_cast<int32_t>(static_cast<uint32_t>(imm >> 32)));
  }
  void LoadMap(Reg dst, int fd) { LoadImm64(dst, static_cast<uint32_t>(fd), kPseudoMapFd); }
  // 64-bit compares.
  void JumpImm(uint8_t op, Reg dst, int32_t imm, Label to) { EmitJump(kClassJmp | op | kSrcK, dst, R0, imm, to); }
  void JumpReg(uint8_t op, Reg dst, Reg src, Label to) { EmitJump(kClassJmp | op | kSrcX, dst, src, 0, to); }
  // 32-bit compare of dst's low half with an unsigned 32-bit immediate.
  void Jump32Imm(uint8_t op, Reg dst, uint32_t imm, Label to) { EmitJump(kClassJmp32 | op | kSrcK, dst, R0, static_cast<int32_t>(imm), to); }
  void Goto(Label to) { EmitJump(kClassJmp | kJa, R0, R0, 0, to); }
  void Call(int32_t helper) { Emit(kClassJmp | kCall, R0, R0, 0, helper); }
  void Exit() { Emit(kClassJmp | kExit, R0, R0, 0, 0); }

  // Resolves the jumps; the offsets are relative to the instruction after the jump.
  std::vector<struct bpf_insn> Finish() {
    for (const auto& f : fixups_) code_[f.at].off = static_cast<int16_t>(labels_[f.label] - f.at - 1);
    return code_;
  }

 private:
  struct Fixup {
    int at;
    Label label;
  };

  void Emit(uint8_t opcode, Reg dst, Reg src, int16_t off, int32_t imm) {
    struct bpf_insn insn;
    std::memset(&insn, 0, sizeof(insn));
    insn.code = opcode;
    insn.dst_reg = dst & 0xf;
    insn.src_reg = src & 0xf;
    insn.off = off;
    insn.imm = imm;
    code_.push_back(insn);
  }
  void EmitJump(uint8_t opcode, Reg dst, Reg src, int32_t imm, Label to) {
    fixups_.push_back({static_cast<int>(code_.size()), to});
    Emit(opcode, dst, src, 0, imm);
  }

  std::vector<struct bpf_insn> code_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

// ---- the programs ----------------------------------------------------------------------------------

// Where one tracepoint's fields sit in its raw record (from events/block/<name>/format).
struct Layout {
  uint32_t id;
  int16_t dev, sector, nrSector, rwbs;
};

struct Config {
  uint32_t devT;
  uint64_t startSector, endSector;
  uint32_t maxEntries;
  Layout queue, complete;
};

constexpr int kCounterOverflows = 0, kCounterFlushes = 1, kCounterSentinels = 2, kCounters = 3;
constexpr int32_t kHelperMapLookup = 1, kHelperMapUpdate = 2;  // BPF_FUNC_map_lookup_elem, _update_elem
constexpr int32_t kNoExist = 1;                                 // BPF_NOEXIST

// Stack frame: key {u64 sector; u32 nr_sector; u32 kind} at fp-16, value u32 at fp-24, counter index at fp-28.
constexpr int16_t kKeyAt = -16, kValueAt = -24, kIndexAt = -28;

std::vector<struct bpf_insn> BuildProgram(const Config& c, const Layout& l, bool countSentinels, int marksFd, int countersFd) {
  Assembler a;
  auto out = a.NewLabel(), flush = a.NewLabel(), read = a.NewLabel(), count = a.NewLabel();
  a.MovReg(R6, R1);
  a.Load(4, R2, R6, l.dev);
  a.Jump32Imm(kJne, R2, c.devT, out);
  a.Load(8, R7, R6, l.sector);
  a.Load(4, R8, R6, l.nrSector);
  a.Load(1, R9, R6, l.rwbs);
  a.JumpImm(kJeq, R9, 'R', read);
  a.JumpImm(kJeq, R8, 0, flush);
  // Overlap with [start, end): sector < end && sector + nr_sector > start (unsigned).
  a.LoadImm64(R2, c.endSector);
  a.JumpReg(kJge, R7, R2, out);
  a.MovReg(R3, R7);
  a.AddReg(R3, R8);
  a.LoadImm64(R2, c.startSector);
  a.JumpReg(kJle, R3, R2, out);
  a.Store(8, FP, kKeyAt, R7);
  a.Store(4, FP, kKeyAt + 8, R8);
  a.StoreImm(4, FP, kKeyAt + 12, 0);
  a.StoreImm(4, FP, kValueAt, 1);
  a.LoadMap(R1, marksFd);
  a.MovReg(R2, FP);
  a.AddImm(R2, kKeyAt);
  a.MovReg(R3, FP);
  a.AddImm(R3, kValueAt);
  a.MovImm(R4, kNoExist);
  a.Call(kHelperMapUpdate);
  a.JumpImm(kJeq, R0, 0, out);
  a.JumpImm(kJeq, R0, -EEXIST, out);
  a.MovImm(R1, kCounterOverflows);
  a.Goto(count);

  a.Bind(flush);
  a.MovImm(R1, kCounterFlushes);
  a.Goto(count);

  a.Bind(read);
  if (countSentinels) {
    a.LoadImm64(R2, c.startSector);
    a.JumpReg(kJne, R7, R2, out);
    a.MovImm(R1, kCounterSentinels);
    a.Goto(count);
  } else {
    a.Goto(out);
  }

  a.Bind(count);  // counters[r1] += 1
  a.Store(4, FP, kIndexAt, R1);
  a.LoadMap(R1, countersFd);
  a.MovReg(R2, FP);
  a.AddImm(R2, kIndexAt);
  a.Call(kHelperMapLookup);
  a.JumpImm(kJeq, R0, 0, out);
  a.MovImm(R1, 1);
  a.AtomicAdd64(R0, 0, R1);

  a.Bind(out);
  a.MovImm(R0, 0);
  a.Exit();
  return a.Finish();
}

// ---- errors ------------------------------------------------------------------------------------------

// Thrown when the verifier refuses a program: one sentence plus the end of its log.
Napi::Error VerifierError(Napi::Env env, int err, const char* which, const std::string& log) {
  std::string tail = log;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\0')) tail.pop_back();
  if (tail.size() > 1500) tail = "..." + tail.substr(tail.size() - 1500);
  std::string message = std::string("The kernel refused to load the tracking program for ") + which + " (" + ErrnoName(err) + ": " +
                        std::strerror(err) + ")" + (tail.empty() ? "." : "; verifier log: " + tail);
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_STRATA_BPF_VERIFIER"));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, "bpf(BPF_PROG_LOAD)"));
  e.Set("verifierLog", Napi::String::New(env, log));
  return e;
}

// ---- the tracker ---------------------------------------------------------------------------------

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

struct Tracker {
  int marks = -1, counters = -1;
  int progs[2] = {-1, -1};
  int perf[2] = {-1, -1};
  uint32_t maxEntries = 0;
  // Reused between drains; grown on ENOSPC (one bucket larger than the batch).
  std::vector<uint8_t> keys, values;

  bool open() const { return marks >= 0; }
  void Close() {
    for (int& fd : perf) {
      if (fd >= 0) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
      CloseFd(fd);
    }
    for (int& fd : progs) CloseFd(fd);
    CloseFd(marks);
    CloseFd(counters);
  }
  ~Tracker() { Close(); }
};

constexpr uint32_t kKeySize = 16, kValueSize = 4;

int LoadProgram(Napi::Env env, const std::vector<struct bpf_insn>& insns, const char* name, const char* which) {
  static const char kLicense[] = "Dual MIT/GPL";
  auto load = [&](char* log, uint32_t logSize) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_TRACEPOINT;
    attr.insns = Ptr(insns.data());
    attr.insn_cnt = static_cast<uint32_t>(insns.size());
    attr.license = Ptr(kLicense);
    attr.log_buf = Ptr(log);
    attr.log_size = logSize;
    attr.log_level = log ? 1 : 0;
    std::strncpy(attr.prog_name, name, sizeof(attr.prog_name) - 1);
    return static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  };
  int fd = load(nullptr, 0);
  if (fd >= 0) return fd;
  int err = errno;
  // Load again with the verifier's log, for the error.
  std::vector<char> log(1 << 20, '\0');
  fd = load(log.data(), static_cast<uint32_t>(log.size()));
  if (fd >= 0) return fd;
  if (errno != ENOSPC) err = errno;
  throw VerifierError(env, err, which, std::string(log.data(), strnlen(log.data(), log.size())));
}

// The first online CPU (cpu 0 can be offlined on some machines).
int FirstOnlineCpu() {
  std::ifstream f("/sys/devices/system/cpu/online");
  int cpu = 0;
  if (f >> cpu) return cpu;
  return 0;
}

int AttachTracepoint(Napi::Env env, uint32_t id, int prog, const char* which) {
  struct perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.size = sizeof(attr);
  attr.config = id;
  attr.sample_period = 1;
  attr.sample_type = PERF_SAMPLE_RAW;
  attr.wakeup_events = 1;
  int fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, FirstOnlineCpu(), -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) throw SystemError(env, errno, "perf_event_open", which);
  if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog) != 0) {
    int err = errno;
    close(fd);
    throw SystemError(env, err, "ioctl(PERF_EVENT_IOC_SET_BPF)", which);
  }
  if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
    int err = errno;
    close(fd);
    throw SystemError(env, err, "ioctl(PERF_EVENT_IOC_ENABLE)", which);
  }
  return fd;
}

int16_t RequireOffset(const Napi::Object& o, const char* name) {
  int64_t v = RequireWholeNumber(o.Get(name), name);
  if (v < 8 || v > 4096) {
    Napi::RangeError e = Napi::RangeError::New(o.Env(), std::string("The value of \"") + name + "\" is out of range. It must be a record offset from 8 to 4096");
    e.Set("code", Napi::String::New(o.Env(), "ERR_OUT_OF_RANGE"));
    throw e;
  }
  return static_cast<int16_t>(v);
}

Layout RequireLayout(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) {
    Napi::TypeError e = Napi::TypeError::New(v.Env(), std::string("The \"") + name + "\" argument must be of type object");
    e.Set("code", Napi::String::New(v.Env(), "ERR_INVALID_ARG_TYPE"));
    throw e;
  }
  auto o = v.As<Napi::Object>();
  Layout l;
  l.id = static_cast<uint32_t>(RequireWholeNumber(o.Get("id"), "id"));
  l.dev = RequireOffset(o, "devOffset");
  l.sector = RequireOffset(o, "sectorOffset");
  l.nrSector = RequireOffset(o, "nrSectorOffset");
  l.rwbs = RequireOffset(o, "rwbsOffset");
  return l;
}

Tracker* RequireTracker(const Napi::Value& v) {
  if (!v.IsExternal()) {
    Napi::TypeError e = Napi::TypeError::New(v.Env(), "The \"handle\" argument must be a handle from bpfTrackerOpen");
    e.Set("code", Napi::String::New(v.Env(), "ERR_INVALID_ARG_TYPE"));
    throw e;
  }
  return v.As<Napi::External<Tracker>>().Data();
}

// bpfTrackerOpen({devT, startSector, endSector, maxEntries, queue: Layout, complete: Layout}) -> handle
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    Napi::TypeError e = Napi::TypeError::New(env, "The \"options\" argument must be of type object");
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    throw e;
  }
  auto o = info[0].As<Napi::Object>();
  Config c;
  int64_t devT = RequireWholeNumber(o.Get("devT"), "devT");
  if (devT > 0xffffffffLL) throw Napi::RangeError::New(env, "The value of \"devT\" is out of range. It must fit 32 bits");
  c.devT = static_cast<uint32_t>(devT);
  c.startSector = static_cast<uint64_t>(RequireWholeNumber(o.Get("startSector"), "startSector"));
  c.endSector = static_cast<uint64_t>(RequireWholeNumber(o.Get("endSector"), "endSector"));
  int64_t maxEntries = RequireWholeNumber(o.Get("maxEntries"), "maxEntries");
  if (maxEntries < 1 || maxEntries > (1 << 24)) throw Napi::RangeError::New(env, "The value of \"maxEntries\" is out of range. It must be from 1 to 2^24");
  c.maxEntries = static_cast<uint32_t>(maxEntries);
  c.queue = RequireLayout(o.Get("queue"), "queue");
  c.complete = RequireLayout(o.Get("complete"), "complete");

  auto* t = new Tracker();
  // The External owns t from here on: its finalizer closes whatever is still open.
  auto handle = Napi::External<Tracker>::New(env, t, [](Napi::Env, Tracker* p) { delete p; });
  try {
    t->maxEntries = c.maxEntries;
    t->marks = CreateMap(BPF_MAP_TYPE_HASH, kKeySize, kValueSize, c.maxEntries, "strata_marks");
    if (t->marks < 0) throw SystemError(env, errno, "bpf(BPF_MAP_CREATE)", "marks");
    t->counters = CreateMap(BPF_MAP_TYPE_ARRAY, 4, 8, kCounters, "strata_counts");
    if (t->counters < 0) throw SystemError(env, errno, "bpf(BPF_MAP_CREATE)", "counters");
    t->progs[0] = LoadProgram(env, BuildProgram(c, c.queue, true, t->marks, t->counters), "strata_bio_q", "block_bio_queue");
    t->progs[1] = LoadProgram(env, BuildProgram(c, c.complete, false, t->marks, t->counters), "strata_rq_done", "block_rq_complete");
    t->perf[0] = AttachTracepoint(env, c.queue.id, t->progs[0], "block_bio_queue");
    t->perf[1] = AttachTracepoint(env, c.complete.id, t->progs[1], "block_rq_complete");
  } catch (...) {
    t->Close();
    throw;
  }
  return handle;
}

uint64_t RecursionMisses(int prog) {
  struct bpf_prog_info pi;
  std::memset(&pi, 0, sizeof(pi));
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = static_cast<uint32_t>(prog);
  attr.info.info_len = sizeof(pi);
  attr.info.info = Ptr(&pi);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) != 0) return 0;
  return pi.recursion_misses;
}

// bpfTrackerDrain(handle) -> {sectors: Float64Array [sector, nrSector, ...], overflows, flushes,
// sentinels, misses} (the four counters are running totals since open).
Napi::Value Drain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tracker* t = RequireTracker(info[0]);
  if (!t->open()) throw SystemError(env, EBADF, "bpfTrackerDrain", "the tracker is closed");
  std::vector<double> pairs;
  uint32_t capacity = t->keys.empty() ? std::min<uint32_t>(t->maxEntries, 8192) : static_cast<uint32_t>(t->keys.size() / kKeySize);
  uint64_t inBatch = 0, outBatch = 0;
  bool first = true;
  for (;;) {
    if (t->keys.size() < capacity * kKeySize) {
      t->keys.resize(capacity * kKeySize);
      t->values.resize(capacity * kValueSize);
    }
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.batch.in_batch = first ? 0 : Ptr(&inBatch);
    attr.batch.out_batch = Ptr(&outBatch);
    attr.batch.keys = Ptr(t->keys.data());
    attr.batch.values = Ptr(t->values.data());
    attr.batch.count = capacity;
    attr.batch.map_fd = static_cast<uint32_t>(t->marks);
    long rc = Bpf(BPF_MAP_LOOKUP_AND_DELETE_BATCH, &attr);
    int err = rc == 0 ? 0 : errno;
    if (err == ENOSPC && attr.batch.count == 0) {
      // One bucket holds more keys than the batch: retry the same bucket with room for it.
      capacity *= 2;
      continue;
    }
    for (uint32_t i = 0; i < attr.batch.count; i++) {
      uint64_t sector;
      uint32_t nr;
      std::memcpy(&sector, &t->keys[i * kKeySize], 8);
      std::memcpy(&nr, &t->keys[i * kKeySize + 8], 4);
      pairs.push_back(static_cast<double>(sector));
      pairs.push_back(nr);
    }
    if (err == ENOENT) break;  // every bucket visited
    if (err != 0) throw SystemError(env, err, "bpf(BPF_MAP_LOOKUP_AND_DELETE_BATCH)");
    inBatch = outBatch;
    first = false;
  }
  // The counters after the map: a failure counted before the drain began is always seen now.
  uint64_t counts[kCounters] = {0, 0, 0};
  for (uint32_t i = 0; i < kCounters; i++) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.map_fd = static_cast<uint32_t>(t->counters);
    attr.key = Ptr(&i);
    attr.value = Ptr(&counts[i]);
    if (Bpf(BPF_MAP_LOOKUP_ELEM, &attr) != 0) throw SystemError(env, errno, "bpf(BPF_MAP_LOOKUP_ELEM)", "counters");
  }
  uint64_t queueMisses = RecursionMisses(t->progs[0]), completeMisses = RecursionMisses(t->progs[1]);

  auto sectors = Napi::Float64Array::New(env, pairs.size());
  if (!pairs.empty()) std::memcpy(sectors.Data(), pairs.data(), pairs.size() * sizeof(double));
  auto result = Napi::Object::New(env);
  result.Set("sectors", sectors);
  result.Set("overflows", Napi::Number::New(env, static_cast<double>(counts[kCounterOverflows])));
  result.Set("flushes", Napi::Number::New(env, static_cast<double>(counts[kCounterFlushes])));
  result.Set("sentinels", Napi::Number::New(env, static_cast<double>(counts[kCounterSentinels])));
  result.Set("queueMisses", Napi::Number::New(env, static_cast<double>(queueMisses)));
  result.Set("completeMisses", Napi::Number::New(env, static_cast<double>(completeMisses)));
  return result;
}

Napi::Value CloseTracker(const Napi::CallbackInfo& info) {
  RequireTracker(info[0])->Close();
  return info.Env().Undefined();
}

// null when this process can create BPF maps (root or CAP_BPF, bpf(2) not disabled), else why not.
Napi::Value Supported(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = CreateMap(BPF_MAP_TYPE_ARRAY, 4, 8, 1, "strata_probe");
  if (fd >= 0) {
    close(fd);
    return env.Null();
  }
  int err = errno;
  std::string why = std::string("bpf(BPF_MAP_CREATE) failed with ") + ErrnoName(err) + " (" + std::strerror(err) + ")";
  if (err == EPERM) why += ": eBPF needs root or CAP_BPF and CAP_PERFMON";
  if (err == ENOSYS) why += ": the kernel was built without eBPF";
  return Napi::String::New(env, why);
}

}  // namespace

void RegisterBpfTracker(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfTrackerOpen", Napi::Function::New(env, Open, "bpfTrackerOpen"));
  exports.Set("bpfTrackerDrain", Napi::Function::New(env, Drain, "bpfTrackerDrain"));
  exports.Set("bpfTrackerClose", Napi::Function::New(env, CloseTracker, "bpfTrackerClose"));
  exports.Set("bpfTrackerSupported", Napi::Function::New(env, Supported, "bpfTrackerSupported"));
}

}  // namespace strata
