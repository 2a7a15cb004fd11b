{
  "targets": [
    {
      "target_name": "strata_native",
      "sources": [
        "src/addon.cc",
        "src/args.cc",
        "src/block-io.cc",
        "src/bpf-tracker.cc",
        "src/errors.cc",
        "src/hash-blocks.cc",
        "src/sha256-ni.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "libraries": ["-lcrypto"]
    }
  ]
}
