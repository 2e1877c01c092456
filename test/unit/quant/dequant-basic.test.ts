/**
 * Hand-built blocks of the float types and the 32-element formats, with
 * expected values worked out by hand from llama.cpp's block layouts.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { dequantize } from '../../../src/quant/dequant';

/** Concatenates bytes and byte lists into one block. */
function block(...parts: (number | readonly number[])[]): Uint8Array {
  return new Uint8Array(parts.flat());
}

/** `count` copies of `value`. */
function repeat(value: number, count: number): number[] {
  return new Array<number>(count).fill(value);
}

/** Returns `bytes` copied behind `pad` junk bytes, as a view starting at an odd offset. */
function unaligned(bytes: Uint8Array, pad = 3): Uint8Array {
  const buffer = new Uint8Array(bytes.length + pad).fill(0xee);
  buffer.set(bytes, pad);
  return buffer.subarray(pad);
}

describe('F32, F16 and BF16', () => {
  it('F32 reads little-endian floats at an unaligned offset', () => {
    // 1.5 = 0x3FC00000, -0.25 = 0xBE800000
    const bytes = unaligned(block([0x00, 0x00, 0xc0, 0x3f], [0x00, 0x00, 0x80, 0xbe]), 1);
    expect(dequantize(GgmlType.F32, bytes, 2)).toEqual(new Float32Array([1.5, -0.25]));
  });

  it('F16 decodes each little-endian half, specials included', () => {
    // 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (subnormal), 0x7C00 = Inf, 0x8000 = -0
    const bytes = block([0x00, 0x3c], [0x00, 0xc0], [0x01, 0x00], [0x00, 0x7c], [0x00, 0x80]);
    const out = dequantize(GgmlType.F16, unaligned(bytes), 5);
    expect(Array.from(out)).toEqual([1, -2, 2 ** -24, Infinity, -0]);
    expect(Object.is(out[4], -0)).toBe(true);
  });

  it('BF16 decodes each little-endian value as the top half of an f32', () => {
    // 0x3F80 = 1, 0xC000 = -2, 0x7FC0 = NaN
    const out = dequantize(GgmlType.BF16, block([0x80, 0x3f], [0x00, 0xc0], [0xc0, 0x7f]), 3);
    expect(out[0]).toBe(1);
    expect(out[1]).toBe(-2);
    expect(out[2]).toBeNaN();
  });
});

describe('Q8_0', () => {
  it('multiplies signed bytes by d', () => {
    // d = 0x3800 = 0.5; qs: 1 -> 0.5, 0xFF = -1 -> -0.5, 0x7F = 127 -> 63.5, 0x80 = -128 -> -64
    const qs = [0x01, 0xff, 0x7f, 0x80, ...repeat(0, 27), 0x02];
    const expected = [0.5, -0.5, 63.5, -64, ...repeat(0, 27), 1];
    expect(Array.from(dequantize(GgmlType.Q8_0, unaligned(block([0x00, 0x38], qs)), 32))).toEqual(expected);
  });

  it('decodes each block with its own d', () => {
    // block 0: d = 1 (0x3C00), q = 3 -> 3; block 1: d = -2 (0xC000), q = 3 -> -6
    const bytes = block([0x00, 0x3c], repeat(3, 32), [0x00, 0xc0], repeat(3, 32));
    expect(Array.from(dequantize(GgmlType.Q8_0, bytes, 64))).toEqual([...repeat(3, 32), ...repeat(-6, 32)]);
  });
});

describe('Q4_0', () => {
  it('puts low nibbles in elements 0..15 and high nibbles in 16..31, as (q - 8) * d', () => {
    // d = 0x4000 = 2. qs[0] = 0x9F: low 15 -> (15-8)*2 = 14 (e0), high 9 -> 2 (e16).
    // qs[1] = 0x08: low 8 -> 0 (e1), high 0 -> (0-8)*2 = -16 (e17).
    // qs[15] = 0x7A: low 10 -> 4 (e15), high 7 -> -2 (e31). Other bytes 0x88 -> 0.
    const qs = [0x9f, 0x08, ...repeat(0x88, 13), 0x7a];
    const expected = [14, 0, ...repeat(0, 13), 4, 2, -16, ...repeat(0, 13), -2];
    expect(Array.from(dequantize(GgmlType.Q4_0, block([0x00, 0x40], qs), 32))).toEqual(expected);
  });
});

