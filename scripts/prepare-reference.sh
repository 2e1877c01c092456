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
#   tools/reference/bin            llama-quantize, llama-imatrix and llama-gguf-split,
#                                  built (g++) from that same source: tests make
#                                  their quantized and split files with them, as
#                                  users get theirs. Built once; skipped when the
#                                  binaries of this source are present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tools/reference"

# True when every named file exists in directory $1.
all_present() {
  local dir=$1
  shift
  for name in "$@"; do [[ -x "$dir/$name" ]] || return 1; done
}

if [[ ! -f node_modules/node-llama-cpp/package.json || ! -d node_modules/@node-llama-cpp/linux-x64 ]]; then
  # `npm install --no-save` rather than `npm ci`: it installs the locked
  # versions, but unlike `npm ci` accepts a lock file without the other
  # platforms' optional packages, which a registry mirror may not serve.
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-save --no-audit --no-fund
fi
readonly LIBS=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
# ggml loads the CPU backend variant that scores best on this CPU. Its AMX one
# (sapphirerapids, picked on Xeons with AMX) gives infinite logits for a
# deepseek2 Q5_K_S file and fails GGML_ASSERT(*cur_backend_id != -1) in the
# scheduler on a TQ2_0 one, where every other variant agrees with the CPU
# reference: it is removed, so the reference is llama.cpp's ordinary CPU
# kernels (the best of the other variants) on every machine.
rm -f "$LIBS"/libggml-cpu-sapphirerapids.so bin/libggml-cpu-sapphirerapids.so

if [[ ! -f llama.cpp/models/ggml-vocab-qwen2.gguf ]]; then
  rm -rf llama.cpp.partial
  git clone -q --no-checkout node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp.partial
  git -C llama.cpp.partial sparse-checkout set --no-cone /models/ >/dev/null
  git -C llama.cpp.partial -c advice.detachedHead=false checkout -q
  rm -rf llama.cpp
  mv llama.cpp.partial llama.cpp
fi
# The tools: each one's own source files compiled against the libraries of
# node-llama-cpp's prebuilt CPU build (the same llama.cpp release as the
# source), so no library is rebuilt: seconds, not minutes, on 2 cores.
readonly TOOLS=(quantize imatrix gguf-split)
source_id="$(git -C llama.cpp rev-parse HEAD) $(node -p "require('./node_modules/node-llama-cpp/package.json').version")"
if [[ ! -f bin/source-id || "$(cat bin/source-id)" != "$source_id" ]] || ! all_present bin "${TOOLS[@]/#/llama-}"; then
  build_start=$(date +%s)
  git -C llama.cpp sparse-checkout add /include/ /ggml/include/ /common/ /vendor/ "${TOOLS[@]/#//tools/}" >/dev/null
  rm -rf bin.partial && mkdir bin.partial
  libs_dir=$(cd "$LIBS" && pwd)
  for tool in "${TOOLS[@]}"; do
    g++ -std=c++17 -O1 -w -Illama.cpp/include -Illama.cpp/ggml/include -Illama.cpp/common -Illama.cpp/vendor \
      -Illama.cpp/tools/"$tool" llama.cpp/tools/"$tool"/*.cpp -o bin.partial/llama-"$tool" \
      "$libs_dir"/libllama-common.so "$libs_dir"/libllama.v*.so "$libs_dir"/libggml.v*.so "$libs_dir"/libggml-base.so \
      -Wl,-rpath,"$libs_dir" -lpthread
  done
  # llama-imatrix runs the model: its CPU backend is found beside the executable.
  ln -s "$libs_dir"/libggml-cpu-*.so bin.partial/
  echo "$source_id" >bin.partial/source-id
  rm -rf bin && mv bin.partial bin
  echo "built ${TOOLS[*]/#/llama-} in $(($(date +%s) - build_start)) s"
fi

echo "llama.cpp reference ready: $(node -p "require('./node_modules/node-llama-cpp/package.json').version") (node-llama-cpp), $(ls llama.cpp/models/*.gguf | wc -l) vocabulary files, tools in bin/: ${TOOLS[*]/#/llama-}"
