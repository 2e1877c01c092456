import { describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeName, tensorBytes } from '../../../src/quant/formats';
import { SUPPORTED_DEQUANT_TYPES, UnsupportedTypeError, dequantize } from '../../../src/quant/dequant';
import { f16BitsToF32 } from '../../../src/quant/half';
import { mulberry32, randomBlocks, randomNormal } from '../../../src/quant/random';

function meanAndStd(values: ArrayLike<number>): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  const mean = sum / values.length;
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(squares / values.length) };
}

describe('mulberry32', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(seqA);
  });

  it('is uniform on [0, 1)', () => {
    const rng = mulberry32(1);
    const values = Array.from({ length: 20000 }, rng);
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const { mean, std } = meanAndStd(values);
    expect(mean).toBeCloseTo(0.5, 1);
    expect(std).toBeCloseTo(Math.sqrt(1 / 12), 1);
  });
});

describe('randomNormal', () => {
  it('has mean 0 and standard deviation 1', () => {
    const rng = mulberry32(2);
    const { mean, std } = meanAndStd(Array.from({ length: 20000 }, () => randomNormal(rng)));
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(std - 1)).toBeLessThan(0.03);
  });
});

describe('randomBlocks', () => {
  const rows = SUPPORTED_DEQUANT_TYPES.map((t) => [ggmlTypeName(t), t] as const);

  it.each(rows)('%s: dequantizes to finite, zero-mean values with a std near the target', (_name, type) => {
    for (const targetStd of [0.02, 0.05, 0.1]) {
      const nElements = 256 * 32;
      const bytes = randomBlocks(type, nElements, mulberry32(type), targetStd);
      expect(bytes.length).toBe(tensorBytes(type, nElements));
      const values = dequantize(type, bytes, nElements);
      expect(values.every(Number.isFinite)).toBe(true);
      const { mean, std } = meanAndStd(values);
      expect(std).toBeGreaterThan(targetStd * 0.85);
      expect(std).toBeLessThan(targetStd * 1.15);
      expect(Math.abs(mean)).toBeLessThan(targetStd * 0.15);
    }
  });

  it.each(rows)('%s: the same seed gives the same bytes', (_name, type) => {
    expect(randomBlocks(type, 256, mulberry32(5))).toEqual(randomBlocks(type, 256, mulberry32(5)));
  });

  it('draws F32 from a normal distribution with std 0.05 by default', () => {
    const values = dequantize(GgmlType.F32, randomBlocks(GgmlType.F32, 20000, mulberry32(3)), 20000);
    const { mean, std } = meanAndStd(values);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(Math.abs(std - 0.05)).toBeLessThan(0.002);
  });

  it('writes finite, positive f16 scales (Q4_K d and dmin)', () => {
    const bytes = randomBlocks(GgmlType.Q4_K, 256 * 16, mulberry32(4));
    for (let b = 0; b < 16; b++) {
      for (const offset of [0, 2]) {
        const value = f16BitsToF32(bytes[b * 144 + offset] | (bytes[b * 144 + offset + 1] << 8));
        expect(Number.isFinite(value) && value > 0).toBe(true);
      }
    }
  });

  it('fills Q8_K bsums with the sums of each group of 16 quants', () => {
    const bytes = randomBlocks(GgmlType.Q8_K, 256, mulberry32(6));
    const view = new DataView(bytes.buffer);
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let l = 0; l < 16; l++) sum += (bytes[4 + 16 * g + l] << 24) >> 24;
      expect(view.getInt16(260 + 2 * g, true)).toBe(sum);
    }
  });

  it('rejects unsupported types, partial blocks and bad stds', () => {
    const rng = mulberry32(0);
    expect(() => randomBlocks(GgmlType.Q8_1, 256, rng)).toThrow(UnsupportedTypeError);
    expect(() => randomBlocks(GgmlType.Q4_0, 31, rng)).toThrow(RangeError);
    expect(() => randomBlocks(GgmlType.F32, 4, rng, 0)).toThrow(RangeError);
    expect(() => randomBlocks(GgmlType.F32, 4, rng, NaN)).toThrow(RangeError);
  });
});
