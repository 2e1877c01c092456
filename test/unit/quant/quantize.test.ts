/**
 * Q8_0 and Q4_0 quantizers: hand-checked blocks in llama.cpp's layout, and
 * round trips through the reference dequantizers within the error each
 * format's scale allows.
 */

import { describe, expect, it } from 'vitest';
import { dequantize } from '../../../src/quant/dequant';
import { GgmlType } from '../../../src/quant/formats';
import { f16BitsToF32 } from '../../../src/quant/half';
import { mulberry32, randomNormal } from '../../../src/quant/random';
import { quantize, quantizeQ4_0, quantizeQ8_0 } from '../../../src/quant/quantize';

const scaleOf = (bytes: Uint8Array, base: number): number => f16BitsToF32(bytes[base] | (bytes[base + 1] << 8));

/** n values, normal with a different spread in every 32-block (including an all-zero block and one outlier block). */
function testValues(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const x = new Float32Array(n);
  for (let b = 0; b * 32 < n; b++) {
    const spread = b % 7 === 3 ? 0 : 10 ** (2 * rng() - 3);
    for (let j = 0; j < 32; j++) x[b * 32 + j] = spread * randomNormal(rng);
    if (b % 5 === 1) x[b * 32 + Math.floor(rng() * 32)] = 40 * spread;
  }
  return x;
}

describe('Q8_0', () => {
  it('stores max|x| / 127 as the f16 scale and rounds halves away from zero', () => {
    const x = new Float32Array(32);
    x[0] = 127; // d = 1
    x[1] = -2.5;
    x[2] = 2.5;
    x[3] = 0.49;
    x[4] = -127;
    const q = quantizeQ8_0(x);
    expect(q.length).toBe(34);
    expect(scaleOf(q, 0)).toBe(1);
    const qs = new Int8Array(q.buffer, 2, 32);
    expect(Array.from(qs.slice(0, 6))).toEqual([127, -3, 3, 0, -127, 0]);
  });

  it('quantizes an all-zero block to a zero scale and zero quants', () => {
    expect(Array.from(quantizeQ8_0(new Float32Array(32)))).toEqual(new Array(34).fill(0));
  });

  it('round trips within d/2 plus the f16 rounding of d, per block', () => {
    const x = testValues(32 * 64, 1);
    const q = quantize(GgmlType.Q8_0, x);
    const y = dequantize(GgmlType.Q8_0, q, x.length);
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
      const d = amax / 127;
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j;
        expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(d * (0.5 + 127 * 2 ** -11) + 1e-12);
      }
    }
  });

  it('is idempotent on its own output', () => {
    const y = dequantize(GgmlType.Q8_0, quantizeQ8_0(testValues(256, 2)), 256);
    expect(dequantize(GgmlType.Q8_0, quantizeQ8_0(y), 256)).toEqual(y);
  });
});

describe('Q4_0', () => {
  it('maps the value of largest magnitude to quant 0 through d = max / -8, nibbles split at 16', () => {
    const x = new Float32Array(32);
    x[0] = -16; // max by magnitude: d = 2, quant of -16 is trunc(-8 + 8.5) = 0
    x[1] = 14; // trunc(7 + 8.5) = 15
    x[16] = 3; // trunc(1.5 + 8.5) = 10
    x[17] = 15.9; // trunc(7.95 + 8.5) = 16, clamped to 15
    const q = quantizeQ4_0(x);
    expect(q.length).toBe(18);
    expect(scaleOf(q, 0)).toBe(2);
    expect(q[2]).toBe(0 | (10 << 4));
    expect(q[3]).toBe(15 | (15 << 4));
    expect(q[4]).toBe(8 | (8 << 4)); // zeros sit at quant 8
  });

  it('puts a positive extreme at quant 0 with a negative scale', () => {
    const x = new Float32Array(32).fill(0);
    x[5] = 8;
    const q = quantizeQ4_0(x);
    expect(scaleOf(q, 0)).toBe(-1);
    expect(dequantize(GgmlType.Q4_0, q, 32)[5]).toBe(8);
  });

  it('round trips within one step |d| (half a step, a full one at the clamped end), per block', () => {
    const x = testValues(32 * 64, 3);
    const y = dequantize(GgmlType.Q4_0, quantize(GgmlType.Q4_0, x), x.length);
    let sumSq = 0;
    let sumErr = 0;
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
      const d = amax / 8;
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j;
        expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(d * (1 + 8 * 2 ** -11) + 1e-12);
        sumSq += x[i] ** 2;
        sumErr += (y[i] - x[i]) ** 2;
      }
    }
    // Normal data: the error is mostly the uniform half-step rounding, far below the signal.
    expect(sumErr / sumSq).toBeLessThan(0.02);
  });
});

describe('quantize', () => {
  it('passes F32 through as little-endian bytes', () => {
    const x = new Float32Array([1.5, -0.25]);
    expect(Array.from(quantize(GgmlType.F32, x))).toEqual([0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbe]);
  });

  it('rejects a length that is not whole blocks, and types it cannot produce', () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(RangeError);
    expect(() => quantize(GgmlType.Q4_K as never, new Float32Array(256))).toThrow(/no quantizer/);
  });
});
