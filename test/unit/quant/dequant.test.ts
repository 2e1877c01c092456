import { describe, expect, it } from 'vitest';
import { GgmlType, blockFormat, ggmlTypeName, tensorBytes } from '../../../src/quant/formats';
import {
  SUPPORTED_DEQUANT_TYPES,
  UnsupportedTypeError,
  dequantQ4K,
  dequantize,
  dequantizeInto,
  isDequantSupported,
} from '../../../src/quant/dequant';
import { mulberry32, randomBlocks } from '../../../src/quant/random';

const SUPPORTED_NAMES = [
  'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1',
  'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K', 'MXFP4',
  'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ3_XXS', 'IQ3_S', 'IQ1_S', 'IQ1_M', 'IQ4_NL', 'IQ4_XS',
  'TQ1_0', 'TQ2_0',
];

describe('supported types', () => {
  it('are exactly the float types, the 32-element formats, the K-quants, MXFP4, the i-quants and the ternary types', () => {
    expect(SUPPORTED_DEQUANT_TYPES.map(ggmlTypeName).sort()).toEqual([...SUPPORTED_NAMES].sort());
  });

  it('isDequantSupported agrees with the list', () => {
    expect(isDequantSupported(GgmlType.Q4_K)).toBe(true);
    expect(isDequantSupported(GgmlType.IQ4_XS)).toBe(true);
    expect(isDequantSupported(GgmlType.Q8_1)).toBe(false);
    expect(isDequantSupported(999)).toBe(false);
  });
});

describe('dequantize errors', () => {
  it('throws UnsupportedTypeError naming the type', () => {
    const call = () => dequantize(GgmlType.Q8_1, new Uint8Array(36), 32);
    expect(call).toThrow(UnsupportedTypeError);
    expect(call).toThrow(/Q8_1/);
    try {
      call();
    } catch (error) {
      expect((error as UnsupportedTypeError).type).toBe(GgmlType.Q8_1);
      expect((error as UnsupportedTypeError).name).toBe('UnsupportedTypeError');
    }
  });

  it('names an unknown id as type#N', () => {
    expect(() => dequantize(99 as GgmlType, new Uint8Array(4), 1)).toThrow(/type#99/);
  });

  it('throws RangeError when the bytes are too short', () => {
    expect(() => dequantize(GgmlType.Q4_0, new Uint8Array(17), 32)).toThrow(RangeError);
    expect(() => dequantize(GgmlType.Q4_K, new Uint8Array(143), 256)).toThrow(/144 bytes/);
    expect(() => dequantize(GgmlType.F32, new Uint8Array(7), 2)).toThrow(RangeError);
  });

  it('throws RangeError when the count is not a whole number of blocks', () => {
    expect(() => dequantize(GgmlType.Q4_K, new Uint8Array(1000), 255)).toThrow(RangeError);
    expect(() => dequantize(GgmlType.Q8_0, new Uint8Array(1000), 48)).toThrow(/32-element blocks/);
    expect(() => dequantize(GgmlType.F16, new Uint8Array(10), 1.5)).toThrow(RangeError);
    expect(() => dequantize(GgmlType.F16, new Uint8Array(10), -2)).toThrow(RangeError);
  });

  it('per-format functions check sizes too', () => {
    expect(() => dequantQ4K(new Uint8Array(100), new Float32Array(256))).toThrow(RangeError);
  });
});

describe('dequantize', () => {
  it('ignores bytes after the last needed block and accepts zero elements', () => {
    // Q8_0, d = 1 (0x3C00), q = 2; then 5 junk bytes.
    const bytes = new Uint8Array([0x00, 0x3c, ...new Array<number>(32).fill(2), 9, 9, 9, 9, 9]);
    expect(Array.from(dequantize(GgmlType.Q8_0, bytes, 32))).toEqual(new Array<number>(32).fill(2));
    expect(dequantize(GgmlType.Q8_0, bytes, 0)).toEqual(new Float32Array(0));
  });

  it('dequantizeInto fills a caller-owned array', () => {
    const out = new Float32Array(2).fill(7);
    dequantizeInto(GgmlType.F16, new Uint8Array([0x00, 0x3c, 0x00, 0xc0]), out);
    expect(Array.from(out)).toEqual([1, -2]);
  });

  it.each(SUPPORTED_DEQUANT_TYPES.map((t) => [ggmlTypeName(t), t] as const))(
    '%s: random blocks decode to finite values, block by block as a whole',
    (_name, type) => {
      const rng = mulberry32(1234 + type);
      const nElements = 512; // two super-blocks, or 16 blocks of 32
      const bytes = randomBlocks(type, nElements, rng);
      const whole = dequantize(type, bytes, nElements);
      expect(whole.every(Number.isFinite)).toBe(true);
      expect(whole.some((v) => v !== 0)).toBe(true);
      // Decoding the second half on its own, from an unaligned copy, gives the same values.
      const half = nElements / 2;
      const halfBytes = tensorBytes(type, half)!;
      const copy = new Uint8Array(halfBytes + 1);
      copy.set(bytes.subarray(halfBytes), 1);
      expect(dequantize(type, copy.subarray(1), half)).toEqual(whole.subarray(half));
      expect(blockFormat(type)!.blockSize).toBeLessThanOrEqual(half);
    },
  );
});
