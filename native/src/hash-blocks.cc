// Per-block keyed digests for change detection: HMAC-SHA256 of every block of a buffer in one
// synchronous call (it runs inside worker threads), plus an all-zero flag per block.
//
// HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)). Both padded keys are exactly one SHA-256 block,
// so their states are computed once per call and every block starts from a copy. Two engines give
// identical bytes: OpenSSL EVP (any CPU) and two blocks at a time on SHA-NI (x86-64 with SHA).
// All-zero blocks of full size share one digest, computed once per call.
#include <napi.h>
#include <openssl/evp.h>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>
#include "args.h"
#include "errors.h"
#include "sha256-ni.h"

namespace strata {
namespace {

constexpr size_t kDigestBytes = 32;
constexpr size_t kShaBlockBytes = 64;
constexpr size_t kMaxBlockBytes = size_t{1} << 24;

enum class Engine { kShaNi, kOpenSsl };

const char* EngineName(Engine e) { return e == Engine::kShaNi ? "sha-ni-x2" : "openssl-evp"; }

Engine BestEngine() { return Sha256NiAvailable() ? Engine::kShaNi : Engine::kOpenSsl; }

// Word-wise scan; random data leaves at the first word, so only zero blocks cost a full pass.
bool AllZero(const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    if ((w[0] | w[1] | w[2] | w[3]) != 0) return false;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  for (; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

void PaddedKeys(const uint8_t* key, size_t keyBytes, uint8_t ipad[64], uint8_t opad[64]) {
  std::memset(ipad, 0x36, 64);
  std::memset(opad, 0x5c, 64);
  for (size_t i = 0; i < keyBytes; i++) {
    ipad[i] ^= key[i];
    opad[i] ^= key[i];
  }
}

void StoreBigEndian32(uint8_t* out, uint32_t v) {
  out[0] = static_cast<uint8_t>(v >> 24);
  out[1] = static_cast<uint8_t>(v >> 16);
  out[2] = static_cast<uint8_t>(v >> 8);
  out[3] = static_cast<uint8_t>(v);
}

// SHA-256 padding for the last `restBytes` of a message of `totalBytes`: the rest, 0x80, zeros and
// the bit length, in one or two blocks. Returns the number of blocks written to out (128 bytes).
size_t PadTail(uint8_t out[128], const uint8_t* rest, size_t restBytes, uint64_t totalBytes) {
  size_t blocks = restBytes + 9 <= kShaBlockBytes ? 1 : 2;
  size_t end = blocks * kShaBlockBytes;
  std::memmove(out, rest, restBytes);  // rest may already sit at out
  out[restBytes] = 0x80;
  std::memset(out + restBytes + 1, 0, end - restBytes - 1);
  uint64_t bits = totalBytes * 8;
  for (int i = 0; i < 8; i++) out[end - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  return blocks;
}

constexpr uint32_t kInitialState[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// HMAC on SHA-NI: two messages of equal length per call, from the precomputed pad states.
class ShaNiHmac {
 public:
  ShaNiHmac(const uint8_t ipad[64], const uint8_t opad[64]) {
    std::memcpy(inner_, kInitialState, sizeof inner_);
    std::memcpy(outer_, kInitialState, sizeof outer_);
    Sha256NiCompress2(inner_, ipad, outer_, opad, 1);
  }

  // a and b are both `length` bytes; a may equal b when only one digest is wanted.
  void Pair(const uint8_t* a, const uint8_t* b, size_t length, uint8_t* outA, uint8_t* outB) const {
    uint32_t sa[8], sb[8];
    std::memcpy(sa, inner_, sizeof sa);
    std::memcpy(sb, inner_, sizeof sb);
    size_t full = length / kShaBlockBytes;
    Sha256NiCompress2(sa, a, sb, b, full);
    uint8_t ta[128], tb[128];
    size_t rest = length % kShaBlockBytes;
    size_t tail = PadTail(ta, a + full * kShaBlockBytes, rest, kShaBlockBytes + length);
    PadTail(tb, b + full * kShaBlockBytes, rest, kShaBlockBytes + length);
    Sha256NiCompress2(sa, ta, sb, tb, tail);

    uint8_t oa[64], ob[64];
    for (int i = 0; i < 8; i++) {
      StoreBigEndian32(oa + 4 * i, sa[i]);
      StoreBigEndian32(ob + 4 * i, sb[i]);
    }
    PadTail(oa, oa, kDigestBytes, kShaBlockBytes + kDigestBytes);
    PadTail(ob, ob, kDigestBytes, kShaBlockBytes + kDigestBytes);
    std::memcpy(sa, outer_, sizeof sa);
    std::memcpy(sb, outer_, sizeof sb);
    Sha256NiCompress2(sa, oa, sb, ob, 1);
    for (int i = 0; i < 8; i++) {
      StoreBigEndian32(outA + 4 * i, sa[i]);
      StoreBigEndian32(outB + 4 * i, sb[i]);
    }
  }

 private:
  uint32_t inner_[8];
  uint32_t outer_[8];
};

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// HMAC on OpenSSL EVP: the pad states live in two contexts that are copied per block.
class EvpHmac {
 public:
  EvpHmac(Napi::Env env, const uint8_t ipad[64], const uint8_t opad[64])
      : env_(env), inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()), work_(EVP_MD_CTX_new()) {
    Check(inner_ && outer_ && work_, "EVP_MD_CTX_new");
    Check(EVP_DigestInit_ex(inner_.get(), EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex");
    Check(EVP_DigestUpdate(inner_.get(), ipad, 64) == 1, "EVP_DigestUpdate");
    Check(EVP_DigestInit_ex(outer_.get(), EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex");
    Check(EVP_DigestUpdate(outer_.get(), opad, 64) == 1, "EVP_DigestUpdate");
  }

  void One(const uint8_t* data, size_t length, uint8_t* out) {
    uint8_t innerDigest[kDigestBytes];
    unsigned int n = 0;
    bool ok = EVP_MD_CTX_copy_ex(work_.get(), inner_.get()) == 1 && EVP_DigestUpdate(work_.get(), data, length) == 1 &&
              EVP_DigestFinal_ex(work_.get(), innerDigest, &n) == 1 && EVP_MD_CTX_copy_ex(work_.get(), outer_.get()) == 1 &&
              EVP_DigestUpdate(work_.get(), innerDigest, kDigestBytes) == 1 && EVP_DigestFinal_ex(work_.get(), out, &n) == 1;
    Check(ok, "EVP digest");
  }

 private:
  void Check(bool ok, const char* what) const {
    if (!ok) throw Napi::Error::New(env_, std::string("hashBlocks: OpenSSL ") + what + " failed");
  }

  Napi::Env env_;
  MdCtx inner_;
  MdCtx outer_;
  MdCtx work_;
};

Engine ParseEngine(const Napi::Value& v) {
  if (v.IsUndefined()) return BestEngine();
  std::string name = RequireString(v, "engine");
  if (name == "openssl-evp") return Engine::kOpenSsl;
  if (name == "sha-ni-x2") {
    if (!Sha256NiAvailable()) throw SystemError(v.Env(), ENOTSUP, "hashBlocks", "this CPU has no SHA extensions");
    return Engine::kShaNi;
  }
  throw SystemError(v.Env(), EINVAL, "hashBlocks", "unknown engine " + name + "; use sha-ni-x2 or openssl-evp");
}

// hashBlocks(data, blockSizeBytes, key, engine?) -> { digests, zeroMask }
Napi::Value HashBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Bytes data = RequireBytes(info[0], "data");
  const int64_t blockBytes = RequireWholeNumber(info[1], "blockSizeBytes");
  const Bytes key = RequireBytes(info[2], "key");
  const Engine engine = ParseEngine(info[3]);
  if (blockBytes < 1 || static_cast<uint64_t>(blockBytes) > kMaxBlockBytes) {
    throw SystemError(env, EINVAL, "hashBlocks", "blockSizeBytes must be between 1 and 16 MiB");
  }
  if (key.length < 1 || key.length > 64) throw SystemError(env, EINVAL, "hashBlocks", "the key must be 1 to 64 bytes");

  const size_t blockSize = static_cast<size_t>(blockBytes);
  const size_t blocks = (data.length + blockSize - 1) / blockSize;
  Napi::Buffer<uint8_t> digestsValue = Napi::Buffer<uint8_t>::New(env, blocks * kDigestBytes);
  Napi::Uint8Array maskValue = Napi::Uint8Array::New(env, blocks);
  uint8_t* digests = digestsValue.Data();
  uint8_t* mask = maskValue.Data();
  auto blockAt = [&](size_t b) { return data.data + b * blockSize; };
  auto lengthOf = [&](size_t b) { return std::min(blockSize, data.length - b * blockSize); };

  // Blocks to hash: every non-zero block, the first full-size zero block, and a short zero tail.
  std::vector<size_t> todo;
  todo.reserve(blocks);
  size_t zeroBlock = SIZE_MAX;
  for (size_t b = 0; b < blocks; b++) {
    mask[b] = AllZero(blockAt(b), lengthOf(b)) ? 1 : 0;
    bool full = lengthOf(b) == blockSize;
    if (mask[b] && full && zeroBlock != SIZE_MAX) continue;
    if (mask[b] && full) zeroBlock = b;
    todo.push_back(b);
  }

  uint8_t ipad[64], opad[64];
  PaddedKeys(key.data, key.length, ipad, opad);
  if (engine == Engine::kShaNi) {
    const ShaNiHmac hmac(ipad, opad);
    uint8_t unused[kDigestBytes];
    for (size_t i = 0; i < todo.size();) {
      size_t a = todo[i];
      bool pair = i + 1 < todo.size() && lengthOf(todo[i + 1]) == lengthOf(a);
      size_t b = pair ? todo[i + 1] : a;
      hmac.Pair(blockAt(a), blockAt(b), lengthOf(a), digests + a * kDigestBytes, pair ? digests + b * kDigestBytes : unused);
      i += pair ? 2 : 1;
    }
  } else {
    EvpHmac hmac(env, ipad, opad);
    for (size_t b : todo) hmac.One(blockAt(b), lengthOf(b), digests + b * kDigestBytes);
  }
  if (zeroBlock != SIZE_MAX) {
    for (size_t b = zeroBlock + 1; b < blocks; b++) {
      if (mask[b] && lengthOf(b) == blockSize) std::memcpy(digests + b * kDigestBytes, digests + zeroBlock * kDigestBytes, kDigestBytes);
    }
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("digests", digestsValue);
  result.Set("zeroMask", maskValue);
  return result;
}

Napi::Value HashEngine(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), EngineName(BestEngine())); }

}  // namespace

void RegisterHashBlocks(Napi::Env env, Napi::Object exports) {
  exports.Set("hashBlocks", Napi::Function::New(env, HashBlocks));
  exports.Set("hashEngine", Napi::Function::New(env, HashEngine));
}

}  // namespace strata
