/** The CPU reference of the sample_topk kernel. */

import { describe, expect, it } from 'vitest';
import { topKLogits } from '../../../src/ref/sample-topk';

describe('topKLogits (CPU reference)', () => {
  it('returns the k largest logits, descending, with their ids', () => {
    const top = topKLogits(Float32Array.of(0.5, 3, -1, 2, 2.5), 3);
    expect([...top.ids]).toEqual([1, 4, 3]);
    expect([...top.logits]).toEqual([3, 2.5, 2]);
  });

  it('breaks ties toward the lowest id and ranks -0 below +0', () => {
    expect([...topKLogits(Float32Array.of(1, 4, 4, 0, 4), 2).ids]).toEqual([1, 2]);
    expect([...topKLogits(Float32Array.of(-0, 0, -1), 3).ids]).toEqual([1, 0, 2]);
  });

  it('divides by the temperature in f32 and computes the log-sum-exp of the scaled logits', () => {
    const top = topKLogits(Float32Array.of(1, 2), 1, 0.5);
    expect([...top.logits]).toEqual([4]);
    expect(top.logSumExp).toBeCloseTo(Math.log(Math.exp(2) + Math.exp(4)), 12);
  });

  it('returns every logit when k exceeds their number', () => {
    expect(topKLogits(Float32Array.of(3, 1), 5).ids.length).toBe(2);
  });

  it('rejects k < 1 and a temperature <= 0', () => {
    expect(() => topKLogits(Float32Array.of(1), 0)).toThrow(RangeError);
    expect(() => topKLogits(Float32Array.of(1), 1, 0)).toThrow(RangeError);
  });
});
