// Module entry of strata_native: registers every function. Node-API only (no V8 API), so one
// build loads in Node and in Electron; no global state, so it loads in worker threads too.
#include <napi.h>

namespace strata {

void RegisterBlockIo(Napi::Env env, Napi::Object exports);
void RegisterBpfTracker(Napi::Env env, Napi::Object exports);
void RegisterHashBlocks(Napi::Env env, Napi::Object exports);

namespace {

// Bumped when a function's behaviour changes, so a stale build is visible in logs.
constexpr const char* kAddonVersion = "strata-native 2";

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterBlockIo(env, exports);
  RegisterBpfTracker(env, exports);
  RegisterHashBlocks(env, exports);
  exports.Set("addonVersion", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::String::New(info.Env(), kAddonVersion);
              }));
  return exports;
}

}  // namespace
}  // namespace strata

// The registration macro pastes its argument into a name, so it needs an unqualified function.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return strata::Init(env, exports); }

NODE_API_MODULE(strata_native, InitModule)
