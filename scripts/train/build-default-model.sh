#!/usr/bin/env bash
# Rebuilds the built-in default model (models/default-moe-q8_0.gguf) from
# scratch, on a Debian 12 machine, as root for the apt step:
#   python3-doc          the corpus: Python 3.11 documentation sources (PSF License Version 2)
#   python3-torch        PyTorch 1.13 (CPU) for training
#   libopenblas0-openmp  a fast BLAS for PyTorch (Debian's default reference BLAS is ~15x slower)
# Then: corpus -> BPE vocabulary and token ids -> training (resumable: rerun
# with RESUME=1 after an interruption) -> GGUF export -> checks against
# llama.cpp -> routing statistics. Outputs go to scripts/train/work/ (ignored
# by git) and bench/default-model/; the Q8_0 file is copied to models/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly WORK=scripts/train/work
readonly RESULTS=bench/default-model

if [[ ${SKIP_APT:-0} != 1 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-doc python3-torch python3-numpy libopenblas0-openmp
fi
/usr/bin/python3 scripts/train/extract_corpus.py --out "$WORK"
npx tsx scripts/train/tokenize.ts "$WORK"
/usr/bin/python3 scripts/train/train.py --work "$WORK" ${RESUME:+--resume} | tee -a "$WORK/train.out"
npx tsx scripts/train/export.ts "$WORK" --ship
bash scripts/prepare-reference.sh
mkdir -p "$RESULTS"
cp "$WORK/train-log.csv" "$RESULTS/train-log.csv"
npx tsx scripts/train/evaluate.ts "$WORK" --windows 8 --tokens 256 --out "$RESULTS/eval.json"
npx tsx scripts/train/routing.ts "$WORK" --windows 16 --tokens 256 --fixture 2 --out "$RESULTS/routing.json"
