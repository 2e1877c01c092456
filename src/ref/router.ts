/**
 * CPU reference of MoE routing (the router kernels' twin): router logits,
 * scoring, top-k selection, routing weights and the shared-expert gate.
 *
 * Semantics, step by step, for one token with logits l[0..E):
 *   1. probabilities p[e]:  'softmax'          softmax over all E logits
 *                           'sigmoid'          1 / (1 + exp(-l[e]))
 *                           'softmax-selected' the raw logit (softmax comes in step 4)
 *   2. selection score s[e]: p[e] + selectionBias[e] when a selection bias is
 *      given (DeepSeek-V3's exp_probs_b: it steers the choice, not the weights);
 *      otherwise the logit itself, which orders experts exactly as p does
 *      (softmax and sigmoid are increasing) without the ties that rounding p
 *      to f32 would create.
 *   3. top-k: k passes, each taking the unselected expert with the highest
 *      score; equal scores go to the lower expert id; a NaN score never wins
 *      unless nothing else is left. Ids come out best first.
 *   4. weights w[j] = p[id[j]]; for 'softmax-selected' (Mixtral, gpt-oss) the
 *      softmax over the k selected logits instead.
 *   5. when `normalize`: w[j] /= max(sum_j w[j], MIN_WEIGHT_SUM).
 *   6. routing knobs (off by default), on w[j] as f32: the heaviest expert
 *      is always kept (equal weights: the lower rank j); `topP` < 1 keeps the
 *      fewest experts, heaviest first, whose weights (summed in f32 in that
 *      order) reach topP times sum_j w[j] (summed in f32 by rank);
 *      `minExpertWeight` > 0 then drops every other expert with w[j] below
 *      it. A dropped pair becomes id MASKED_ID with weight 0; the kept weights
 *      are not renormalised.
 *   7. w[j] *= weightScale.
 * Null ("zero") experts are not special here: ids >= the model's real expert
 * count are scored, selected and normalised like any other; the expert FFN
 * skips them (see ref/expert-ffn).
 *
 * Dot products and softmax sums are done in f64 and rounded to f32 where the
 * kernels hold f32 (logits, probabilities, weights).
 */

import type { RoutingKnobs } from '../kernels/router';

export type RouterScoring = 'softmax' | 'sigmoid' | 'softmax-selected';

/** The id of a pair a routing knob skipped (the kernel's MASKED_EXPERT_ID): past every expert. */
export const MASKED_ID = 0xffffffff;

/** The floor of the sum that normalised weights are divided by (the smallest normal f16, as llama.cpp clamps). */
export const MIN_WEIGHT_SUM = 6.103515625e-5;

export interface RoutingOptions {
  /** Experts per token, 1..nExperts. */
  topK: number;
  scoring: RouterScoring;
  /** Divide the k weights by their sum (qwen3moe, DeepSeek-V3; OLMoE and qwen2moe do not). */
  normalize: boolean;
  /** Multiplies every weight after normalisation (DeepSeek's routed_scaling_factor). Default 1. */
  weightScale?: number;
  /** f32 [E], added to the probabilities for selection only. */
  selectionBias?: Float32Array;
  /** Step 6's skipping; default off. */
  knobs?: RoutingKnobs;
}

/** The experts chosen for each token, best first: ids and weights [tokens * topK], token-major. */
export interface Routing {
  ids: Uint32Array;
  weights: Float32Array;
}

/**
 * logits[t, e] = W[e] . x[t] (+ logitBias[e]): W f32 [nExperts, hidden]
 * row-major (GGUF's ffn_gate_inp with dims [hidden, nExperts]), x f32
 * [tokens, hidden]. Returns f32 [tokens, nExperts].
 */
export function routerLogits(
  x: Float32Array,
  tokens: number,
  hidden: number,
  weight: Float32Array,
  nExperts: number,
  logitBias?: Float32Array,
): Float32Array {
  checkLength(x, tokens * hidden, 'x');
  checkLength(weight, nExperts * hidden, 'router weight');
  if (logitBias) checkLength(logitBias, nExperts, 'logit bias');
  const logits = new Float32Array(tokens * nExperts);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < nExperts; e++) {
      const dot = dotF64(weight, e * hidden, x, t * hidden, hidden);
      logits[t * nExperts + e] = dot + (logitBias ? logitBias[e] : 0);
    }
  }
  return logits;
}

/** sigmoid(w . x[t]) per token: Qwen's shared-expert gate (ffn_gate_inp_shexp, f32 [hidden]). */
export function sharedExpertGate(x: Float32Array, tokens: number, hidden: number, gateWeight: Float32Array): Float32Array {
  checkLength(x, tokens * hidden, 'x');
  checkLength(gateWeight, hidden, 'shared-expert gate weight');
  const gates = new Float32Array(tokens);
  for (let t = 0; t < tokens; t++) gates[t] = sigmoid(Math.fround(dotF64(gateWeight, 0, x, t * hidden, hidden)));
  return gates;
}

