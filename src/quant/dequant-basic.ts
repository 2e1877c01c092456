/**
 * CPU reference dequantisation of the float types (F32, F16, BF16) and of the
 * 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4), matching
 * llama.cpp's dequantize_row_* element for element.
 *
 * Every function reads `out.length` elements' worth of blocks from `bytes`
 * (which may be a view at any byte offset; multi-byte fields are read byte by
 * byte, little-endian) and throws a RangeError when the sizes do not fit.
 *
 * Exactness: in these formats every product of a quant and a scale is exact in
 * f32, so the only rounding is the final store into the Float32Array (or one
 * addition of the min, rounded once, as in f32 C code with or without FMA).
 */

import { checkedBlockCount } from './block-extent';
import { GgmlType } from './formats';
import { bf16BitsToF32, e8m0ToF32Half, readF16 } from './half';

/** Bytes per 32-element block, from ggml-common.h. */
const Q4_0_BYTES = 18;
const Q4_1_BYTES = 20;
const Q5_0_BYTES = 22;
const Q5_1_BYTES = 24;
const Q8_0_BYTES = 34;
const MXFP4_BYTES = 17;

/**
 * E2M1 (FP4) values indexed by the 4-bit code, doubled so they are integers:
 * codes 0..7 are +0, 0.5, 1, 1.5, 2, 3, 4, 6 and codes 8..15 the same negated.
 * The doubling is undone by decoding the block exponent at half its value.
 */
export const MXFP4_DOUBLED_VALUES: readonly number[] = [
  0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
];

/** Reads an int8 at `offset`. */
export function readI8(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 24) >> 24;
}

/** Reads a little-endian u32 at `offset`, as an unsigned number. */
export function readU32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0
  );
}

function dataViewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function dequantF32(bytes: Uint8Array, out: Float32Array): void {
  checkedBlockCount(GgmlType.F32, bytes.length, out.length);
  const view = dataViewOf(bytes);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
}

export function dequantF16(bytes: Uint8Array, out: Float32Array): void {
  checkedBlockCount(GgmlType.F16, bytes.length, out.length);
  for (let i = 0; i < out.length; i++) out[i] = readF16(bytes, i * 2);
}

export function dequantBF16(bytes: Uint8Array, out: Float32Array): void {
  checkedBlockCount(GgmlType.BF16, bytes.length, out.length);
  for (let i = 0; i < out.length; i++) out[i] = bf16BitsToF32(bytes[i * 2] | (bytes[i * 2 + 1] << 8));
}

/** Q8_0: d f16, qs int8[32]; x = q * d. */
export function dequantQ8_0(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q8_0, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q8_0_BYTES;
    const d = readF16(bytes, base);
    for (let j = 0; j < 32; j++) out[b * 32 + j] = readI8(bytes, base + 2 + j) * d;
  }
}

/**
 * Q4_0: d f16, qs u8[16]. Byte j holds element j in its low nibble and element
 * j + 16 in its high nibble; x = (q - 8) * d.
 */
export function dequantQ4_0(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q4_0, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q4_0_BYTES;
    const d = readF16(bytes, base);
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 2 + j];
      out[b * 32 + j] = ((q & 0x0f) - 8) * d;
      out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** Q4_1: d f16, m f16, qs u8[16] in Q4_0's nibble order; x = q * d + m. */
export function dequantQ4_1(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q4_1, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q4_1_BYTES;
    const d = readF16(bytes, base);
    const m = readF16(bytes, base + 2);
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 4 + j];
      out[b * 32 + j] = (q & 0x0f) * d + m;
      out[b * 32 + j + 16] = (q >> 4) * d + m;
    }
  }
}

/**
 * The fifth bits of a Q5 block: bit j of the little-endian u32 `qh` belongs to
 * element j (j = 0..31), so elements 0..15 use bits 0..15 and 16..31 use 16..31.
 */
function fifthBit(qh: number, element: number): number {
  return ((qh >>> element) & 1) << 4;
}

/** Q5_0: d f16, qh u32, qs u8[16]; x = ((nibble | fifth bit << 4) - 16) * d. */
export function dequantQ5_0(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q5_0, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q5_0_BYTES;
    const d = readF16(bytes, base);
    const qh = readU32(bytes, base + 2);
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 6 + j];
      out[b * 32 + j] = (((q & 0x0f) | fifthBit(qh, j)) - 16) * d;
      out[b * 32 + j + 16] = (((q >> 4) | fifthBit(qh, j + 16)) - 16) * d;
    }
  }
}

/** Q5_1: d f16, m f16, qh u32, qs u8[16]; x = (nibble | fifth bit << 4) * d + m. */
export function dequantQ5_1(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q5_1, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q5_1_BYTES;
    const d = readF16(bytes, base);
    const m = readF16(bytes, base + 2);
    const qh = readU32(bytes, base + 4);
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 8 + j];
      out[b * 32 + j] = ((q & 0x0f) | fifthBit(qh, j)) * d + m;
      out[b * 32 + j + 16] = ((q >> 4) | fifthBit(qh, j + 16)) * d + m;
    }
  }
}

/**
 * MXFP4: e u8 (E8M0), qs u8[16] of E2M1 codes in Q4_0's nibble order;
 * x = MXFP4_DOUBLED_VALUES[code] * 2^(e - 128) = E2M1(code) * 2^(e - 127).
 */
export function dequantMXFP4(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.MXFP4, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * MXFP4_BYTES;
    const d = e8m0ToF32Half(bytes[base]);
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 1 + j];
      out[b * 32 + j] = MXFP4_DOUBLED_VALUES[q & 0x0f] * d;
      out[b * 32 + j + 16] = MXFP4_DOUBLED_VALUES[q >> 4] * d;
    }
  }
}
