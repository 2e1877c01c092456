#!/usr/bin/env bash
# Prepares the llama.cpp reference used by the tests, idempotently and offline:
#   tools/reference/node_modules   node-llama-cpp with only its prebuilt CPU build
#                                  (the optional CUDA/Vulkan/other-platform builds
#                                  are 600+ MB and never needed here)
#   tools/reference/llama.cpp      the models/ folder of the llama.cpp source that
#                                  node-llama-cpp ships as a git bundle: real
#                                  vocabulary-only GGUF files with expected
#                                  tokenizations, and real chat templates, read
#                                  by tests as data
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tools/reference"

if [[ ! -f node_modules/node-llama-cpp/package.json || ! -d node_modules/@node-llama-cpp/linux-x64 ]]; then
  # `npm install --no-save` rather than `npm ci`: it installs the locked
  # versions, but unlike `npm ci` accepts a lock file without the other
  # platforms' optional packages, which a registry mirror may not serve.
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-save --no-audit --no-fund
fi

if [[ ! -f llama.cpp/models/ggml-vocab-qwen2.gguf ]]; then
  rm -rf llama.cpp.partial
  git clone -q --no-checkout node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp.partial
  git -C llama.cpp.partial sparse-checkout set --no-cone /models/ >/dev/null
  git -C llama.cpp.partial -c advice.detachedHead=false checkout -q
  rm -rf llama.cpp
  mv llama.cpp.partial llama.cpp
fi
echo "llama.cpp reference ready: $(node -p "require('./node_modules/node-llama-cpp/package.json').version") (node-llama-cpp), $(ls llama.cpp/models/*.gguf | wc -l) vocabulary files"
