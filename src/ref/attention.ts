/**
 * CPU reference of causal grouped-query attention over a KV cache (the
 * attention kernel's twin, decode being the case tokens = 1), computed the
 * direct way in f64: all scores of a query, their max, exponentials, the
 * weighted sum of values; only the result is rounded to f32.
 *
 * Query token t (position p = startPosition + t), head h, KV head
 * h / (nHeads / nKvHeads), sees the keys at positions [lo, p] with
 * lo = max(0, p - window + 1) (0 without a window):
 *
 *   s_j = scale * q . k_j,  M = max(max_j s_j, sink_h)
 *   out = sum_j exp(s_j - M) v_j / (sum_j exp(s_j - M) + exp(sink_h - M))
 *
 * (the sink term only when sinks are given). Values are `value.dim` wide
 * (default headDim), `value.row` apart in their cache (default value.dim):
 * latent attention reads them from the key cache's rows.
 */

import type { AttentionShape } from '../kernels/attention';

export function attention(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  shape: AttentionShape,
  sinks?: Float32Array,
  value: { dim: number; row?: number } = { dim: shape.headDim },
): Float32Array {
  const { tokens, nHeads, nKvHeads, headDim, maxContext, startPosition } = shape;
  const vDim = value.dim;
  const vRow = value.row ?? vDim;
  const scale = Math.fround(shape.scale ?? 1 / Math.sqrt(headDim));
  const window = shape.window ?? 0;
  const qTokenStride = shape.qTokenStride ?? nHeads * headDim;
  const qOffset = shape.qOffset ?? 0;
  if (nHeads % nKvHeads !== 0) throw new RangeError(`nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
  if (startPosition + tokens > maxContext) throw new RangeError(`positions past the cache's ${maxContext}`);
  if (kCache.length < nKvHeads * maxContext * headDim || vCache.length < nKvHeads * maxContext * vRow) {
    throw new RangeError('a cache is too small for the shape');
  }
  if (tokens > 0 && qOffset + (tokens - 1) * qTokenStride + nHeads * headDim > q.length) throw new RangeError('q is too small for the shape');
  if (sinks && sinks.length < nHeads) throw new RangeError(`${sinks.length} sinks for ${nHeads} heads`);
  const group = nHeads / nKvHeads;
  const out = new Float32Array(tokens * nHeads * vDim);
  for (let t = 0; t < tokens; t++) {
    const position = startPosition + t;
    const lo = window === 0 ? 0 : Math.max(0, position + 1 - window);
    for (let h = 0; h < nHeads; h++) {
      const qBase = qOffset + t * qTokenStride + h * headDim;
      const kvHead = Math.floor(h / group);
      const cacheBase = kvHead * maxContext * headDim;
      const scores: number[] = [];
      for (let j = lo; j <= position; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qBase + d] * kCache[cacheBase + j * headDim + d];
        scores.push(scale * dot);
      }
      let max = sinks ? sinks[h] : -Infinity;
      for (const s of scores) max = Math.max(max, s);
      let denominator = sinks ? Math.exp(sinks[h] - max) : 0;
      const o = new Float64Array(vDim);
      scores.forEach((s, i) => {
        const weight = Math.exp(s - max);
        denominator += weight;
        const vBase = (kvHead * maxContext + lo + i) * vRow;
        for (let d = 0; d < vDim; d++) o[d] += weight * vCache[vBase + d];
      });
      for (let d = 0; d < vDim; d++) out[(t * nHeads + h) * vDim + d] = o[d] / denominator;
    }
  }
  return out;
}
