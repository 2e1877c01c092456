/**
 * Choosing the next token from what a forward pass returns. Pure CPU code,
 * apart from deciding what the GPU should return in the first place.
 *
 * Three paths, picked once per request from its sampling options:
 *   greedy    temperature 0 (the default): the GPU's argmax of the last
 *             token (one id read back). With a repetition penalty the full
 *             logits come back and the argmax is taken on the CPU after it.
 *   gpu-topk  temperature > 0, top-k set and <= the model's maxTopK, no
 *             penalty: the GPU returns the k best candidates (logits /
 *             temperature, sorted) and top-p / min-p / the draw run on them.
 *             This is exact, because with top-k the probabilities are the
 *             softmax over those k (see src/kernels/sampling.ts).
 *   cpu       anything else (no top-k, a top-k beyond maxTopK, or a
 *             penalty): the full logits come back and everything runs here.
 * Both sampling paths apply, in order: repetition penalty on the raw logits,
 * temperature, top-k, top-p, min-p, then a draw with a uniform number from
 * the request's own seeded PRNG (mulberry32), so the same seed gives the same
 * tokens on either path. The repetition penalty is llama.cpp's: over the
 * distinct tokens among the last `repeatLastN` of prompt and output, a
 * positive logit is divided by the penalty and a non-positive one multiplied.
 */

import { drawIndex, filterCandidates } from '../kernels/sampling';
import type { SamplingFilters, TopKCandidates } from '../kernels/sampling';
import type { ForwardOutput, ForwardResult } from '../models/moe-transformer';
import { mulberry32 } from '../quant/random';
import { EngineError } from './errors';

export interface SamplingOptions {
  /** 0 (default): greedy, every other option but the penalty is ignored. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 (default): off. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 (default): off. */
  topP?: number;
  /** Drop tokens below minP times the most likely one's probability, in [0, 1]; 0 (default): off. */
  minP?: number;
  /** > 0; 1 (default): off. */
  repeatPenalty?: number;
  /** How many of the latest tokens the penalty looks at; default 64 (llama.cpp's), -1: all of them. */
  repeatLastN?: number;
  /** PRNG seed (an integer, taken mod 2^32); default: a random one. Same seed and request, same tokens. */
  seed?: number;
}

export type SamplingPath = 'greedy' | 'gpu-topk' | 'cpu';

export const DEFAULT_REPEAT_LAST_N = 64;

/** Throws EngineError BAD_REQUEST naming the first option out of range. */
export function checkSamplingOptions(o: SamplingOptions): void {
  const bad = (message: string) => new EngineError('BAD_REQUEST', `sampling: ${message}`);
  if (o.temperature !== undefined && !(Number.isFinite(o.temperature) && o.temperature >= 0)) throw bad(`temperature must be a number >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw bad(`topK must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw bad(`topP must be in (0, 1], got ${o.topP}`);
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) throw bad(`minP must be in [0, 1], got ${o.minP}`);
  if (o.repeatPenalty !== undefined && !(Number.isFinite(o.repeatPenalty) && o.repeatPenalty > 0)) throw bad(`repeatPenalty must be a number > 0, got ${o.repeatPenalty}`);
  if (o.repeatLastN !== undefined && !(Number.isInteger(o.repeatLastN) && o.repeatLastN >= -1)) throw bad(`repeatLastN must be an integer >= -1, got ${o.repeatLastN}`);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw bad(`seed must be an integer, got ${o.seed}`);
}

/** Which path a request takes on a model whose GPU top-k returns at most `maxTopK` candidates. */
export function samplingPath(o: SamplingOptions, maxTopK: number): SamplingPath {
  if ((o.temperature ?? 0) === 0) return 'greedy';
  const penalty = (o.repeatPenalty ?? 1) !== 1;
  const topK = o.topK ?? 0;
  return !penalty && topK > 0 && topK <= maxTopK ? 'gpu-topk' : 'cpu';
}

/**
 * llama.cpp's repetition penalty, in place: each distinct token among
 * `recent` has its logit divided by `penalty` when positive, multiplied when not.
 */
