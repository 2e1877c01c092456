#!/usr/bin/env bash
# webmoe GPU kit: runs the benchmarks on this machine with nothing installed
# but bash, coreutils, xz and tar, and writes one markdown file per benchmark,
# named after the adapter, into the results folder: adapter-<slug>.md,
# kernels-<slug>.md, decode-<slug>.md, prefill-<slug>.md, experts-<slug>.md, cli-<slug>.md,
# run-<slug>.md (each step's outcome and seconds) and run.log, where <slug>
# is gpu-<device> (gpu-nvidia-h200) or cpu-<implementation> (cpu-lavapipe).
#
# usage: bash run.sh [--out DIR] [--quick] [--allow-cpu] [--kit-vulkan] [--icd FILE]
#                    [--only adapter,kernels,decode,prefill,experts,cli] [--budget-s N]
#   --out DIR      results folder (default: results/ beside this script)
#   --quick        tiny sizes, for a rehearsal on a CPU adapter (default: the real sizes)
#   --allow-cpu    go on when the adapter is a CPU one (lavapipe, SwiftShader)
#   --kit-vulkan   use the kit's Vulkan loader even where the machine has one
#   --icd FILE     the Vulkan driver manifest to use (sets VK_DRIVER_FILES)
#   --only LIST    the steps to run (adapter always runs)
#   --budget-s N   the whole run's time; no step runs past it (default 450, --quick 900)
#   --kernels-args "..." / --decode-args "..." / --prefill-args "..." / --experts-args "..."
#                  replace a benchmark's options (its sizes; see bench/ in the repository)
set -u -o pipefail
run_args="$*"

kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$kit/results"
quick=no
allow_cpu=no
kit_vulkan=no
only="kernels,decode,prefill,experts,cli"
budget_s=""
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) results=$2; shift 2 ;;
    --quick) quick=yes; shift ;;
    --allow-cpu) allow_cpu=yes; shift ;;
    --kit-vulkan) kit_vulkan=yes; shift ;;
    --icd) export VK_DRIVER_FILES=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --budget-s) budget_s=$2; shift 2 ;;
    --kernels-args|--decode-args|--prefill-args|--experts-args) overrides+=("$1" "$2"); shift 2 ;;
    -h|--help) tail -n +2 "${BASH_SOURCE[0]}" | while IFS= read -r line; do [[ $line == '#'* ]] || break; echo "${line:2}"; done; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$budget_s" ] || { [ $quick = yes ] && budget_s=900 || budget_s=450; }

mkdir -p "$results"
results=$(cd "$results" && pwd)
log="$results/run.log"
: >"$log"
say() { echo "[run.sh $(date +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$log" >&2; }
die() { say "FAILED: $*"; exit 1; }

# ---- unpack: Node and Dawn next to the bundles, in the kit or a scratch folder
if [ -w "$kit" ]; then rt="$kit/runtime"; rm -rf "$rt"; else rt=$(mktemp -d "${TMPDIR:-/tmp}/webmoe-gpu-kit.XXXXXX"); fi
say "unpacking into $rt"
mkdir -p "$rt/bin" "$rt/node_modules/webgpu/dist/linux-x64" "$rt/tmp" "$rt/lib"
cp -R "$kit/app" "$kit/models" "$kit/package.json" "$rt/" || die "copy app/, models/, package.json"
cp "$kit/node_modules/webgpu/package.json" "$kit/node_modules/webgpu/index.js" "$rt/node_modules/webgpu/" || die "copy webgpu"
xz -dc "$kit/bin/node.xz" >"$rt/bin/node" && chmod +x "$rt/bin/node" || die "xz -d node"
xz -dc "$kit/node_modules/webgpu/dist/linux-x64/dawn.node.xz" >"$rt/node_modules/webgpu/dist/linux-x64/dawn.node" || die "xz -d dawn.node"
node="$rt/bin/node"
"$node" --version >/dev/null 2>&1 || die "the kit's node does not start here: $("$node" --version 2>&1 | head -c 300)"
say "node $("$node" --version)"
export TMPDIR="$rt/tmp"