/** Steps 1-7 of the module comment for each token's row of `logits` (f32 [tokens, nExperts]). */
export function routeTokens(logits: Float32Array, tokens: number, nExperts: number, options: RoutingOptions): Routing {
  checkLength(logits, tokens * nExperts, 'logits');
  const { topK } = options;
  if (!Number.isInteger(topK) || topK < 1 || topK > nExperts) {
    throw new RangeError(`topK must be an integer in 1..${nExperts}, got ${topK}`);
  }
  if (options.selectionBias) checkLength(options.selectionBias, nExperts, 'selection bias');
  const ids = new Uint32Array(tokens * topK);
  const weights = new Float32Array(tokens * topK);
  for (let t = 0; t < tokens; t++) {
    const row = logits.subarray(t * nExperts, (t + 1) * nExperts);
    const chosen = routeOneToken(row, options);
    ids.set(chosen.ids, t * topK);
    weights.set(chosen.weights, t * topK);
  }
  return { ids, weights };
}

function routeOneToken(logits: Float32Array, options: RoutingOptions): { ids: number[]; weights: number[] } {
  const probabilities = scoreProbabilities(logits, options.scoring);
  const bias = options.selectionBias;
  const selectionScores = bias ? probabilities.map((p, e) => Math.fround(p + bias[e])) : logits;
  const ids = selectTopK(selectionScores, options.topK);
  let weights = options.scoring === 'softmax-selected' ? softmax(ids.map((e) => logits[e])) : ids.map((e) => probabilities[e]);
  if (options.normalize) {
    const sum = weights.reduce((a, b) => a + b, 0);
    weights = weights.map((w) => w / Math.max(sum, MIN_WEIGHT_SUM));
  }
  const scale = options.weightScale ?? 1;
  const kept = keptPairs(weights.map((w) => Math.fround(w)), options.knobs);
  return {
    ids: ids.map((id, j) => (kept[j] ? id : MASKED_ID)),
    weights: weights.map((w, j) => (kept[j] ? Math.fround(w * scale) : 0)),
  };
}

/** Step 6: which of the k pairs (f32 weights by rank) the routing knobs keep. */
export function keptPairs(weights: readonly number[], knobs: RoutingKnobs | undefined): boolean[] {
  const k = weights.length;
  // The kernel holds both in f32.
  const topP = Math.fround(knobs?.topP ?? 1);
  const minWeight = Math.fround(knobs?.minExpertWeight ?? 0);
  const heaviestFirst = Array.from({ length: k }, (_, j) => j).sort((a, b) => (beats(weights[a], weights[b]) ? -1 : beats(weights[b], weights[a]) ? 1 : a - b));
  let kept = new Array<boolean>(k).fill(true);
  if (topP < 1) {
    const target = Math.fround(topP * weights.reduce((sum, w) => Math.fround(sum + w), 0));
    kept = kept.fill(false);
    let mass = 0;
    for (const [n, j] of heaviestFirst.entries()) {
      if (n > 0 && mass >= target) break;
      kept[j] = true;
      mass = Math.fround(mass + weights[j]);
    }
  }
  if (minWeight > 0) kept = kept.map((keep, j) => keep && (j === heaviestFirst[0] || !(weights[j] < minWeight)));
  return kept;
}

/** Step 1, rounded to f32 as the kernel stores them. */
function scoreProbabilities(logits: Float32Array, scoring: RouterScoring): Float32Array {
  if (scoring === 'softmax') return Float32Array.from(softmax(Array.from(logits)));
  if (scoring === 'sigmoid') return logits.map(sigmoid);
  return logits;
}

/** Indices of the k highest scores, best first; ties to the lower index; NaN loses. */
export function selectTopK(scores: ArrayLike<number>, k: number): number[] {
  const taken = new Uint8Array(scores.length);
  const chosen: number[] = [];
  for (let pass = 0; pass < k; pass++) {
    let best = -1;
    for (let e = 0; e < scores.length; e++) {
      if (taken[e]) continue;
      if (best < 0 || beats(scores[e], scores[best])) best = e;
    }
    taken[best] = 1;
    chosen.push(best);
  }
  return chosen;
}

/** Whether score a ranks above b: higher, or a number where b is NaN. */
function beats(a: number, b: number): boolean {
  return a > b || (Number.isNaN(b) && !Number.isNaN(a));
}

/** Softmax in f64 (max subtracted first, so large logits do not overflow). */
export function softmax(values: readonly number[]): number[] {
  const max = values.reduce((m, v) => Math.max(m, v), -Infinity);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

function dotF64(a: Float32Array, aStart: number, b: Float32Array, bStart: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[aStart + i] * b[bStart + i];
  return sum;
}

function checkLength(values: ArrayLike<number>, expected: number, what: string): void {
  if (values.length !== expected) throw new RangeError(`${what} has ${values.length} values, expected ${expected}`);
}
