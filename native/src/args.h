// Argument checks shared by every function: wrong types throw TypeError and out-of-range numbers
// RangeError with Node's codes (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE), before any syscall runs.
#pragma once
#include <napi.h>
#include <cstddef>
#include <cstdint>
#include <string>

namespace strata {

struct Bytes {
  const uint8_t* data;
  size_t length;
};

// A non-negative integer no larger than 2^53 - 1 (every byte offset a JS number holds exactly).
int64_t RequireWholeNumber(const Napi::Value& v, const char* name);

// A file descriptor: a whole number that fits an int.
int RequireFd(const Napi::Value& v, const char* name);

std::string RequireString(const Napi::Value& v, const char* name);

// The bytes of a Uint8Array (Buffer included); the view stays valid while the caller holds v.
Bytes RequireBytes(const Napi::Value& v, const char* name);

}  // namespace strata
