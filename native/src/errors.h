// Throws JS errors shaped like Node's system errors (code, errno, syscall, message), so the
// TypeScript side maps them to Strata's typed codes the same way it maps fs errors.
#pragma once
#include <napi.h>
#include <cerrno>
#include <string>

namespace strata {

// The errno constant's name ("EBUSY"), or "UNKNOWN" for one Linux rarely returns from our calls.
const char* ErrnoName(int err);

// An Error like Node's: message "EBUSY: Device or resource busy, ioctl(FIFREEZE)", errno negative.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& detail = "");

}  // namespace strata
