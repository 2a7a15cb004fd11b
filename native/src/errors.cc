// errno names and Node-shaped system errors for every function of the addon.
#include "errors.h"
#include <cstring>

namespace strata {

const char* ErrnoName(int err) {
  switch (err) {
#define STRATA_ERRNO(name) \
  case name:               \
    return #name;
    STRATA_ERRNO(EPERM)
    STRATA_ERRNO(ENOENT)
    STRATA_ERRNO(EINTR)
    STRATA_ERRNO(EIO)
    STRATA_ERRNO(ENXIO)
    STRATA_ERRNO(E2BIG)
    STRATA_ERRNO(EBADF)
    STRATA_ERRNO(EAGAIN)
    STRATA_ERRNO(ENOMEM)
    STRATA_ERRNO(EACCES)
    STRATA_ERRNO(EFAULT)
    STRATA_ERRNO(ENOTBLK)
    STRATA_ERRNO(EBUSY)
    STRATA_ERRNO(EEXIST)
    STRATA_ERRNO(EXDEV)
    STRATA_ERRNO(ENODEV)
    STRATA_ERRNO(ENOTDIR)
    STRATA_ERRNO(EISDIR)
    STRATA_ERRNO(EINVAL)
    STRATA_ERRNO(ENFILE)
    STRATA_ERRNO(EMFILE)
    STRATA_ERRNO(ENOTTY)
    STRATA_ERRNO(ETXTBSY)
    STRATA_ERRNO(EFBIG)
    STRATA_ERRNO(ENOSPC)
    STRATA_ERRNO(ESPIPE)
    STRATA_ERRNO(EROFS)
    STRATA_ERRNO(EPIPE)
    STRATA_ERRNO(ERANGE)
    STRATA_ERRNO(ENAMETOOLONG)
    STRATA_ERRNO(ENOSYS)
    STRATA_ERRNO(ENODATA)
    STRATA_ERRNO(EOVERFLOW)
    STRATA_ERRNO(EOPNOTSUPP)  // == ENOTSUP on Linux
    STRATA_ERRNO(ETIMEDOUT)
    STRATA_ERRNO(ESTALE)
    STRATA_ERRNO(EDQUOT)
    STRATA_ERRNO(ECANCELED)
    STRATA_ERRNO(ENOMEDIUM)
    STRATA_ERRNO(EMEDIUMTYPE)
#undef STRATA_ERRNO
    default:
      return "UNKNOWN";
  }
}

Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  std::string message = std::string(ErrnoName(err)) + ": " + std::strerror(err) + ", " + syscall;
  if (!detail.empty()) message += ": " + detail;
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));  // negative, as in Node's own system errors
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

}  // namespace strata
