/** The CPU reference of the matvec kernel, on values worked out by hand. */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { f32ToF16Bits } from '../../../src/quant/half';
import { matvec, matvecAbs, matvecAbsDense, matvecDense } from '../../../src/ref/matvec';

/** One Q8_0 block: scale d (as f16) and 32 int8 quants. */
function q8_0Block(d: number, quants: readonly number[]): Uint8Array {
  const block = new Uint8Array(34);
  const bits = f32ToF16Bits(d);
  block[0] = bits & 0xff;
  block[1] = bits >> 8;
  quants.forEach((q, j) => (block[2 + j] = q & 0xff));
  return block;
}

describe('matvec (CPU reference)', () => {
  it('multiplies a dense row-major matrix by a vector', () => {
    // [[1, 2, 3], [4, 5, 6]] x [1, 0, -1] = [-2, -2]
    const y = matvecDense(Float32Array.of(1, 2, 3, 4, 5, 6), { rows: 2, cols: 3 }, Float32Array.of(1, 0, -1));
    expect([...y]).toEqual([-2, -2]);
  });

  it('sums in f64 and rounds once, so cancellation loses nothing', () => {
    // In f32, 2^24 + 1 - 2^24 would give 0.
    const y = matvecDense(Float32Array.of(2 ** 24, 1, -(2 ** 24)), { rows: 1, cols: 3 }, Float32Array.of(1, 1, 1));
    expect(y[0]).toBe(1);
  });

  it('gives sum |W x| per row as the magnitude', () => {
    const abs = matvecAbsDense(Float32Array.of(1, -2, 3, -4), { rows: 2, cols: 2 }, Float32Array.of(-1, 1));
    expect([...abs]).toEqual([3, 7]);
  });

  it('dequantizes quantized weights first (Q8_0: d * q)', () => {
    const quants = Array.from({ length: 32 }, (_, j) => (j % 2 === 0 ? j : -j));
    const weights = new Uint8Array([...q8_0Block(0.5, quants), ...q8_0Block(2, new Array(32).fill(1))]);
    const x = new Float32Array(32).fill(1);
    // Row 0: 0.5 * (0 - 1 + 2 - 3 + ... + 30 - 31) = 0.5 * -16 = -8; row 1: 2 * 32 = 64.
    expect([...matvec(GgmlType.Q8_0, weights, { rows: 2, cols: 32 }, x)]).toEqual([-8, 64]);
    // |row 0| = 0.5 * (0 + 1 + ... + 31) = 248.
    expect([...matvecAbs(GgmlType.Q8_0, weights, { rows: 2, cols: 32 }, x)]).toEqual([248, 64]);
  });

  it('rejects data that does not match the shape', () => {
    expect(() => matvecDense(new Float32Array(5), { rows: 2, cols: 3 }, new Float32Array(3))).toThrow(RangeError);
    expect(() => matvecDense(new Float32Array(6), { rows: 2, cols: 3 }, new Float32Array(2))).toThrow(RangeError);
    expect(() => matvec(GgmlType.Q8_0, new Uint8Array(33), { rows: 1, cols: 32 }, new Float32Array(32))).toThrow(RangeError);
  });
});
