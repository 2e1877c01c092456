/**
 * CPU reference dequantisation of the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 * Q8_K), matching llama.cpp's dequantize_row_* element for element.
 *
 * All K-quants use 256-element super-blocks. Each function below maps an
 * element index e (0..255 within the super-block) straight to the bytes and
 * bits that encode it, rather than following ggml's pointer-walking loops;
 * the index maps are derived from those loops and written out in comments.
 *
 * Exactness: every scale product (d * sub-block scale, then * quant) is exact
 * in f32 for these bit widths, so as in ggml the only rounding is the final
 * subtraction of the min (or the store, for Q8_K's f32 scale).
 */

import { checkedBlockCount } from './block-extent';
import { readI8 } from './dequant-basic';
import { GgmlType } from './formats';
import { readF16 } from './half';

const QK_K = 256;

/** Bytes per super-block, from ggml-common.h. */
const Q2_K_BYTES = 84;
const Q3_K_BYTES = 110;
const Q4_K_BYTES = 144;
const Q5_K_BYTES = 176;
const Q6_K_BYTES = 210;
const Q8_K_BYTES = 292;

/**
 * The 6-bit scale of sub-block j (0..7) from the 12 packed bytes of Q4_K and
 * Q5_K at `offset`. Sub-blocks 0..3 keep scale and min in the low 6 bits of
 * bytes 0..3 and 4..7; sub-blocks 4..7 take their low 4 bits from a nibble of
 * bytes 8..11 and their top 2 bits from the spare top bits of bytes 0..7.
 */
export function kScale6(bytes: Uint8Array, offset: number, j: number): number {
  if (j < 4) return bytes[offset + j] & 63;
  return (bytes[offset + j + 4] & 0x0f) | ((bytes[offset + j - 4] >> 6) << 4);
}

/** The 6-bit min of sub-block j (0..7), packed alongside kScale6's scales. */
export function kMin6(bytes: Uint8Array, offset: number, j: number): number {
  if (j < 4) return bytes[offset + j + 4] & 63;
  return (bytes[offset + j + 4] >> 4) | ((bytes[offset + j] >> 6) << 4);
}

/**
 * The signed scale of Q3_K sub-block j (0..15) from its 12 packed bytes at
 * `offset`: 6 bits minus 32. The low 4 bits are the low nibble of byte j
 * (j < 8) or the high nibble of byte j - 8; the top 2 bits are bit pair j / 4
 * of byte 8 + j % 4.
 */