export function applyRepetitionPenalty(logits: Float32Array, recent: readonly number[], penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(recent)) {
    if (id < 0 || id >= logits.length) continue;
    logits[id] = logits[id] <= 0 ? logits[id] * penalty : logits[id] / penalty;
  }
}

/** Index of the largest value; the lowest index among equals (NaN never wins). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best] || !(values[best] === values[best])) best = i;
  return best;
}

/**
 * The candidates the GPU's sample_topk would return, from full logits:
 * logits / temperature, best first (ties: lower id first), the `topK` best
 * (all when topK is 0), and the log-sum-exp over the whole vocabulary.
 */
export function candidatesFromLogits(logits: Float32Array, temperature: number, topK = 0): TopKCandidates {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const n = logits.length;
  // As the kernel: times 1 / temperature in f32.
  const inverse = Math.fround(1 / temperature);
  const scaled = new Float32Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = logits[i] * inverse;
    scaled[i] = v === v ? v : -Infinity;
    if (scaled[i] > max) max = scaled[i];
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(scaled[i] - max);
  const logSumExp = max + Math.log(sum);
  const count = topK > 0 ? Math.min(topK, n) : n;
  const order = count < n / 8 ? topIndices(scaled, count) : Uint32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => scaled[b] - scaled[a] || a - b);
  const ids = order.slice(0, count);
  return { ids, logits: Float32Array.from(ids, (id) => scaled[id]), logSumExp };
}

/** Indices of the k largest values (unordered), through a size-k min-heap. */
function topIndices(values: Float32Array, k: number): Uint32Array {
  const heap = new Uint32Array(k);
  // a is "worse" than b: smaller value, or equal and larger id.
  const worse = (a: number, b: number) => values[a] < values[b] || (values[a] === values[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < k && worse(heap[l], heap[m])) m = l;
      if (r < k && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < k; i++) heap[i] = i;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
  for (let i = k; i < values.length; i++) {
    if (worse(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap;
}

/** Picks tokens for one request: tells the model what to return, then draws from it. */
export class Sampler {
  readonly path: SamplingPath;
  /** What each forward call should return for this request. */
  readonly output: ForwardOutput;
  /** The seed in use (the given one, or the random one chosen). */
  readonly seed: number;
  private readonly random: () => number;
  private readonly temperature: number;
  private readonly penalty: number;
  private readonly lastN: number;
  private readonly filters: SamplingFilters;

  constructor(options: SamplingOptions, maxTopK: number) {
    checkSamplingOptions(options);
    this.path = samplingPath(options, maxTopK);
    this.temperature = options.temperature ?? 0;
    this.penalty = options.repeatPenalty ?? 1;
    this.lastN = options.repeatLastN ?? DEFAULT_REPEAT_LAST_N;
    this.filters = { topK: options.topK ?? 0, topP: options.topP ?? 1, minP: options.minP ?? 0 };
    this.seed = (options.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
    this.random = mulberry32(this.seed);
    this.output =
      this.path === 'gpu-topk' ? { topK: this.filters.topK!, temperature: this.temperature }
      : this.path === 'greedy' && this.penalty === 1 ? 'argmax'
      : 'last-logits';
  }

  /** The next token, from the forward result of `this.output`; `history` is prompt and output so far (for the penalty). */
  sample(result: ForwardResult, history: readonly number[]): number {
    if (this.output === 'argmax') return required(result.argmax, 'argmax');
    if (this.path === 'gpu-topk') return this.draw(required(result.candidates, 'candidates'));
    const logits = required(result.logits?.[0], 'logits').slice();
    const recent = this.lastN === -1 ? history : this.lastN === 0 ? [] : history.slice(-this.lastN);
    applyRepetitionPenalty(logits, recent, this.penalty);
    if (this.path === 'greedy') return argmax(logits);
    return this.draw(candidatesFromLogits(logits, this.temperature, this.filters.topK));
  }

  private draw(candidates: TopKCandidates): number {
    const kept = filterCandidates(candidates, this.filters);
    return kept.ids[drawIndex(kept.probabilities, this.random())];
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the forward result has no ${what}`);
  return value;
}
