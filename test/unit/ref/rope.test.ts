/** The CPU reference of rotary position embedding, on cases worked out by hand from ggml's definitions. */

import { describe, expect, it } from 'vitest';
import { rope, ropeMscale, ropeThetaScale, ropeYarnCorrDims } from '../../../src/ref/rope';

const BASE = 10000;

/** One head of `headDim` values with a 1 at each index in `ones`. */
function unitHead(headDim: number, ...ones: number[]): Float32Array {
  const x = new Float32Array(headDim);
  for (const i of ones) x[i] = 1;
  return x;
}

describe('rope (CPU reference)', () => {
  it('leaves position 0 unchanged', () => {
    const x = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    expect([...rope(x, [0], { tokens: 1, heads: 1, headDim: 8 }, { ordering: 'normal', nRot: 8, freqBase: BASE })]).toEqual([...x]);
  });

  it('rotates consecutive pairs (2i, 2i+1) in the normal ordering, pair i by pos * base^(-2i/nRot)', () => {
    const y = rope(unitHead(4, 0, 2), [3], { tokens: 1, heads: 1, headDim: 4 }, { ordering: 'normal', nRot: 4, freqBase: BASE });
    expect(y[0]).toBeCloseTo(Math.cos(3), 6);
    expect(y[1]).toBeCloseTo(Math.sin(3), 6);
    expect(y[2]).toBeCloseTo(Math.cos(3 / 100), 6); // base^(-2/4) = 1/100
    expect(y[3]).toBeCloseTo(Math.sin(3 / 100), 6);
  });

  it('rotates pairs (i, i + nRot/2) in the NeoX ordering', () => {
    const y = rope(unitHead(4, 0, 1), [3], { tokens: 1, heads: 1, headDim: 4 }, { ordering: 'neox', nRot: 4, freqBase: BASE });
    expect(y[0]).toBeCloseTo(Math.cos(3), 6);
    expect(y[2]).toBeCloseTo(Math.sin(3), 6);
    expect(y[1]).toBeCloseTo(Math.cos(0.03), 6);
    expect(y[3]).toBeCloseTo(Math.sin(0.03), 6);
  });

  it('passes dimensions from nRot to headDim through unchanged', () => {
    const x = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    for (const ordering of ['normal', 'neox'] as const) {
      const y = rope(x, [5], { tokens: 1, heads: 1, headDim: 8 }, { ordering, nRot: 4, freqBase: BASE });
      expect([...y.subarray(4)]).toEqual([5, 6, 7, 8]);
      expect([...y.subarray(0, 4)]).not.toEqual([1, 2, 3, 4]);
    }
  });

  it('preserves the norm of each pair when attn_factor is 1', () => {
    const x = Float32Array.of(0.3, -1.2, 2.5, 0.7);
    const y = rope(x, [123], { tokens: 1, heads: 1, headDim: 4 }, { ordering: 'normal', nRot: 4, freqBase: BASE });
    expect(Math.hypot(y[0], y[1])).toBeCloseTo(Math.hypot(0.3, -1.2), 6);
    expect(Math.hypot(y[2], y[3])).toBeCloseTo(Math.hypot(2.5, 0.7), 6);
  });

  it('gives each token its own position and rotates every head of a token alike', () => {
    const x = Float32Array.from([...unitHead(2, 0), ...unitHead(2, 0), ...unitHead(2, 0), ...unitHead(2, 0)]);
    const y = rope(x, [1, 2], { tokens: 2, heads: 2, headDim: 2 }, { ordering: 'normal', nRot: 2, freqBase: BASE });
    expect([y[0], y[2]]).toEqual([Math.fround(Math.cos(1)), Math.fround(Math.cos(1))]);
    expect([y[4], y[6]]).toEqual([Math.fround(Math.cos(2)), Math.fround(Math.cos(2))]);
  });

  it('scales positions linearly by freq_scale', () => {
    const shape = { tokens: 1, heads: 1, headDim: 8 };
    const x = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const scaled = rope(x, [8], shape, { ordering: 'normal', nRot: 8, freqBase: BASE, freqScale: 0.25 });
    expect([...scaled]).toEqual([...rope(x, [2], shape, { ordering: 'normal', nRot: 8, freqBase: BASE })]);
  });

  it('divides the angle of pair i by freq_factors[i]', () => {
    const shape = { tokens: 1, heads: 1, headDim: 4 };
    const y = rope(unitHead(4, 0, 2), [6], shape, { ordering: 'normal', nRot: 4, freqBase: BASE }, Float32Array.of(2, 3));
    expect(y[1]).toBeCloseTo(Math.sin(3), 6);
    expect(y[3]).toBeCloseTo(Math.sin(6 / 100 / 3), 6);
  });

  it('computes theta_scale and the YaRN correction range as ggml does', () => {
    expect(ropeThetaScale(BASE, 4)).toBe(Math.fround(0.01));
    // n_dims * ln(n_ctx_orig / (beta * 2 pi)) / (2 ln base): 20.94 for beta 32, 45.03 for beta 1.
    expect(ropeYarnCorrDims(128, 4096, BASE, 32, 1)).toEqual([20, 46]);
    // The range is clamped to [0, nRot - 1].
    expect(ropeYarnCorrDims(8, 4096, BASE, 32, 1)).toEqual([1, 3]);
    expect(ropeYarnCorrDims(8, 4, BASE, 32, 1).map((v) => v + 0)).toEqual([0, 0]); // + 0 folds ggml's -0
  });

  it('with YaRN, extrapolates fast pairs, interpolates slow ones, and scales magnitude by 1 + 0.1 ln(1/freq_scale)', () => {
    const params = { ordering: 'neox' as const, nRot: 128, freqBase: BASE, freqScale: 0.25, extFactor: 1, betaFast: 32, betaSlow: 1, nCtxOrig: 4096 };
    const mscale = 1 + 0.1 * Math.log(4);
    expect(ropeMscale(params)).toBeCloseTo(mscale, 6);
    expect(ropeMscale({ ...params, extFactor: 0 })).toBe(1);
    const y = rope(unitHead(128, 0, 63), [1000], { tokens: 1, heads: 1, headDim: 128 }, params);
    // Pair 0 lies below the range [20, 46]: the unscaled angle 1000.
    expect(y[64] / mscale).toBeCloseTo(Math.sin(1000), 4);
    // Pair 63 lies above it: the linearly scaled angle.
    const slowAngle = 1000 * 0.25 * Math.pow(BASE, -126 / 128);
    expect(y[127] / mscale).toBeCloseTo(Math.sin(slowAngle), 6);
  });

  it('rejects an odd nRot, one larger than the head, and too few positions', () => {
    const shape = { tokens: 2, heads: 1, headDim: 4 };
    const x = new Float32Array(8);
    expect(() => rope(x, [0, 1], shape, { ordering: 'normal', nRot: 3, freqBase: BASE })).toThrow(RangeError);
    expect(() => rope(x, [0, 1], shape, { ordering: 'normal', nRot: 6, freqBase: BASE })).toThrow(RangeError);
    expect(() => rope(x, [0], shape, { ordering: 'normal', nRot: 4, freqBase: BASE })).toThrow(RangeError);
  });
});
