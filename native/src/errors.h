// Throws JS errors shaped like Node's system errors (code, errno, syscall), so the TypeScript side
// maps them to Strata's typed codes the same way it maps fs errors.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace strata {

const char* ErrnoName(int err);

inline Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& detail = "") {
  std::string msg = std::string(ErrnoName(err)) + ": " + std::strerror(err) + ", " + syscall;
  if (!detail.empty()) msg += " (" + detail + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

inline int64_t ToInt64(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a non-negative whole number");
  }
  return static_cast<int64_t>(d);
}

}  // namespace strata