# ---- Vulkan: the loader from the kit's .deb files where the machine has none
host_has_lib() {
  local ldconfig listing dir
  for ldconfig in /sbin/ldconfig /usr/sbin/ldconfig; do
    if [ -x "$ldconfig" ]; then
      listing=$("$ldconfig" -p 2>/dev/null)
      [[ $listing == *"$1 "* ]] && return 0
    fi
  done
  for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /usr/lib /usr/local/lib /usr/local/nvidia/lib64; do
    [ -e "$dir/$1" ] && return 0
  done
  return 1
}
unpack_deb() { # deb file, member, offset, bytes
  if [ -z "${WEBMOE_KIT_NO_DPKG:-}" ] && command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$kit/debs/$1" "$rt/deb-root"
  else
    local flag=-J
    case "$2" in *.gz) flag=-z ;; *.zst) flag=--zstd ;; esac
    tail -c +$(($3 + 1)) "$kit/debs/$1" | head -c "$4" | tar -x $flag -f - -C "$rt/deb-root"
  fi
}
if [ $kit_vulkan = yes ] || ! host_has_lib libvulkan.so.1; then
  mkdir -p "$rt/deb-root"
  while read -r deb member offset bytes; do
    unpack_deb "$deb" "$member" "$offset" "$bytes" || die "unpack $deb"
  done <"$kit/debs/INDEX"
  for lib in "$rt"/deb-root/usr/lib/x86_64-linux-gnu/*.so*; do
    name=${lib##*/}
    # Only what the machine lacks: its own glvnd (NVIDIA's drivers may bring one) stays first.
    if [ $kit_vulkan = yes ] || ! host_has_lib "$name"; then cp -P "$lib" "$rt/lib/"; fi
  done
  export LD_LIBRARY_PATH="$rt/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "Vulkan loader from the kit: $(cd "$rt/lib" && echo *)"
else
  say "Vulkan loader: the machine's"
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  standard=()
  for manifest in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json; do
    [ -e "$manifest" ] && standard+=("$manifest")
  done
  if [ -e $nvidia_icd ] && [[ "${standard[*]}" != *nvidia* ]]; then
    # Containers with NVIDIA's driver mounted keep its manifest outside the loader's search path.
    if [ ${#standard[@]} -eq 0 ]; then export VK_DRIVER_FILES=$nvidia_icd; else export VK_ADD_DRIVER_FILES=$nvidia_icd; fi
  fi
fi
# Where NVIDIA's driver is mounted into a container, its libraries (the Vulkan driver among them) live here.
for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  if [ -d "$dir" ] && [[ ":${LD_LIBRARY_PATH:-}:" != *":$dir:"* ]]; then export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"; fi
done
say "Vulkan driver manifests: ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-found by the loader}}${VK_ADD_DRIVER_FILES:+ + $VK_ADD_DRIVER_FILES}; LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

# ---- steps
summary=()
step() { # name, limit s, stdout file ('' for the log), result file it makes ('-' for none), command...
  local name=$1 limit=$2 stdout=$3 report=$4 left status started
  shift 4
  left=$((budget_s - SECONDS))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    say "$name: skipped, the run's ${budget_s} s budget is spent"
    summary+=("| $name | skipped (budget spent) | - | - |")
    return 1
  fi
  say "$name: start (limit ${limit} s): ${*##*/}"
  started=$SECONDS
  if [ -n "$stdout" ]; then
    timeout -k 10 "$limit" "$@" >"$stdout" 2> >(tee -a "$log" >&2)
  else
    timeout -k 10 "$limit" "$@" >>"$log" 2> >(tee -a "$log" >&2)
  fi
  status=$?
  local seconds=$((SECONDS - started)) outcome=ok
  [ $status -eq 124 ] || [ $status -eq 137 ] && outcome="timed out after ${limit} s"
  [ $status -ne 0 ] && [ "$outcome" = ok ] && outcome="failed (exit $status)"
  say "$name: $outcome in ${seconds} s"
  [ $status -ne 0 ] && [ "$report" != - ] && [ ! -s "$results/$report" ] && report="$report (not written)"
  summary+=("| $name | $outcome | $seconds | $report |")
  [ $status -eq 0 ]
}
wants() { [[ ",$only," == *",$1,"* ]]; }

adapter_file="$rt/adapter.txt"
step adapter 60 "$adapter_file" - "$node" "$rt/app/adapter.mjs" || { cat "$adapter_file" >&2; die "no WebGPU adapter (see $log)"; }
declare -A adapter=()
while IFS='=' read -r key value; do
  case "$key" in vendor|architecture|device|description|cpu|slug) adapter[$key]=$value ;; esac
done <"$adapter_file"
slug=${adapter[slug]:-unknown}
say "adapter: vendor '${adapter[vendor]:-}', architecture '${adapter[architecture]:-}', device '${adapter[device]:-}', description '${adapter[description]:-}' -> $slug"
if [ "${adapter[cpu]:-yes}" = yes ] && [ $allow_cpu = no ]; then
  die "the adapter is a CPU one ($slug), not a GPU: check the NVIDIA driver and its Vulkan manifest (--icd FILE), or pass --allow-cpu"
fi
{
  echo "# Adapter ($slug)"
  echo
  echo "Packed: $(head -n 1 "$kit/MANIFEST.txt"). Run: \`bash run.sh $run_args\`, $([ $quick = yes ] && echo quick || echo real) sizes, $(date -u +%Y-%m-%dT%H:%M:%SZ)."
  echo
  echo '```'
  while IFS= read -r line; do [[ $line == [a-z]*=* ]] || echo "$line"; done <"$adapter_file"
  echo '```'
} >"$results/adapter-$slug.md"

if [ $quick = yes ]; then
  kernels_args=(--small --reps 1 --warmup 0 --formats q4_k --ring-mib 8 --target-ms 1 --max-batch 4 --case-budget-s 1)
  decode_args=(--models olmoe --prompt 4 --decode 1)
  prefill_args=(--models olmoe --prompt 8 --decode 1 --batches 8)
  experts_args=(--layers 2 --hidden 256 --heads 4 --experts 16 --top-k 4 --expert-ff 256 --prompt 4 --decode 4)
  limits=(300 300 240 120 240)
else
  # Rings of twice an H200's L2 or more, so weights come from memory; cases stop early on a GPU anyway.
  kernels_args=(--ring-mib 256 --case-budget-s 2)
  decode_args=(--prompt 256 --decode 32)
  prefill_args=(--prompt 256 --decode 8 --batches 32,128 --layers 2 --rounds 3)
  experts_args=(--layers 8 --hidden 2048 --heads 16 --experts 64 --top-k 8 --expert-ff 1024 --prompt 8 --decode 64)
  limits=(120 120 150 40 60)
fi

for ((i = 0; i < ${#overrides[@]}; i += 2)); do
  case "${overrides[i]}" in
    --kernels-args) read -ra kernels_args <<<"${overrides[i + 1]}" ;;
    --decode-args) read -ra decode_args <<<"${overrides[i + 1]}" ;;
    --prefill-args) read -ra prefill_args <<<"${overrides[i + 1]}" ;;
    --experts-args) read -ra experts_args <<<"${overrides[i + 1]}" ;;
  esac
