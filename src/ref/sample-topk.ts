/**
 * CPU reference of the sample_topk kernel: the k largest logits (ties to the
 * lowest id; -0 ranks below +0, as the kernel's order-preserving bit keys
 * have it), sorted, scaled by 1 / temperature in f32, and the log-sum-exp of
 * all scaled logits computed in f64.
 */

import type { TopKCandidates } from '../kernels/sampling';

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** f32 bits of `value` mapped so that unsigned order is numeric order. */
function orderedKey(value: number): number {
  scratch[0] = value;
  const bits = scratchBits[0];
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

export function topKLogits(logits: Float32Array, k: number, temperature = 1): TopKCandidates {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1, got ${k}`);
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const inverse = Math.fround(1 / temperature);
  const keys = Array.from(logits, orderedKey);
  const order = Array.from(logits, (_, i) => i).sort((a, b) => keys[b] - keys[a] || a - b);
  const top = order.slice(0, Math.min(k, logits.length));
  const scaled = Float64Array.from(logits, (logit) => Math.fround(logit * inverse));
  let max = -Infinity;
  for (const value of scaled) max = Math.max(max, value);
  let sum = 0;
  for (const value of scaled) sum += Math.exp(value - max);
  return {
    ids: Uint32Array.from(top),
    logits: Float32Array.from(top, (i) => scaled[i]),
    logSumExp: max + Math.log(sum),
  };
}
