/** The CPU reference of the residual add. */

import { describe, expect, it } from 'vitest';
import { add } from '../../../src/ref/add';

describe('add (CPU reference)', () => {
  it('adds element-wise, rounding to f32', () => {
    expect([...add(Float32Array.of(1, 2), Float32Array.of(0.5, -3))]).toEqual([1.5, -1]);
    // 1 + 2^-30 is 1 in f32.
    expect([...add(Float32Array.of(1), Float32Array.of(2 ** -30))]).toEqual([1]);
  });

  it('scales b first', () => {
    expect([...add(Float32Array.of(1, 1), Float32Array.of(2, 4), 0.25)]).toEqual([1.5, 2]);
  });

  it('rejects vectors of different lengths', () => {
    expect(() => add(new Float32Array(2), new Float32Array(3))).toThrow(RangeError);
  });
});
