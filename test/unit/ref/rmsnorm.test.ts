/** The CPU reference of RMS normalisation, on values worked out by hand. */

import { describe, expect, it } from 'vitest';
import { rmsNorm } from '../../../src/ref/rmsnorm';

describe('rmsNorm (CPU reference)', () => {
  it('divides each row by the root of its mean square', () => {
    // Row [3, 4]: mean square 12.5. Row [1, 1]: mean square 1.
    const y = rmsNorm(Float32Array.of(3, 4, 1, 1), 2, 2, 0);
    expect([...y].map((v) => Number(v.toFixed(6)))).toEqual([0.848528, 1.131371, 1, 1]);
  });

  it('scales column i by weight[i]', () => {
    expect([...rmsNorm(Float32Array.of(2, -2), 1, 2, 0, Float32Array.of(0.5, 3))]).toEqual([0.5, -3]);
  });

  it('adds eps to the mean square, so a zero row stays zero and a tiny row is damped', () => {
    expect([...rmsNorm(new Float32Array(3), 1, 3, 1e-6)]).toEqual([0, 0, 0]);
    const [v] = rmsNorm(Float32Array.of(1e-3), 1, 1, 1e-6);
    expect(v).toBeCloseTo(1e-3 / Math.sqrt(1e-6 + 1e-6), 6);
  });

  it('rejects data that does not match the shape', () => {
    expect(() => rmsNorm(new Float32Array(5), 2, 3, 0)).toThrow(RangeError);
    expect(() => rmsNorm(new Float32Array(6), 2, 3, 0, new Float32Array(2))).toThrow(RangeError);
  });
});