export function q3kScale(bytes: Uint8Array, offset: number, j: number): number {
  const low = j < 8 ? bytes[offset + j] & 0x0f : bytes[offset + j - 8] >> 4;
  const high = (bytes[offset + 8 + (j & 3)] >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

/**
 * Q2_K: scales u8[16] (low nibble scale, high nibble min), qs u8[64], d f16,
 * dmin f16. Element e: sub-block e / 16; 2-bit quant at bit pair (e / 32) % 4
 * of qs[32 * (e / 128) + e % 32]; x = d * scale * q - dmin * min.
 */
export function dequantQ2K(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q2_K, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q2_K_BYTES;
    const d = readF16(bytes, base + 80);
    const dmin = readF16(bytes, base + 82);
    for (let e = 0; e < QK_K; e++) {
      const sc = bytes[base + (e >> 4)];
      const dl = Math.fround(d * (sc & 0x0f));
      const ml = Math.fround(dmin * (sc >> 4));
      const q = (bytes[base + 16 + 32 * (e >> 7) + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
      out[b * QK_K + e] = dl * q - ml;
    }
  }
}

/**
 * Q3_K: hmask u8[32], qs u8[64], scales u8[12], d f16. Element e: sub-block
 * e / 16 with scale q3kScale; low 2 bits as in Q2_K; the third bit is bit
 * (e / 32) of hmask[e % 32], and a CLEAR bit subtracts 4, so q is in -4..3;
 * x = d * scale * q.
 */
export function dequantQ3K(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q3_K, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q3_K_BYTES;
    const d = readF16(bytes, base + 108);
    for (let e = 0; e < QK_K; e++) {
      const dl = Math.fround(d * q3kScale(bytes, base + 96, e >> 4));
      const low = (bytes[base + 32 + 32 * (e >> 7) + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
      const highSet = (bytes[base + (e & 31)] >> (e >> 5)) & 1;
      out[b * QK_K + e] = dl * (low - (highSet ? 0 : 4));
    }
  }
}

/**
 * Q4_K: d f16, dmin f16, scales u8[12], qs u8[128]. Element e: sub-block
 * s = e / 32 (scale and min from kScale6 / kMin6); byte qs[32 * (s / 2) + e % 32],
 * low nibble for even s, high nibble for odd s; x = d * scale * q - dmin * min.
 */
export function dequantQ4K(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q4_K, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q4_K_BYTES;
    const d = readF16(bytes, base);
    const dmin = readF16(bytes, base + 2);
    for (let s = 0; s < 8; s++) {
      const ds = Math.fround(d * kScale6(bytes, base + 4, s));
      const ms = Math.fround(dmin * kMin6(bytes, base + 4, s));
      const qsBase = base + 16 + 32 * (s >> 1);
      const shift = (s & 1) * 4;
      for (let l = 0; l < 32; l++) {
        const q = (bytes[qsBase + l] >> shift) & 0x0f;
        out[b * QK_K + 32 * s + l] = ds * q - ms;
      }
    }
  }
}

/**
 * Q5_K: d f16, dmin f16, scales u8[12], qh u8[32], qs u8[128]. As Q4_K, plus a
 * fifth bit: bit s of qh[e % 32] adds 16, so q is in 0..31.
 */
export function dequantQ5K(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q5_K, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q5_K_BYTES;
    const d = readF16(bytes, base);
    const dmin = readF16(bytes, base + 2);
    for (let s = 0; s < 8; s++) {
      const ds = Math.fround(d * kScale6(bytes, base + 4, s));
      const ms = Math.fround(dmin * kMin6(bytes, base + 4, s));
      const qsBase = base + 48 + 32 * (s >> 1);
      const shift = (s & 1) * 4;
      for (let l = 0; l < 32; l++) {
        const fifth = ((bytes[base + 16 + l] >> s) & 1) << 4;
        const q = ((bytes[qsBase + l] >> shift) & 0x0f) | fifth;
        out[b * QK_K + 32 * s + l] = ds * q - ms;
      }
    }
  }
}

/**
 * Q6_K: ql u8[128], qh u8[64], scales int8[16], d f16. Element e, in half
 * h = e / 128 with r = e % 128, quarter k = r / 32 and l = r % 32: the low
 * 4 bits are the low (k < 2) or high (k >= 2) nibble of ql[64h + 32(k % 2) + l],
 * the top 2 bits are bit pair k of qh[32h + l]; q is that 6-bit value minus 32;
 * sub-block e / 16; x = d * scale * q.
 */
export function dequantQ6K(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q6_K, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q6_K_BYTES;
    const d = readF16(bytes, base + 208);
    for (let e = 0; e < QK_K; e++) {
      const h = e >> 7;
      const k = (e >> 5) & 3;
      const l = e & 31;
      const lowByte = bytes[base + 64 * h + 32 * (k & 1) + l];
      const low = k < 2 ? lowByte & 0x0f : lowByte >> 4;
      const high = (bytes[base + 128 + 32 * h + l] >> (2 * k)) & 3;
      const q = (low | (high << 4)) - 32;
      const ds = Math.fround(d * readI8(bytes, base + 192 + (e >> 4)));
      out[b * QK_K + e] = ds * q;
    }
  }
}

/**
 * Q8_K: d f32, qs int8[256], bsums int16[16] (sums of groups of 16 quants,
 * used only by dot products, so ignored here); x = d * q.
 */
export function dequantQ8K(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.Q8_K, bytes.length, out.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q8_K_BYTES;
    const d = view.getFloat32(base, true);
    for (let e = 0; e < QK_K; e++) out[b * QK_K + e] = d * readI8(bytes, base + 4 + e);
  }
}
