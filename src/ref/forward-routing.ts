/**
 * Expert routing of the CPU reference forward pass and the trace it leaves:
 * which experts each token chose in each layer, with what weights, and how
 * close the choice was to a tie (a near tie can flip under rounding
 * differences between two correct implementations, after which their outputs
 * legitimately differ).
 */

import type { RoutingPolicy } from '../models/config';

/** One token's routing decision in one MoE layer. */
export interface RouteStep {
  /** Chosen experts, highest router logit first. */
  experts: number[];
  /** Their weights in the weighted sum, in the same order. */
  weights: number[];
  /** Router logit of the k-th chosen expert minus that of the best expert not chosen (Infinity when k = experts). */
  margin: number;
  /** `margin` divided by the largest |router logit| of the token: a scale-free closeness to a tie. */
  relativeMargin: number;
}

/**
 * routes[layer][position]; a dense layer's entry is an empty array.
 */
export type RouteTrace = RouteStep[][];

/** Smallest weight sum renormalisation divides by (the smallest normal f16, as llama.cpp clamps). */
const MIN_WEIGHT_SUM = 6.103515625e-5;

/**
 * Chooses experts from router logits [nExpert] by the policy: the top-k by
 * logit (ties to the lower index), weighted by their softmax over all experts
 * ('softmax'), by the softmax over the k selected logits alone
 * ('softmax-selected') or by their sigmoids ('sigmoid'), optionally
 * renormalised to sum to one; then scaled. A selection bias, when given,
 * changes which experts are chosen (by probability + bias), not their weights.
 */
export function route(logits: Float32Array, policy: RoutingPolicy, selectionBias?: Float32Array): RouteStep {
  const n = logits.length;
  // With a selection bias (DeepSeek's exp_probs_b) experts are chosen by probability + bias; the weights stay unbiased.
  const probabilities = policy.scoring === 'sigmoid' ? Array.from(logits, (l) => Math.fround(1 / (1 + Math.exp(-l)))) : undefined;
  const select = selectionBias
    ? Float32Array.from(selectionScores(logits, policy), (p, e) => Math.fround(p + selectionBias[e]))
    : logits;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => select[b] - select[a] || a - b);
  const experts = order.slice(0, policy.topK);

  let weights = probabilities ? experts.map((e) => probabilities[e]) : softmaxAt(logits, experts, policy.scoring as 'softmax' | 'softmax-selected');
  if (policy.normalize) {
    const selected = Math.max(MIN_WEIGHT_SUM, weights.reduce((a, b) => a + b, 0));
    weights = weights.map((w) => Math.fround(w / selected));
  }
  if (policy.weightsScale !== 1) weights = weights.map((w) => Math.fround(w * policy.weightsScale));

  const margin = policy.topK < n ? select[order[policy.topK - 1]] - select[order[policy.topK]] : Infinity;
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(select[i]));
  return { experts, weights, margin, relativeMargin: scale > 0 ? margin / scale : margin === 0 ? 0 : Infinity };
}

/** The probabilities a selection bias is added to: sigmoids, or the softmax over all experts. */
function selectionScores(logits: Float32Array, policy: RoutingPolicy): number[] {
  if (policy.scoring === 'sigmoid') return Array.from(logits, (l) => Math.fround(1 / (1 + Math.exp(-l))));
  const all = Array.from({ length: logits.length }, (_, i) => i);
  return softmaxAt(logits, all, 'softmax');
}

/** The softmax over all experts ('softmax') or over the selected ones ('softmax-selected'), read at the selected experts. */
function softmaxAt(logits: Float32Array, experts: number[], scoring: 'softmax' | 'softmax-selected'): number[] {
  const pool = scoring === 'softmax-selected' ? experts : Array.from({ length: logits.length }, (_, i) => i);
  let max = -Infinity;
  for (const e of pool) max = Math.max(max, logits[e]);
  let sum = 0;
  for (const e of pool) sum += Math.exp(logits[e] - max);
  return experts.map((e) => Math.fround(Math.exp(logits[e] - max) / sum));
}

/**
 * The first position at which any layer's routing is a near tie (relative
 * margin below `relativeThreshold`), or undefined. From there on another
 * correct implementation may have chosen other experts, and since that choice
 * shapes the KV cache, all later positions may differ too.
 */
export function firstNearTie(trace: RouteTrace, relativeThreshold: number): number | undefined {
  let first: number | undefined;
  for (const layer of trace) {
    const pos = layer.findIndex((step) => step.relativeMargin < relativeThreshold);
    if (pos >= 0 && (first === undefined || pos < first)) first = pos;
  }
  return first;
}
