import { describe, expect, it } from 'vitest';
import { GgmlType, blockFormat, ggmlTypeName, tensorBytes } from '../../../src/quant/formats';

/**
 * [type, elements per block, bytes per block], each worked out by hand from
 * the struct layouts and static_asserts in llama.cpp's ggml-common.h
 * (ggml_half = 2 bytes, QK_K = 256, K_SCALE_SIZE = 12).
 */
const EXPECTED_SIZES: readonly [GgmlType, number, number][] = [
  [GgmlType.F32, 1, 4],
  [GgmlType.F16, 1, 2],
  [GgmlType.BF16, 1, 2],
  [GgmlType.F64, 1, 8],
  [GgmlType.I8, 1, 1],
  [GgmlType.I16, 1, 2],
  [GgmlType.I32, 1, 4],
  [GgmlType.I64, 1, 8],
  [GgmlType.Q4_0, 32, 18], // d + 16 nibble bytes
  [GgmlType.Q4_1, 32, 20], // d, m + 16
  [GgmlType.Q5_0, 32, 22], // d + qh u32 + 16
  [GgmlType.Q5_1, 32, 24], // d, m + qh u32 + 16
  [GgmlType.Q8_0, 32, 34], // d + 32 int8
  [GgmlType.Q8_1, 32, 36], // d, s + 32 int8
  [GgmlType.MXFP4, 32, 17], // e8m0 byte + 16
  [GgmlType.IQ4_NL, 32, 18], // d + 16
  [GgmlType.Q2_K, 256, 84], // scales 16 + qs 64 + d, dmin
  [GgmlType.Q3_K, 256, 110], // hmask 32 + qs 64 + scales 12 + d
  [GgmlType.Q4_K, 256, 144], // d, dmin + scales 12 + qs 128
  [GgmlType.Q5_K, 256, 176], // d, dmin + scales 12 + qh 32 + qs 128
  [GgmlType.Q6_K, 256, 210], // ql 128 + qh 64 + scales 16 + d
  [GgmlType.Q8_K, 256, 292], // f32 d + qs 256 + bsums 16 * int16
  [GgmlType.IQ2_XXS, 256, 66], // d + 32 u16
  [GgmlType.IQ2_XS, 256, 74], // d + 32 u16 + scales 8
  [GgmlType.IQ2_S, 256, 82], // d + qs 64 + scales 16
  [GgmlType.IQ3_XXS, 256, 98], // d + 3 * 32
  [GgmlType.IQ3_S, 256, 110], // d + 13 * 8 + scales 4
  [GgmlType.IQ1_S, 256, 50], // d + qs 32 + qh 8 * u16
  [GgmlType.IQ1_M, 256, 56], // qs 32 + qh 16 + scales 8 (no d)
  [GgmlType.IQ4_XS, 256, 136], // d + scales_h u16 + scales_l 4 + qs 128
  [GgmlType.TQ1_0, 256, 54], // qs (256 - 16) / 5 = 48 + qh 4 + d
  [GgmlType.TQ2_0, 256, 66], // qs 64 + d
];

describe('blockFormat', () => {
  const rows = EXPECTED_SIZES.map(([type, size, bytes]) => [ggmlTypeName(type), type, size, bytes] as const);
  it.each(rows)('%s (id %i) has %i elements in %i bytes per block', (_name, type, blockSize, blockBytes) => {
    expect(blockFormat(type)).toEqual({ blockSize, blockBytes });
  });

  it('knows exactly the types listed above', () => {
    const enumIds = Object.values(GgmlType).filter((v): v is number => typeof v === 'number');
    expect(enumIds.sort((a, b) => a - b)).toEqual(EXPECTED_SIZES.map(([t]) => t).sort((a, b) => a - b));
  });

  it('returns undefined for ids llama.cpp removed or never had', () => {
    expect(blockFormat(4)).toBeUndefined(); // Q4_2, removed
    expect(blockFormat(31)).toBeUndefined(); // Q4_0_4_4, removed from GGUF
    expect(blockFormat(1000)).toBeUndefined();
  });
});

describe('ggml type ids', () => {
  it('match the GGML_TYPE_* values of ggml.h', () => {
    expect([GgmlType.F32, GgmlType.F16, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K]).toEqual([
      0, 1, 2, 8, 12, 14,
    ]);
    expect([GgmlType.BF16, GgmlType.TQ1_0, GgmlType.MXFP4]).toEqual([30, 34, 39]);
  });

  it('are named as llama.cpp spells them, unknown ids as type#N', () => {
    expect(ggmlTypeName(GgmlType.Q4_K)).toBe('Q4_K');
    expect(ggmlTypeName(GgmlType.MXFP4)).toBe('MXFP4');
    expect(ggmlTypeName(77)).toBe('type#77');
  });
});

describe('tensorBytes', () => {
  it('multiplies whole blocks by their byte size', () => {
    expect(tensorBytes(GgmlType.Q4_K, 512)).toBe(2 * 144);
    expect(tensorBytes(GgmlType.F16, 3)).toBe(6);
    expect(tensorBytes(GgmlType.MXFP4, 64)).toBe(34);
  });

  it('is undefined for a partial block or an unknown type', () => {
    expect(tensorBytes(GgmlType.Q8_0, 33)).toBeUndefined();
    expect(tensorBytes(1000, 32)).toBeUndefined();
  });
});
