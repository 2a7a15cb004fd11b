// Argument checks with Node's error codes, so a caller's bug reads like one in Node's own fs.
#include "args.h"
#include <climits>
#include <cmath>

namespace strata {
namespace {

[[noreturn]] void ThrowType(const Napi::Env& env, const char* name, const char* expected) {
  Napi::TypeError e = Napi::TypeError::New(env, std::string("The \"") + name + "\" argument must be " + expected);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}

[[noreturn]] void ThrowRange(const Napi::Env& env, const char* name, const char* expected) {
  Napi::RangeError e = Napi::RangeError::New(env, std::string("The value of \"") + name + "\" is out of range. It must be " + expected);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw e;
}

constexpr double kMaxSafeInteger = 9007199254740991.0;

}  // namespace

int64_t RequireWholeNumber(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) ThrowType(v.Env(), name, "of type number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= kMaxSafeInteger) || std::floor(d) != d) ThrowRange(v.Env(), name, "a whole number from 0 to 2^53 - 1");
  return static_cast<int64_t>(d);
}

int RequireFd(const Napi::Value& v, const char* name) {
  int64_t fd = RequireWholeNumber(v, name);
  if (fd > INT_MAX) ThrowRange(v.Env(), name, "a file descriptor (0 to 2^31 - 1)");
  return static_cast<int>(fd);
}

std::string RequireString(const Napi::Value& v, const char* name) {
  if (!v.IsString()) ThrowType(v.Env(), name, "of type string");
  return v.As<Napi::String>().Utf8Value();
}

Bytes RequireBytes(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray()) ThrowType(v.Env(), name, "a Uint8Array or Buffer");
  auto array = v.As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_uint8_array && array.TypedArrayType() != napi_uint8_clamped_array) {
    ThrowType(v.Env(), name, "a Uint8Array or Buffer");
  }
  auto bytes = v.As<Napi::Uint8Array>();
  return {bytes.Data(), bytes.ByteLength()};
}

}  // namespace strata
