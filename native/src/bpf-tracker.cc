// The in-kernel half of the 'bpf' live-tracker backend: two hand-assembled eBPF programs on the
// block tracepoints block_bio_queue and block_rq_complete, which record every write, discard and
// write-zeroes of one disk's sector range in kernel maps, and a drain that empties those maps from
// userspace. Raw bpf(2) (and perf_event_open(2) on kernels without BTF) only: no libbpf, no clang,
// nothing to install.
//
// Attachment. Where the kernel publishes its types (/sys/kernel/btf/vmlinux; bpf-probe.ts reads the
// offsets from it), the programs are tp_btf programs attached with BPF_RAW_TRACEPOINT_OPEN: the
// tracepoint calls them with its own arguments (a struct bio *, a struct request *) and they read
// the fields they need, following bio->bi_bdev->bd_disk and rq->q->disk to the disk's numbers; the
// verifier checks every such load against BTF. Otherwise they are tracepoint programs on a perf
// event (pid -1, one online CPU: a tracepoint's programs hang off the tracepoint, so one event runs
// them for every CPU) and read the record the kernel formats for perf. The first way is cheaper per
// event: nothing is formatted, and each program has its own recursion guard instead of the shared
// per-CPU one that made perf-event programs skip completions under load.
//
// What the programs do, per event: keep only this disk's events, skip reads (the queue program
// counts reads of exactly the first sector in counters[2]: the sentinel read that proves the
// programs see this device's events), count a zero-length flush in counters[1], keep only events
// that overlap [start, end), then mark the blocks the event touches. A write of fewer than 64
// blocks (one block: 2^blockShift sectors, 4 KiB by default) sets its bits in the bitmap, a
// BPF_F_MMAPABLE array of u64 words, with an atomic OR (skipped when the bits are set already,
// e.g. the completion after the queue event). A wider write inserts the key {sector, nr_sector,
// kind 0} into the hash map "marks" with BPF_NOEXIST; a key already there (EEXIST) needs nothing
// more; any other failure (E2BIG: the map is full) adds one to counters[0].
//
// Why the drain cannot lose a mark. Bitmap: the drain reads the mapped words and swaps each
// non-zero one with zero atomically (xchg); an OR is a locked read-modify-write of the same word,
// so it lands either before the swap (returned now) or after it (returned by the next drain). Hash
// map: each bucket has a lock; an insert takes it, and so does BPF_MAP_LOOKUP_AND_DELETE_BATCH,
// which copies a bucket's entries and unlinks them in the same critical section, so an insert is
// either before the drain's visit of its bucket or after it; an insert that finds its key present
// (EEXIST) found it before the visit, so the drain returns that key. Nothing ever clears a bit or
// deletes a key in two steps, which is what would open a window. And the programs run synchronously
// in the tracepoint (the writer's own context for the queue event, the completion path for the
// other), so every event emitted before a drain starts is in a map: a drain is a barrier.
//
// Overflow. Only the hash map can fill; the program cannot wait, so it counts the refusal. The
// drain returns the running counters and the TypeScript side turns any increase into lost events,
// i.e. a gap: the next backup resyncs, no block is ever silently dropped. The kernel's own skips
// are reported too: a program that would run while it is already running on that CPU is skipped
// and counted in its recursion_misses, which the drain returns per program (bpf-probe.ts decides: a
// skipped queue event is a gap, a skipped completion re-marks the ranges drained just before the
// last take).
#include <napi.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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

