/**
 * The CPU part of sampling: what the sample_topk kernel returns (the k
 * largest temperature-scaled logits, sorted, with ids, and the log-sum-exp of
 * all of them), decoded, filtered by top-k, top-p and min-p, and sampled.
 * Pure functions, no GPU.
 *
 * Order and meaning, as in Hugging Face transformers (temperature first,
 * then the filters; llama.cpp's default chain filters before scaling):
 *   1. temperature T: logits / T (done on the GPU);
 *   2. top-k: keep the first topK candidates. When topK is given the
 *      probabilities are the softmax over those candidates; without it they
 *      are relative to the whole vocabulary (through the log-sum-exp), so
 *      top-p measures true probability mass;
 *   3. top-p: keep the shortest prefix whose probability reaches topP (at
 *      least one candidate). Without top-k, when the whole list holds less
 *      than topP (the nucleus is longer than the k read back) every candidate
 *      is kept: an approximation that the caller can make rare by asking the
 *      GPU for more candidates;
 *   4. min-p: keep candidates with probability >= minP * the largest;
 *   5. draw from what is kept, renormalised, with a uniform number u in [0, 1).
 */

/** The sample_topk result, decoded. */
export interface TopKCandidates {
  /** Token ids, best first. */
  ids: Uint32Array;
  /** Their logits divided by the temperature, descending. */
  logits: Float32Array;
  /** log(sum over the whole vocabulary of exp(logit / temperature)). */
  logSumExp: number;
}

/** Decodes the sample_topk result words: count, log-sum-exp bits, then (scaled logit bits, id) by rank. */
export function decodeTopKResult(result: ArrayBuffer | Uint32Array): TopKCandidates {
  const words = result instanceof Uint32Array ? result : new Uint32Array(result);
  const count = words[0];
  if (words.length < 2 + 2 * count) throw new RangeError(`a top-${count} result needs ${2 + 2 * count} words, got ${words.length}`);
  const floats = new Float32Array(words.buffer, words.byteOffset, words.length);
  const ids = new Uint32Array(count);
  const logits = new Float32Array(count);
  for (let r = 0; r < count; r++) {
    logits[r] = floats[2 + 2 * r];
    ids[r] = words[3 + 2 * r];
  }
  return { ids, logits, logSumExp: floats[1] };
}

export interface SamplingFilters {
  /** Keep at most this many candidates; 0 or absent: no top-k (probabilities over the whole vocabulary). */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 or absent: off. */
  topP?: number;
  /** In [0, 1]; 0 or absent: off. */
  minP?: number;
}

export interface KeptCandidates {
  ids: Uint32Array;
  /** Renormalised over the kept candidates, summing to 1, descending. */
  probabilities: Float64Array;
}

/** Applies top-k, top-p and min-p (in that order) to `candidates`; see the module comment. */
export function filterCandidates(candidates: TopKCandidates, filters: SamplingFilters = {}): KeptCandidates {
  const { topK = 0, topP = 1, minP = 0 } = filters;
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  if (!(minP >= 0 && minP <= 1)) throw new RangeError(`minP must be in [0, 1], got ${minP}`);
  const available = candidates.ids.length;
  if (available === 0) throw new RangeError('no candidates to sample from');
  let kept = topK > 0 ? Math.min(topK, available) : available;
  const logits = candidates.logits.subarray(0, kept);
  const logNormaliser = topK > 0 ? logSumExp(logits) : candidates.logSumExp;
  const probabilities = Float64Array.from(logits, (logit) => Math.exp(logit - logNormaliser));

  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < kept; i++) {
      mass += probabilities[i];
      if (mass >= topP) {
        kept = i + 1;
        break;
      }
    }
  }
  const floor = minP * probabilities[0];
  let minPKept = 1;
  while (minPKept < kept && probabilities[minPKept] >= floor) minPKept++;
  kept = minPKept;

  const total = probabilities.subarray(0, kept).reduce((sum, p) => sum + p, 0);
  return { ids: candidates.ids.slice(0, kept), probabilities: probabilities.slice(0, kept).map((p) => p / total) };
}

/** The index drawn from `probabilities` (summing to 1) by a uniform `u` in [0, 1): the first whose cumulative sum exceeds u. */
export function drawIndex(probabilities: ArrayLike<number>, u: number): number {
  if (!(u >= 0 && u < 1)) throw new RangeError(`u must be in [0, 1), got ${u}`);
  let cumulative = 0;
  for (let i = 0; i < probabilities.length; i++) {
    cumulative += probabilities[i];
    if (u < cumulative) return i;
  }
  // Rounding can leave the total a hair below 1.
  return probabilities.length - 1;
}

/** A token id sampled from `candidates` with `filters`, using the uniform number `u` in [0, 1). */
export function sampleFromCandidates(candidates: TopKCandidates, filters: SamplingFilters, u: number): number {
  const kept = filterCandidates(candidates, filters);
  return kept.ids[drawIndex(kept.probabilities, u)];
}

function logSumExp(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]);
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}
