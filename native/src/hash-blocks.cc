// Per-block keyed digests for change detection: HMAC-SHA256 of every block of a buffer in one call,
// with the padded key states computed once and copied per block, and an all-zero flag per block.
#include <napi.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include "errors.h"

namespace strata {
namespace {

bool AllZero(const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  for (; i < n; i++) if (p[i] != 0) return false;
  return true;
}

Napi::Value HashBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[2].IsTypedArray()) {
    throw Napi::TypeError::New(env, "hashBlocks(data: Uint8Array, blockSizeBytes: number, key: Uint8Array)");
  }
  auto data = info[0].As<Napi::Uint8Array>();
  int64_t blockSize = ToInt64(info[1], "blockSizeBytes");
  auto key = info[2].As<Napi::Uint8Array>();
  if (blockSize <= 0 || blockSize > (1 << 24)) throw Napi::RangeError::New(env, "blockSizeBytes must be between 1 and 16 MiB");
  if (key.ByteLength() == 0 || key.ByteLength() > 64) throw Napi::RangeError::New(env, "key must be 1 to 64 bytes");

  const uint8_t* bytes = data.Data();
  size_t length = data.ByteLength();
  size_t blocks = (length + blockSize - 1) / blockSize;

  // HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)); both padded-key prefixes are one SHA-256 block.
  uint8_t ipad[64], opad[64];
  std::memset(ipad, 0x36, 64);
  std::memset(opad, 0x5c, 64);
  for (size_t i = 0; i < key.ByteLength(); i++) {
    ipad[i] ^= key.Data()[i];
    opad[i] ^= key.Data()[i];
  }
  // The low-level SHA-256 context is a plain struct: copying it per block costs far less than
  // EVP's context copy, and it runs the same SHA-NI code.
  SHA256_CTX inner, outer;
  SHA256_Init(&inner);
  SHA256_Update(&inner, ipad, 64);
  SHA256_Init(&outer);
  SHA256_Update(&outer, opad, 64);

  Napi::Buffer<uint8_t> digests = Napi::Buffer<uint8_t>::New(env, blocks * 32);
  Napi::Uint8Array zeroMask = Napi::Uint8Array::New(env, blocks);
  uint8_t innerDigest[32];
  for (size_t b = 0; b < blocks; b++) {
    size_t off = b * blockSize;
    size_t n = std::min<size_t>(blockSize, length - off);
    zeroMask[b] = AllZero(bytes + off, n) ? 1 : 0;
    SHA256_CTX work = inner;
    SHA256_Update(&work, bytes + off, n);
    SHA256_Final(innerDigest, &work);
    work = outer;
    SHA256_Update(&work, innerDigest, 32);
    SHA256_Final(digests.Data() + b * 32, &work);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("digests", digests);
  result.Set("zeroMask", zeroMask);
  return result;
}

}  // namespace

void RegisterHashBlocks(Napi::Env env, Napi::Object exports) {
  exports.Set("hashBlocks", Napi::Function::New(env, HashBlocks));
}

}  // namespace strata