describe('Q4_1', () => {
  it('decodes q * d + m with unsigned nibbles', () => {
    // d = 0x3800 = 0.5, m = 0xBC00 = -1.
    // qs[0] = 0x3F: e0 = 15*0.5 - 1 = 6.5, e16 = 3*0.5 - 1 = 0.5.
    // qs[15] = 0x20: e15 = 0 - 1 = -1, e31 = 2*0.5 - 1 = 0. Other bytes 0 -> -1.
    const qs = [0x3f, ...repeat(0, 14), 0x20];
    const expected = [6.5, ...repeat(-1, 14), -1, 0.5, ...repeat(-1, 14), 0];
    expect(Array.from(dequantize(GgmlType.Q4_1, block([0x00, 0x38, 0x00, 0xbc], qs), 32))).toEqual(expected);
  });

  it('rounds q * d + m once to f32', () => {
    // d = 1, m = 0x0004 = 4 * 2^-24 = 2^-22. 1 + 2^-22 is exact in f32 (ulp 2^-23 at 1),
    // but 15 + 2^-22 is below half an ulp (2^-20 / 2) at 15, so it rounds to 15.
    const qs = [0xf1, ...repeat(0, 15)];
    const out = dequantize(GgmlType.Q4_1, block([0x00, 0x3c, 0x04, 0x00], qs), 32);
    expect(out[0]).toBe(1 + 2 ** -22);
    expect(out[16]).toBe(15);
  });
});

describe('Q5_0', () => {
  it('takes the fifth bit of element j from bit j of the little-endian qh', () => {
    // d = 1 (0x3C00). qh = 0x80010001: bits 0, 16 and 31 -> elements 0, 16, 31 get +16.
    // qs[0] = 0x00: e0 = (0|16) - 16 = 0, e16 = 0.
    // qs[1] = 0x5F: e1 = 15 - 16 = -1, e17 = 5 - 16 = -11.
    // qs[15] = 0xF3: e15 = 3 - 16 = -13, e31 = (15|16) - 16 = 15. Others: 0 - 16 = -16.
    const bytes = block([0x00, 0x3c], [0x01, 0x00, 0x01, 0x80], [0x00, 0x5f, ...repeat(0, 13), 0xf3]);
    const expected = [0, -1, ...repeat(-16, 13), -13, 0, -11, ...repeat(-16, 13), 15];
    expect(Array.from(dequantize(GgmlType.Q5_0, unaligned(bytes), 32))).toEqual(expected);
  });
});

describe('Q5_1', () => {
  it('decodes (nibble | fifth bit << 4) * d + m', () => {
    // d = 0.5 (0x3800), m = 1 (0x3C00). qh = 0x00020002: bits 1 and 17.
    // qs[0] = 0xFF: e0 = e16 = 15*0.5 + 1 = 8.5.
    // qs[1] = 0x21: e1 = (1|16)*0.5 + 1 = 9.5, e17 = (2|16)*0.5 + 1 = 10. Others 0 -> 1.
    const bytes = block([0x00, 0x38, 0x00, 0x3c], [0x02, 0x00, 0x02, 0x00], [0xff, 0x21, ...repeat(0, 14)]);
    const expected = [8.5, 9.5, ...repeat(1, 14), 8.5, 10, ...repeat(1, 14)];
    expect(Array.from(dequantize(GgmlType.Q5_1, bytes, 32))).toEqual(expected);
  });
});

describe('MXFP4', () => {
  const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6];

  it('decodes E2M1 codes times 2^(e - 127), low nibbles first', () => {
    // e = 127: scale 2^0, so each element is the plain E2M1 value of its code.
    // qs[j] = j | (15 - j) << 4: element j has code j, element 16 + j has code 15 - j.
    const qs = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    const out = dequantize(GgmlType.MXFP4, unaligned(block(127, qs)), 32);
    expect(Array.from(out)).toEqual([...E2M1, ...[...E2M1].reverse()]);
    // Code 8 is a negative zero in E2M1, but ggml's integer table makes it +0.
    expect(Object.is(out[8], 0)).toBe(true);
  });

  it('handles the extreme exponents as ggml does', () => {
    // codes: e0 = 1 (0.5), e1 = 7 (6), e2 = 9 (-0.5); everything else code 0.
    const qs = [0x01, 0x07, 0x09, ...repeat(0, 13)];
    // e = 0: 0.5 * 2^-127 = 2^-128 (an f32 subnormal) and 6 * 2^-127 = 3 * 2^-126.
    const low = dequantize(GgmlType.MXFP4, block(0, qs), 32);
    expect([low[0], low[1], low[2]]).toEqual([2 ** -128, 3 * 2 ** -126, -(2 ** -128)]);
    // e = 255: 0.5 * 2^128 = 2^127 is finite, 6 * 2^128 overflows f32 to Inf.
    const high = dequantize(GgmlType.MXFP4, block(255, qs), 32);
    expect([high[0], high[1], high[2]]).toEqual([2 ** 127, Infinity, -(2 ** 127)]);
    // e = 128: scale 2, so code 7 gives 12.
    expect(dequantize(GgmlType.MXFP4, block(128, qs), 32)[1]).toBe(12);
  });
});
