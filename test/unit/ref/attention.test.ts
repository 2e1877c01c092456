/** The CPU references of attention and of the KV cache write, on cases worked out by hand. */

import { describe, expect, it } from 'vitest';
import type { AttentionShape } from '../../../src/kernels/attention';
import { attention } from '../../../src/ref/attention';
import { kvWrite } from '../../../src/ref/kv-write';

/** A cache [1 head][positions][headDim = 2] holding the given rows. */
function cache(...rows: [number, number][]): Float32Array {
  return Float32Array.from(rows.flat());
}

const ONE_HEAD: Omit<AttentionShape, 'tokens' | 'startPosition' | 'maxContext'> = { nHeads: 1, nKvHeads: 1, headDim: 2, scale: 1 };

describe('attention (CPU reference)', () => {
  it('returns the only value when one position is visible', () => {
    const out = attention(Float32Array.of(3, -1), cache([5, 5]), cache([0.25, -2]), { ...ONE_HEAD, tokens: 1, startPosition: 0, maxContext: 1 });
    expect([...out]).toEqual([0.25, -2]);
  });

  it('weights values by the softmax of scale * q.k', () => {
    // Scores 0 and ln 3 (q.k = 1 * ln 3): weights 1/4 and 3/4.
    const k = cache([0, 0], [Math.log(3), 0]);
    const v = cache([4, 0], [0, 8]);
    const out = attention(Float32Array.of(1, 0), k, v, { ...ONE_HEAD, tokens: 1, startPosition: 1, maxContext: 2 });
    expect(out[0]).toBeCloseTo(1, 6);
    expect(out[1]).toBeCloseTo(6, 6);
  });

  it('defaults the scale to 1 / sqrt(headDim)', () => {
    // q.k = 0 and 2, scaled by 1 / sqrt(2): the second weight is sigmoid(sqrt 2).
    const k = cache([0, 0], [2, 0]);
    const v = cache([1, 0], [0, 1]);
    const out = attention(Float32Array.of(1, 0), k, v, { nHeads: 1, nKvHeads: 1, headDim: 2, tokens: 1, startPosition: 1, maxContext: 2 });
    const weight = 1 / (1 + Math.exp(-Math.SQRT2));
    expect(out[1]).toBeCloseTo(weight, 6);
  });

  it('is causal: prefill token t sees positions up to startPosition + t only', () => {
    const k = cache([0, 0], [0, 0], [0, 0]);
    const v = cache([3, 0], [6, 0], [9, 0]);
    const q = Float32Array.of(1, 1, 1, 1);
    const out = attention(q, k, v, { ...ONE_HEAD, tokens: 2, startPosition: 1, maxContext: 3 });
    // Equal scores: token 0 (position 1) averages 3 and 6, token 1 averages 3, 6 and 9.
    expect(out[0]).toBeCloseTo(4.5, 6);
    expect(out[2]).toBeCloseTo(6, 6);
  });

  it('with a sliding window of W sees only the last W positions, its own included', () => {
    const k = cache([0, 0], [0, 0], [0, 0], [0, 0]);
    const v = cache([100, 0], [1, 0], [2, 0], [3, 0]);
    const out = attention(Float32Array.of(0, 0), k, v, { ...ONE_HEAD, tokens: 1, startPosition: 3, maxContext: 4, window: 3 });
    expect(out[0]).toBeCloseTo(2, 6);
  });

  it('adds the sink to the denominator only, shrinking the output', () => {
    // One visible key with score 0 and a sink logit 0: the value gets weight 1/2.
    const out = attention(Float32Array.of(0, 0), cache([1, 1]), cache([6, -4]), { ...ONE_HEAD, tokens: 1, startPosition: 0, maxContext: 1 }, Float32Array.of(0));
    expect([...out]).toEqual([3, -2]);
  });

  it('gives each group of nHeads / nKvHeads query heads their KV head', () => {
    // 4 query heads over 2 KV heads, one position, headDim 2: heads 0 and 1 read KV head 0.
    const k = new Float32Array(4);
    const v = Float32Array.of(1, 2, 3, 4); // KV head 0 at position 0: (1, 2); KV head 1: (3, 4)
    const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 2, tokens: 1, startPosition: 0, maxContext: 1 };
    expect([...attention(new Float32Array(8), k, v, shape)]).toEqual([1, 2, 1, 2, 3, 4, 3, 4]);
  });

  it('stays finite for large scores (the max is subtracted first)', () => {
    const out = attention(Float32Array.of(1000, 0), cache([1000, 0], [999, 0]), cache([1, 0], [0, 1]), { ...ONE_HEAD, tokens: 1, startPosition: 1, maxContext: 2 });
    expect(out[0]).toBeCloseTo(1, 6);
    expect(Number.isFinite(out[1])).toBe(true);
  });

  it('rejects heads that do not group evenly and positions past the cache', () => {
    const q = new Float32Array(6);
    const c = new Float32Array(8);
    expect(() => attention(q, c, c, { nHeads: 3, nKvHeads: 2, headDim: 2, tokens: 1, startPosition: 0, maxContext: 2 })).toThrow(RangeError);
    expect(() => attention(q, c, c, { ...ONE_HEAD, tokens: 1, startPosition: 4, maxContext: 4 })).toThrow(RangeError);
  });
});

describe('kvWrite (CPU reference)', () => {
  it('stores token t of head h at [h][startPosition + t]', () => {
    const c = new Float32Array(2 * 3 * 2); // 2 heads, 3 positions, headDim 2
    // Two tokens, each [head 0 | head 1].
    kvWrite(c, Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), { nKvHeads: 2, maxContext: 3, headDim: 2, tokens: 2, startPosition: 1 });
    expect([...c]).toEqual([0, 0, 1, 2, 5, 6, 0, 0, 3, 4, 7, 8]);
  });

  it('reads rows of a fused buffer with a stride and an offset', () => {
    const c = new Float32Array(2);
    kvWrite(c, Float32Array.of(9, 9, 1, 2, 9), { nKvHeads: 1, maxContext: 1, headDim: 2, tokens: 1, startPosition: 0, srcTokenStride: 5 }, 2);
    expect([...c]).toEqual([1, 2]);
  });
});