int CreateMap(uint32_t type, uint32_t keySize, uint32_t valueSize, uint32_t maxEntries, const char* name, uint32_t flags = 0) {
  for (int attempt = 0; attempt < 2; attempt++) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.map_type = type;
    attr.key_size = keySize;
    attr.value_size = valueSize;
    attr.max_entries = maxEntries;
    attr.map_flags = flags;
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

constexpr uint8_t kClassLd = 0x00, kClassLdx = 0x01, kClassSt = 0x02, kClassStx = 0x03, kClassAlu = 0x04, kClassJmp = 0x05,
                  kClassJmp32 = 0x06, kClassAlu64 = 0x07;
constexpr uint8_t kSizeW = 0x00, kSizeB = 0x10, kSizeDW = 0x18;
constexpr uint8_t kModeImm = 0x00, kModeMem = 0x60, kModeAtomic = 0xc0;
constexpr uint8_t kSrcK = 0x00, kSrcX = 0x08;
constexpr uint8_t kAluAdd = 0x00, kAluSub = 0x10, kAluAnd = 0x50, kAluLsh = 0x60, kAluRsh = 0x70, kAluMov = 0xb0;
constexpr uint8_t kJa = 0x00, kJeq = 0x10, kJge = 0x30, kJne = 0x50, kJle = 0xb0, kCall = 0x80, kExit = 0x90;
constexpr int32_t kAtomicAdd = 0x00, kAtomicOr = 0x40;
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
  void SubReg(Reg dst, Reg src) { Emit(kClassAlu64 | kAluSub | kSrcX, dst, src, 0, 0); }
  void SubImm(Reg dst, int32_t imm) { Emit(kClassAlu64 | kAluSub | kSrcK, dst, R0, 0, imm); }
  void AndReg(Reg dst, Reg src) { Emit(kClassAlu64 | kAluAnd | kSrcX, dst, src, 0, 0); }
  void AndImm(Reg dst, int32_t imm) { Emit(kClassAlu64 | kAluAnd | kSrcK, dst, R0, 0, imm); }
  void LshReg(Reg dst, Reg src) { Emit(kClassAlu64 | kAluLsh | kSrcX, dst, src, 0, 0); }
  void RshReg(Reg dst, Reg src) { Emit(kClassAlu64 | kAluRsh | kSrcX, dst, src, 0, 0); }
  void RshImm(Reg dst, int32_t imm) { Emit(kClassAlu64 | kAluRsh | kSrcK, dst, R0, 0, imm); }
  // dst = (u32)src: the 32-bit move zero-extends.
  void Mov32Reg(Reg dst, Reg src) { Emit(kClassAlu | kAluMov | kSrcX, dst, src, 0, 0); }
  // dst = *(size *)(src + off), zero-extended.
  void Load(int bytes, Reg dst, Reg src, int16_t off) { Emit(kClassLdx | kModeMem | SizeCode(bytes), dst, src, off, 0); }
  void Store(int bytes, Reg dst, int16_t off, Reg src) { Emit(kClassStx | kModeMem | SizeCode(bytes), dst, src, off, 0); }
  void StoreImm(int bytes, Reg dst, int16_t off, int32_t imm) { Emit(kClassSt | kModeMem | SizeCode(bytes), dst, R0, off, imm); }
  // lock *(u64 *)(dst + off) += src
  void AtomicAdd64(Reg dst, int16_t off, Reg src) { Emit(kClassStx | kModeAtomic | kSizeDW, dst, src, off, kAtomicAdd); }
  // lock *(u64 *)(dst + off) |= src
  void AtomicOr64(Reg dst, int16_t off, Reg src) { Emit(kClassStx | kModeAtomic | kSizeDW, dst, src, off, kAtomicOr); }
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

// Where one tracepoint's fields sit in its raw record (from events/block/<name>/format): the
// perf-event attachment, used when the kernel publishes no BTF.
struct Layout {
  uint32_t id;
  int16_t dev, sector, nrSector, rwbs;
};

// Where the fields sit in the kernel's own structures (from BTF): the tp_btf attachment, whose
// programs receive the tracepoint's arguments (a struct bio *, a struct request *) and read them.
struct Offsets {
  int16_t bioBdev, bioOpf, bioSector, bioSize, bdevDisk, diskMajor, diskFirstMinor, rqQueue, rqSector, rqCmdFlags, queueDisk;
};

enum class Attach { Btf, Tracefs };

struct Config {
  Attach attach;
  uint32_t devT, diskMajor, diskMinor;
  uint64_t startSector, endSector;
  uint32_t maxEntries;
  // One bit of the bitmap covers 2^blockShift sectors.
  uint32_t blockShift;
  uint32_t words;
  // tracefs
  Layout queue, complete;
  // btf
  uint32_t queueBtfId, completeBtfId;
  Offsets off;
  int32_t opMask;
};

constexpr int kCounterOverflows = 0, kCounterFlushes = 1, kCounterSentinels = 2, kCounters = 3;
constexpr int32_t kHelperMapLookup = 1, kHelperMapUpdate = 2;  // BPF_FUNC_map_lookup_elem, _update_elem
constexpr int32_t kNoExist = 1;                                 // BPF_NOEXIST
// A write spanning this many bitmap blocks or more goes to the hash map as one key instead.
constexpr int32_t kBitmapSpan = 64;

// Stack frame: key {u64 sector; u32 nr_sector; u32 kind} at fp-16, value u32 at fp-24, counter index
// at fp-28, the two bitmap word indexes at fp-32 and fp-36, their masks at fp-48 and fp-56.
constexpr int16_t kKeyAt = -16, kValueAt = -24, kIndexAt = -28, kWord0At = -32, kWord1At = -36, kMask0At = -48, kMask1At = -56;

enum class Event { Queue, Complete };

// The first half of a program: load the event's disk, sector, length and operation, leave only this
// disk's events, send reads to `read`, and leave sector in r7 and length (sectors) in r8.
void EmitTracefsPrologue(Assembler& a, const Config& c, const Layout& l, Assembler::Label out, Assembler::Label read) {
  a.MovReg(R6, R1);
  a.Load(4, R2, R6, l.dev);
  a.Jump32Imm(kJne, R2, c.devT, out);
  a.Load(8, R7, R6, l.sector);
  a.Load(4, R8, R6, l.nrSector);
  a.Load(1, R9, R6, l.rwbs);
  a.JumpImm(kJeq, R9, 'R', read);
}

void EmitBtfPrologue(Assembler& a, const Config& c, Event e, Assembler::Label out, Assembler::Label read) {
  const Offsets& o = c.off;
  a.Load(8, R6, R1, 0);  // args[0]: the bio or the request
  if (e == Event::Queue) {
    a.Load(8, R2, R6, o.bioBdev);
    a.Load(8, R2, R2, o.bdevDisk);
  } else {
    a.Load(8, R8, R1, 16);  // args[2]: nr_bytes, what the completion covers
    a.Load(8, R2, R6, o.rqQueue);
    a.Load(8, R2, R2, o.queueDisk);
  }
  a.Load(4, R3, R2, o.diskMajor);
  a.Jump32Imm(kJne, R3, c.diskMajor, out);
  a.Load(4, R3, R2, o.diskFirstMinor);
  a.Jump32Imm(kJne, R3, c.diskMinor, out);
  if (e == Event::Queue) {
    a.Load(8, R7, R6, o.bioSector);
    a.Load(4, R8, R6, o.bioSize);
    a.Load(4, R9, R6, o.bioOpf);
  } else {
    a.Mov32Reg(R8, R8);
    a.Load(8, R7, R6, o.rqSector);
    a.Load(4, R9, R6, o.rqCmdFlags);
  }
  a.RshImm(R8, 9);
  a.AndImm(R9, c.opMask);
  a.JumpImm(kJeq, R9, 0, read);  // REQ_OP_READ
}

// bits[word at keyAt] |= mask at maskAt, skipping the locked operation when every bit is set already.
void EmitSetBits(Assembler& a, int bitsFd, int16_t keyAt, int16_t maskAt, Assembler::Label out) {
  auto done = a.NewLabel();
  a.LoadMap(R1, bitsFd);
  a.MovReg(R2, FP);
  a.AddImm(R2, keyAt);
  a.Call(kHelperMapLookup);
  a.JumpImm(kJeq, R0, 0, out);
  a.Load(8, R1, FP, maskAt);
  a.Load(8, R2, R0, 0);
  a.AndReg(R2, R1);
  a.JumpReg(kJeq, R2, R1, done);
  a.AtomicOr64(R0, 0, R1);
  a.Bind(done);
}

std::vector<struct bpf_insn> BuildProgram(const Config& c, Event e, int bitsFd, int marksFd, int countersFd) {
  Assembler a;
  auto out = a.NewLabel(), flush = a.NewLabel(), read = a.NewLabel(), count = a.NewLabel(), wide = a.NewLabel();
  auto firstClamped = a.NewLabel(), lastClamped = a.NewLabel(), twoWords = a.NewLabel(), lastWord = a.NewLabel();
  if (c.attach == Attach::Btf) {
    EmitBtfPrologue(a, c, e, out, read);
  } else {
    EmitTracefsPrologue(a, c, e == Event::Queue ? c.queue : c.complete, out, read);
  }
  a.JumpImm(kJeq, R8, 0, flush);
  // Overlap with [start, end): sector < end && sector + nr_sector > start (unsigned).
  a.LoadImm64(R2, c.endSector);
  a.JumpReg(kJge, R7, R2, out);
  a.MovReg(R3, R7);
  a.AddReg(R3, R8);
  a.LoadImm64(R2, c.startSector);
  a.JumpReg(kJle, R3, R2, out);

  // The blocks it touches, relative to start: first = (max(sector, start) - start) >> shift,
  // last = (min(sector + nr, end) - 1 - start) >> shift. r2 = start, r3 = sector + nr.
  a.MovReg(R1, R7);
  a.JumpReg(kJge, R1, R2, firstClamped);
  a.MovReg(R1, R2);
  a.Bind(firstClamped);
  a.SubReg(R1, R2);
  a.RshImm(R1, static_cast<int32_t>(c.blockShift));
  a.LoadImm64(R4, c.endSector);
  a.JumpReg(kJle, R3, R4, lastClamped);
  a.MovReg(R3, R4);
  a.Bind(lastClamped);
  a.SubReg(R3, R2);
  a.SubImm(R3, 1);
  a.RshImm(R3, static_cast<int32_t>(c.blockShift));
  a.MovReg(R4, R3);
  a.SubReg(R4, R1);
  a.JumpImm(kJge, R4, kBitmapSpan, wide);

  // At most 64 blocks, so at most two words: bits [first & 63, ...] of word first >> 6 and
  // [..., last & 63] of word last >> 6. mask(lo, hi) = (~0 << lo) & (~0 >> (63 - hi)).
  a.MovReg(R6, R1);
  a.AndImm(R6, 63);  // lo
  a.MovReg(R9, R3);
  a.AndImm(R9, 63);  // hi
  a.RshImm(R1, 6);
  a.RshImm(R3, 6);
  a.Store(4, FP, kWord0At, R1);
  a.Store(4, FP, kWord1At, R3);
  a.MovImm(R2, -1);
  a.LshReg(R2, R6);  // ~0 << lo
  a.MovImm(R4, 63);
  a.SubReg(R4, R9);
  a.MovImm(R5, -1);
  a.RshReg(R5, R4);  // ~0 >> (63 - hi)
  a.JumpReg(kJne, R1, R3, twoWords);
  a.AndReg(R2, R5);
  a.Store(8, FP, kMask0At, R2);
  a.Goto(lastWord);
  a.Bind(twoWords);
  a.Store(8, FP, kMask0At, R2);
  a.Store(8, FP, kMask1At, R5);
  EmitSetBits(a, bitsFd, kWord1At, kMask1At, out);
  a.Bind(lastWord);
  EmitSetBits(a, bitsFd, kWord0At, kMask0At, out);
  a.Goto(out);

  // A wide write: one key {sector, nr_sector} in the hash map.
  a.Bind(wide);
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
  if (e == Event::Queue) {
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
  int bits = -1, marks = -1, counters = -1;
  int progs[2] = {-1, -1};
  // perf events (tracefs attachment) or raw tracepoint links (btf attachment)
  int attached[2] = {-1, -1};
  Attach attach = Attach::Btf;
  // The completion tracepoint's id (tracefs attachment), to attach its program again after a disarm.
  uint32_t completeTracepointId = 0;
  uint32_t maxEntries = 0;
  uint64_t startSector = 0, endSector = 0;
  uint32_t blockShift = 0, words = 0;
  // The bitmap, shared with the programs: BPF_F_MMAPABLE array values, one u64 per element.
  uint64_t* bitmap = nullptr;
  size_t bitmapBytes = 0;
  // Reused between drains; grown on ENOSPC (one bucket larger than the batch).
  std::vector<uint8_t> keys, values;

  bool open() const { return marks >= 0; }
  void Close() {
    for (int& fd : attached) {
      if (fd >= 0 && attach == Attach::Tracefs) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
      CloseFd(fd);
    }
    for (int& fd : progs) CloseFd(fd);
    if (bitmap) munmap(bitmap, bitmapBytes);
    bitmap = nullptr;
    CloseFd(bits);
    CloseFd(marks);
    CloseFd(counters);
  }
  ~Tracker() { Close(); }
};

constexpr uint32_t kKeySize = 16, kValueSize = 4;

// btfId 0: a tracepoint program for a perf event; otherwise a tp_btf program for that vmlinux type.
int LoadProgram(Napi::Env env, const std::vector<struct bpf_insn>& insns, const char* name, const char* which, uint32_t btfId) {
  static const char kLicense[] = "Dual MIT/GPL";
  auto load = [&](char* log, uint32_t logSize) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.prog_type = btfId ? BPF_PROG_TYPE_TRACING : BPF_PROG_TYPE_TRACEPOINT;
    if (btfId) {
      attr.expected_attach_type = BPF_TRACE_RAW_TP;
      attr.attach_btf_id = btfId;
    }
    attr.insns = Ptr(insns.data());
    attr.insn_cnt = static_cast<uint32_t>(insns.size());
    attr.license = Ptr(kLicense);
    attr.log_buf = Ptr(log);
    attr.log_size = logSize;
    attr.log_level = log ? 1 : 0;
    std::strncpy(attr.prog_name, name, sizeof(attr.prog_name) - 1);
    // The verifier gives up with EAGAIN as soon as a signal is pending (a profiler's SIGPROF every
    // millisecond, a child's SIGCHLD), which says nothing about the program. So this thread blocks
    // every signal for the call (they stay pending and arrive right after) and tries again on
    // EAGAIN/EINTR in case one was already pending.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    int fd = -1;
    for (int attempt = 0; attempt < 10; attempt++) {
      fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
      if (fd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    errno = err;
    return fd;
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

// Attaches a tp_btf program to its tracepoint; closing the returned fd detaches it.
int AttachRawTracepoint(Napi::Env env, int prog, const char* which) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.raw_tracepoint.name = 0;  // a tp_btf program names its tracepoint by attach_btf_id
  attr.raw_tracepoint.prog_fd = static_cast<uint32_t>(prog);
  int fd = static_cast<int>(Bpf(BPF_RAW_TRACEPOINT_OPEN, &attr));
  if (fd < 0) throw SystemError(env, errno, "bpf(BPF_RAW_TRACEPOINT_OPEN)", which);
  return fd;
}

Napi::Object RequireObject(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) {
    Napi::TypeError e = Napi::TypeError::New(v.Env(), std::string("The \"") + name + "\" argument must be of type object");
    e.Set("code", Napi::String::New(v.Env(), "ERR_INVALID_ARG_TYPE"));
    throw e;
  }
  return v.As<Napi::Object>();
}

int16_t RequireOffset(const Napi::Object& o, const char* name, int64_t min = 8) {
  int64_t v = RequireWholeNumber(o.Get(name), name);
  if (v < min || v > 4096) {
    Napi::RangeError e = Napi::RangeError::New(o.Env(), std::string("The value of \"") + name + "\" is out of range. It must be an offset from " + std::to_string(min) + " to 4096");
    e.Set("code", Napi::String::New(o.Env(), "ERR_OUT_OF_RANGE"));
    throw e;
  }
  return static_cast<int16_t>(v);
}

Layout RequireLayout(const Napi::Value& v, const char* name) {
  auto o = RequireObject(v, name);
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

uint32_t RequireU32(const Napi::Object& o, const char* name, int64_t max = 0xffffffffLL) {
  int64_t v = RequireWholeNumber(o.Get(name), name);
  if (v > max) {
    Napi::RangeError e = Napi::RangeError::New(o.Env(), std::string("The value of \"") + name + "\" is out of range. It must be at most " + std::to_string(max));
    e.Set("code", Napi::String::New(o.Env(), "ERR_OUT_OF_RANGE"));
    throw e;
  }
  return static_cast<uint32_t>(v);
}

// bpfTrackerOpen({diskMajor, diskMinor, startSector, endSector, blockShift, maxEntries, btf: {...}}
//   or {..., devT, queue: Layout, complete: Layout}) -> handle
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObject(info[0], "options");
  Config c{};
  c.diskMajor = RequireU32(o, "diskMajor");
  c.diskMinor = RequireU32(o, "diskMinor");
  c.startSector = static_cast<uint64_t>(RequireWholeNumber(o.Get("startSector"), "startSector"));
  c.endSector = static_cast<uint64_t>(RequireWholeNumber(o.Get("endSector"), "endSector"));
  if (c.endSector <= c.startSector) throw Napi::RangeError::New(env, "The value of \"endSector\" is out of range. It must be above startSector");
  c.maxEntries = RequireU32(o, "maxEntries", 1 << 24);
  if (c.maxEntries < 1) throw Napi::RangeError::New(env, "The value of \"maxEntries\" is out of range. It must be from 1 to 2^24");
  c.blockShift = RequireU32(o, "blockShift", 40);
  uint64_t blocks = ((c.endSector - c.startSector - 1) >> c.blockShift) + 1;
  uint64_t words = (blocks + 63) / 64;
  if (words > (1u << 24)) throw Napi::RangeError::New(env, "The bitmap would exceed 128 MiB; raise \"blockShift\"");
  c.words = static_cast<uint32_t>(words);
  if (o.Has("btf") && !o.Get("btf").IsUndefined()) {
    auto b = RequireObject(o.Get("btf"), "btf");
    c.attach = Attach::Btf;
    c.queueBtfId = RequireU32(b, "queueId");
    c.completeBtfId = RequireU32(b, "completeId");
    c.opMask = static_cast<int32_t>(RequireU32(b, "opMask", 0x7fffffff));
    c.off = {RequireOffset(b, "bioBdev", 0),     RequireOffset(b, "bioOpf", 0),         RequireOffset(b, "bioSector", 0),
             RequireOffset(b, "bioSize", 0),     RequireOffset(b, "bdevDisk", 0),       RequireOffset(b, "diskMajor", 0),
             RequireOffset(b, "diskFirstMinor", 0), RequireOffset(b, "rqQueue", 0),     RequireOffset(b, "rqSector", 0),
             RequireOffset(b, "rqCmdFlags", 0),  RequireOffset(b, "queueDisk", 0)};
  } else {
    c.attach = Attach::Tracefs;
    c.devT = RequireU32(o, "devT");
    c.queue = RequireLayout(o.Get("queue"), "queue");
    c.complete = RequireLayout(o.Get("complete"), "complete");
  }

  auto* t = new Tracker();
  // The External owns t from here on: its finalizer closes whatever is still open.
  auto handle = Napi::External<Tracker>::New(env, t, [](Napi::Env, Tracker* p) { delete p; });
  try {
    t->attach = c.attach;
    if (c.attach == Attach::Tracefs) t->completeTracepointId = c.complete.id;
    t->maxEntries = c.maxEntries;
    t->startSector = c.startSector;
    t->endSector = c.endSector;
    t->blockShift = c.blockShift;
    t->words = c.words;
    t->bits = CreateMap(BPF_MAP_TYPE_ARRAY, 4, 8, c.words, "strata_bits", BPF_F_MMAPABLE);
    if (t->bits < 0) throw SystemError(env, errno, "bpf(BPF_MAP_CREATE)", "bitmap");
    long page = sysconf(_SC_PAGESIZE);
    t->bitmapBytes = (static_cast<size_t>(c.words) * 8 + page - 1) / page * page;
    void* m = mmap(nullptr, t->bitmapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->bits, 0);
    if (m == MAP_FAILED) throw SystemError(env, errno, "mmap", "bitmap");
    t->bitmap = static_cast<uint64_t*>(m);
    t->marks = CreateMap(BPF_MAP_TYPE_HASH, kKeySize, kValueSize, c.maxEntries, "strata_marks");
    if (t->marks < 0) throw SystemError(env, errno, "bpf(BPF_MAP_CREATE)", "marks");
    t->counters = CreateMap(BPF_MAP_TYPE_ARRAY, 4, 8, kCounters, "strata_counts");
    if (t->counters < 0) throw SystemError(env, errno, "bpf(BPF_MAP_CREATE)", "counters");
    bool btf = c.attach == Attach::Btf;
    t->progs[0] = LoadProgram(env, BuildProgram(c, Event::Queue, t->bits, t->marks, t->counters), "strata_bio_q", "block_bio_queue", btf ? c.queueBtfId : 0);
    t->progs[1] = LoadProgram(env, BuildProgram(c, Event::Complete, t->bits, t->marks, t->counters), "strata_rq_done", "block_rq_complete", btf ? c.completeBtfId : 0);
    if (btf) {
      t->attached[0] = AttachRawTracepoint(env, t->progs[0], "block_bio_queue");
      t->attached[1] = AttachRawTracepoint(env, t->progs[1], "block_rq_complete");
    } else {
      t->attached[0] = AttachTracepoint(env, c.queue.id, t->progs[0], "block_bio_queue");
      t->attached[1] = AttachTracepoint(env, c.complete.id, t->progs[1], "block_rq_complete");
    }
  } catch (...) {
    t->Close();
    throw;
  }
  return handle;
}

// Moves the set bits of the bitmap into pairs (absolute sector, sectors), runs merged across words.
// Each non-zero word is swapped with zero atomically: a program's atomic OR lands either before the
// swap (returned now) or after it (kept for the next drain), never in between.
void DrainBitmap(Tracker* t, std::vector<double>& pairs) {
  uint64_t runStart = 0, runEnd = 0;  // blocks, [start, end)
  bool inRun = false;
  auto flushRun = [&]() {
    if (!inRun) return;
    uint64_t sector = t->startSector + (runStart << t->blockShift);
    uint64_t end = std::min(t->endSector, t->startSector + (runEnd << t->blockShift));
    pairs.push_back(static_cast<double>(sector));
    pairs.push_back(static_cast<double>(end - sector));
    inRun = false;
  };
  for (uint32_t w = 0; w < t->words; w++) {
    if (__atomic_load_n(&t->bitmap[w], __ATOMIC_RELAXED) == 0) continue;
    uint64_t v = __atomic_exchange_n(&t->bitmap[w], 0, __ATOMIC_ACQ_REL);
    while (v != 0) {
      int lo = __builtin_ctzll(v);
      uint64_t shifted = v >> lo;
      int len = shifted == ~0ULL ? 64 : __builtin_ctzll(~shifted);
      uint64_t first = static_cast<uint64_t>(w) * 64 + lo;
      if (inRun && runEnd == first) {
        runEnd += len;
      } else {
        flushRun();
        runStart = first;
        runEnd = first + len;
        inRun = true;
      }
      v = lo + len >= 64 ? 0 : v & (~0ULL << (lo + len));
    }
  }
  flushRun();
}

// What the kernel counts per program: skipped runs (recursion_misses), and — while the sysctl
// kernel.bpf_stats_enabled is 1 — runs and the time spent in them.
struct ProgStats {
  uint64_t misses = 0, runs = 0, runNs = 0;
};

ProgStats ProgramStats(int prog) {
  struct bpf_prog_info pi;
  std::memset(&pi, 0, sizeof(pi));
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = static_cast<uint32_t>(prog);
  attr.info.info_len = sizeof(pi);
  attr.info.info = Ptr(&pi);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) != 0) return {};
  return {pi.recursion_misses, pi.run_cnt, pi.run_time_ns};
}

// bpfTrackerDrain(handle) -> {sectors: Float64Array [sector, nrSector, ...], overflows, flushes,
// sentinels, queueMisses, completeMisses, queueRuns, queueRunNs, completeRuns, completeRunNs} (the
// counters are running totals since open).
Napi::Value Drain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tracker* t = RequireTracker(info[0]);
  if (!t->open()) throw SystemError(env, EBADF, "bpfTrackerDrain", "the tracker is closed");
  std::vector<double> pairs;
  DrainBitmap(t, pairs);
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
  ProgStats queue = ProgramStats(t->progs[0]), complete = ProgramStats(t->progs[1]);

  auto sectors = Napi::Float64Array::New(env, pairs.size());
  if (!pairs.empty()) std::memcpy(sectors.Data(), pairs.data(), pairs.size() * sizeof(double));
  auto result = Napi::Object::New(env);
  result.Set("sectors", sectors);
  result.Set("overflows", Napi::Number::New(env, static_cast<double>(counts[kCounterOverflows])));
  result.Set("flushes", Napi::Number::New(env, static_cast<double>(counts[kCounterFlushes])));
  result.Set("sentinels", Napi::Number::New(env, static_cast<double>(counts[kCounterSentinels])));
  result.Set("queueMisses", Napi::Number::New(env, static_cast<double>(queue.misses)));
  result.Set("completeMisses", Napi::Number::New(env, static_cast<double>(complete.misses)));
  result.Set("queueRuns", Napi::Number::New(env, static_cast<double>(queue.runs)));
  result.Set("queueRunNs", Napi::Number::New(env, static_cast<double>(queue.runNs)));
  result.Set("completeRuns", Napi::Number::New(env, static_cast<double>(complete.runs)));
  result.Set("completeRunNs", Napi::Number::New(env, static_cast<double>(complete.runNs)));
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

// bpfTrackerArmCompletion(handle, armed): attaches the completion program (armed) or detaches it.
// Detached, a completion costs nothing at all: the tracepoint has one program fewer to call (a
// disabled perf event would still run its program). Attaching again takes well under a millisecond.
Napi::Value ArmCompletion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tracker* t = RequireTracker(info[0]);
  if (!t->open()) throw SystemError(env, EBADF, "bpfTrackerArmCompletion", "the tracker is closed");
  bool armed = info.Length() > 1 && info[1].ToBoolean().Value();
  if (!armed) {
    if (t->attached[1] >= 0 && t->attach == Attach::Tracefs) ioctl(t->attached[1], PERF_EVENT_IOC_DISABLE, 0);
    CloseFd(t->attached[1]);
  } else if (t->attached[1] < 0) {
    t->attached[1] = t->attach == Attach::Btf ? AttachRawTracepoint(env, t->progs[1], "block_rq_complete")
                                               : AttachTracepoint(env, t->completeTracepointId, t->progs[1], "block_rq_complete");
  }
  return env.Undefined();
}

