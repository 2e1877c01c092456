import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  bitsToF32,
  e8m0ToF32,
  e8m0ToF32Half,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  readF16,
} from '../../../src/quant/half';
import { mulberry32 } from '../../../src/quant/random';

describe('f16BitsToF32', () => {
  it.each([
    [0x3c00, 1], // exponent 15 (bias 15), mantissa 0
    [0xc000, -2], // sign, exponent 16
    [0x3555, 0.333251953125], // (1 + 341/1024) * 2^-2
    [0x7bff, 65504], // largest finite: (2 - 2^-10) * 2^15
    [0x0400, 2 ** -14], // smallest normal
    [0x0001, 2 ** -24], // smallest subnormal: mantissa 1 * 2^-24
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x8001, -(2 ** -24)],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ])('decodes bits %i exactly', (bits, expected) => {
    expect(f16BitsToF32(bits)).toBe(expected);
  });

  it('keeps the sign of zero', () => {
    expect(Object.is(f16BitsToF32(0x0000), 0)).toBe(true);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('decodes every all-ones exponent with a mantissa as NaN', () => {
    for (const bits of [0x7e00, 0x7c01, 0x7fff, 0xfe00]) expect(f16BitsToF32(bits)).toBeNaN();
  });

  it('reads little-endian bytes at an odd offset', () => {
    expect(readF16(new Uint8Array([0xaa, 0x00, 0x3c]), 1)).toBe(1);
  });
});

describe('f32ToF16Bits', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [0.1, 0x2e66], // 0.1f = 1.6 * 2^-4: exponent 11, mantissa round(0.6 * 1024 = 614.4) = 0x266
    [65519, 0x7bff], // below the halfway point 65520 to 2^16
    [65520, 0x7c00], // halfway to 2^16; the even neighbour is the Inf encoding
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
  ])('encodes %d as its f16 bits', (value, bits) => {
    expect(f32ToF16Bits(value)).toBe(bits);
  });

  it('rounds ties to even in the normal range', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway to 0x3c01 (odd): down
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway 0x3c01..0x3c02: up to even
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above halfway: up
  });

  it('rounds ties to even in the subnormal range', () => {
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // half of the smallest subnormal
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 units of 2^-24
    expect(f32ToF16Bits(2 ** -25 + 2 ** -40)).toBe(0x0001);
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the smallest normal
    expect(f32ToF16Bits(-(2 ** -26))).toBe(0x8000); // underflows to -0
  });

  it('rounds the input to f32 first, as ggml takes an f32', () => {
    // As f32, 1 + 2^-11 + 2^-40 is exactly 1 + 2^-11 (a tie), which rounds down.
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c00);
  });

  it('encodes -0 and NaN as ggml does', () => {
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(NaN)).toBe(0x7e00);
  });

  it('round-trips all 65536 bit patterns (NaNs stay NaN)', () => {
    let mismatches = 0;
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = f16BitsToF32(bits);
      const back = f32ToF16Bits(value);
      const ok = Number.isNaN(value) ? Number.isNaN(f16BitsToF32(back)) : back === bits;
      if (!ok) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('returns a nearest f16 for random finite f32 values', () => {
    const rng = mulberry32(7);
    for (let i = 0; i < 20000; i++) {
      const value = Math.fround((rng() - 0.5) * 2 ** (40 * rng() - 30));
      const bits = f32ToF16Bits(value);
      const error = Math.abs(f16BitsToF32(bits) - value);
      // Neighbours one step either side (same sign) are never strictly closer.
      for (const neighbour of [bits - 1, bits + 1]) {
        if ((neighbour & 0x7fff) > 0x7bff || (neighbour & 0x8000) !== (bits & 0x8000)) continue;
        expect(Math.abs(f16BitsToF32(neighbour) - value)).toBeGreaterThanOrEqual(error);
      }
    }
  });
});

describe('bf16', () => {
  it.each([
    [0x3f80, 1],
    [0xc000, -2],
    [0x7f7f, (2 - 2 ** -7) * 2 ** 127], // largest finite
    [0x0001, 2 ** -133], // f32 bits 0x00010000: a subnormal, kept
    [0x7f80, Infinity],
    [0xff80, -Infinity],
  ])('decodes bits %i as the top half of an f32', (bits, expected) => {
    expect(bf16BitsToF32(bits)).toBe(expected);
  });

  it('decodes -0 and NaN', () => {
    expect(Object.is(bf16BitsToF32(0x8000), -0)).toBe(true);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
    expect(bf16BitsToF32(0x7f81)).toBeNaN();
  });

  it('encodes with round-to-nearest-even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie, 0x3f80 is even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, up to even
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16Bits(-2)).toBe(0xc000);
  });

  it('keeps subnormals, overflows to Inf and quiets NaN, as ggml does', () => {
    expect(f32ToBf16Bits(2 ** -133)).toBe(0x0001);
    expect(f32ToBf16Bits(bitsToF32(0x7f7fffff))).toBe(0x7f80); // f32 max rounds up to Inf
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(NaN)).toBe(0x7fc0);
  });
});

describe('E8M0', () => {
  it('decodes to 2^(e - 127) as ggml_e8m0_to_fp32', () => {
    expect(e8m0ToF32(127)).toBe(1);
    expect(e8m0ToF32(128)).toBe(2);
    expect(e8m0ToF32(1)).toBe(2 ** -126);
    expect(e8m0ToF32(0)).toBe(2 ** -127); // an f32 subnormal, special-cased by ggml
    expect(e8m0ToF32(254)).toBe(2 ** 127);
    expect(e8m0ToF32(255)).toBe(Infinity); // exponent field all ones; ggml does not make it NaN
  });

  it('decodes to 2^(e - 128) as ggml_e8m0_to_fp32_half, finite for every byte', () => {
    expect(e8m0ToF32Half(127)).toBe(0.5);
    expect(e8m0ToF32Half(0)).toBe(2 ** -128);
    expect(e8m0ToF32Half(1)).toBe(2 ** -127);
    expect(e8m0ToF32Half(2)).toBe(2 ** -126);
    expect(e8m0ToF32Half(255)).toBe(2 ** 127);
    for (let e = 0; e < 255; e++) {
      expect(e8m0ToF32Half(e)).toBe(e8m0ToF32(e) / 2);
      expect(Math.fround(e8m0ToF32Half(e))).toBe(e8m0ToF32Half(e)); // representable in f32
    }
  });
});