done

failed=0
if wants kernels; then
  step kernels "${limits[0]}" "$results/kernels-$slug.md" "kernels-$slug.md" "$node" "$rt/app/kernels.mjs" "${kernels_args[@]}" || failed=1
fi
if wants decode; then
  # It writes --out itself; its stdout repeats the report.
  step decode "${limits[1]}" /dev/null "decode-$slug.md" "$node" "$rt/app/decode.mjs" "${decode_args[@]}" --out "$results/decode-$slug.md" || failed=1
fi
if wants prefill; then
  # Grouped prefill against token by token, in one process; it writes --out itself.
  step prefill "${limits[4]}" /dev/null "prefill-$slug.md" "$node" "$rt/app/prefill.mjs" "${prefill_args[@]}" --out "$results/prefill-$slug.md" || failed=1
fi
if wants experts; then
  step experts "${limits[2]}" "$results/experts-$slug.md" "experts-$slug.md" "$node" "$rt/app/experts.mjs" "${experts_args[@]}" || failed=1
fi
if wants cli; then
  # The CLI end to end: the built-in default model answers on this adapter.
  cli_prompt="Python's list comprehensions"
  step cli "${limits[3]}" "$rt/tmp/cli-run.json" "cli-$slug.md" "$node" "$rt/app/webmoe.mjs" run --prompt "$cli_prompt" --max-tokens 32 --json || failed=1
  if [ -s "$rt/tmp/cli-run.json" ]; then
    {
      echo "# webmoe run on $slug"
      echo
      echo "\`webmoe run --prompt \"$cli_prompt\" --max-tokens 32 --json\` with the built-in default model:"
      echo
      echo '```json'
      cat "$rt/tmp/cli-run.json"
      echo
      echo '```'
    } >"$results/cli-$slug.md"
  fi
fi
rm -rf "$rt/tmp"

{
  echo "# GPU kit run on $slug"
  echo
  echo "$([ $quick = yes ] && echo 'Quick (tiny) sizes.' || echo 'Real sizes.') Whole run: ${SECONDS} s of a ${budget_s} s budget."
  echo
  echo '| step | outcome | seconds | output |'
  echo '|---|---|---|---|'
  printf '%s\n' "${summary[@]}"
} >"$results/run-$slug.md"
say "results in $results: $(cd "$results" && echo *)"
[ $failed -eq 0 ] || die "a step failed or timed out (see $results/run-$slug.md)"
say "done"
