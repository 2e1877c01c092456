/**
 * CPU reference of the kv_write kernel: the keys (or values) of new tokens,
 * [tokens][nKvHeads][headDim] rows `srcTokenStride` apart from `offset`,
 * stored into a cache [nKvHeads][maxContext][headDim] at positions
 * startPosition..startPosition + tokens - 1.
 */

import type { KvWriteShape } from '../kernels/kv-write';

/** Writes `src`'s tokens into `cache` (in place) and returns it. */
export function kvWrite(cache: Float32Array, src: Float32Array, shape: KvWriteShape, offset = 0): Float32Array {
  const { tokens, nKvHeads, maxContext, headDim, startPosition } = shape;
  const srcTokenStride = shape.srcTokenStride ?? nKvHeads * headDim;
  if (cache.length < nKvHeads * maxContext * headDim) throw new RangeError(`cache has ${cache.length} values, too few for the shape`);
  if (startPosition + tokens > maxContext) throw new RangeError(`positions past the cache's ${maxContext}`);
  if (tokens > 0 && offset + (tokens - 1) * srcTokenStride + nKvHeads * headDim > src.length) {
    throw new RangeError(`src has ${src.length} values, too few for the shape`);
  }
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < nKvHeads; h++) {
      const from = offset + t * srcTokenStride + h * headDim;
      cache.set(src.subarray(from, from + headDim), (h * maxContext + startPosition + t) * headDim);
    }
  }
  return cache;
}