// bpfProgramInfo(id) -> {name, type, misses, runs} for a program loaded by any process (bpftrace's), or
// null once it is gone. The name is what its loader gave it (truncated to 15 bytes by the kernel).
Napi::Value ProgramInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "bpfProgramInfo(id): id must be a number");
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_id = info[0].As<Napi::Number>().Uint32Value();
  int fd = static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &attr));
  if (fd < 0) {
    if (errno == ENOENT) return env.Null();
    throw SystemError(env, errno, "bpf(BPF_PROG_GET_FD_BY_ID)");
  }
  struct bpf_prog_info pi;
  std::memset(&pi, 0, sizeof(pi));
  std::memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = static_cast<uint32_t>(fd);
  attr.info.info_len = sizeof(pi);
  attr.info.info = Ptr(&pi);
  int rc = static_cast<int>(Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr));
  int err = errno;
  close(fd);
  if (rc != 0) throw SystemError(env, err, "bpf(BPF_OBJ_GET_INFO_BY_FD)");
  auto result = Napi::Object::New(env);
  result.Set("name", Napi::String::New(env, std::string(pi.name, strnlen(pi.name, sizeof(pi.name)))));
  result.Set("type", Napi::Number::New(env, pi.type));
  result.Set("misses", Napi::Number::New(env, static_cast<double>(pi.recursion_misses)));
  result.Set("runs", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  return result;
}

}  // namespace

void RegisterBpfTracker(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfTrackerOpen", Napi::Function::New(env, Open, "bpfTrackerOpen"));
  exports.Set("bpfTrackerDrain", Napi::Function::New(env, Drain, "bpfTrackerDrain"));
  exports.Set("bpfTrackerClose", Napi::Function::New(env, CloseTracker, "bpfTrackerClose"));
  exports.Set("bpfTrackerSupported", Napi::Function::New(env, Supported, "bpfTrackerSupported"));
  exports.Set("bpfProgramInfo", Napi::Function::New(env, ProgramInfo, "bpfProgramInfo"));
  exports.Set("bpfTrackerArmCompletion", Napi::Function::New(env, ArmCompletion, "bpfTrackerArmCompletion"));
}

}  // namespace strata
