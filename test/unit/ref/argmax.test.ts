/** The CPU reference of argmax. */

import { describe, expect, it } from 'vitest';
import { argmax } from '../../../src/ref/argmax';

describe('argmax (CPU reference)', () => {
  it('returns the index of the largest value', () => {
    expect(argmax([1, 5, -2, 4])).toBe(1);
    expect(argmax(Float32Array.of(-3, -1, -2))).toBe(1);
  });

  it('gives ties to the lowest index, -0 and +0 included', () => {
    expect(argmax([2, 7, 7, 1, 7])).toBe(1);
    expect(argmax([-0, 0])).toBe(0);
    expect(argmax([0, -0])).toBe(0);
  });

  it('rejects an empty vector', () => {
    expect(() => argmax([])).toThrow(RangeError);
  });
});
