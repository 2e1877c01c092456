/**
 * CPU reference dequantisation of the i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_NL, IQ4_XS) and the ternary types (TQ1_0,
 * TQ2_0), matching llama.cpp's dequantize_row_* element for element.
 *
 * All but IQ4_NL use 256-element super-blocks, decoded here in 32 groups of 8
 * elements g = 0..31 (sub-block g / 4 of 32 elements, quarter g % 4), the unit
 * most formats index their grids and signs by; IQ4_NL has 32-element blocks.
 * The grids (src/quant/iq-grids.ts) give 8 (or 4) small magnitudes per index;
 * a 7-bit sign index picks 8 sign bits through KSIGNS_IQ2XS (the eighth bit
 * makes the count even), or the sign bits are stored whole (IQ2_S, IQ3_S).
 *
 * Exactness: every scale here is an f16 times a small integer or half-integer
 * (at most 5 significant bits), and every quant a small integer, a grid value
 * or (IQ1) a grid value plus +-1/8, of at most 7 significant bits; so every
 * product is exact in f32 (at most 23 significant bits, and no f16 input
 * reaches f32 subnormals or overflow). There is no rounding at all, and the
 * order of the products does not matter.
 */

import { checkedBlockCount } from './block-extent';
import { readU32 } from './dequant-basic';
import { GgmlType } from './formats';
import { f16BitsToF32, readF16 } from './half';
import {
  IQ1M_DELTA,
  IQ1S_DELTA,
  IQ1S_GRID,
  IQ2S_GRID,
  IQ2XS_GRID,
  IQ2XXS_GRID,
  IQ3S_GRID,
  IQ3XXS_GRID,
  KSIGNS_IQ2XS,
  KVALUES_IQ4NL,
} from './iq-grids';

const QK_K = 256;

/** Bytes per block, from ggml-common.h. */
const IQ2_XXS_BYTES = 66;
const IQ2_XS_BYTES = 74;
const IQ2_S_BYTES = 82;
const IQ3_XXS_BYTES = 98;
const IQ3_S_BYTES = 110;
const IQ1_S_BYTES = 50;
const IQ1_M_BYTES = 56;
const IQ4_NL_BYTES = 18;
const IQ4_XS_BYTES = 136;
const TQ1_0_BYTES = 54;
const TQ2_0_BYTES = 66;

/** A grid's little-endian words as bytes: entry i of an 8-byte grid at 8i, of a 4-byte grid at 4i. */
function gridBytes(words: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (words[i >> 2] >>> (8 * (i & 3))) & 0xff;
  return bytes;
}

const IQ2XXS = gridBytes(IQ2XXS_GRID);
const IQ2XS = gridBytes(IQ2XS_GRID);
const IQ2S = gridBytes(IQ2S_GRID);
const IQ3XXS = gridBytes(IQ3XXS_GRID);
const IQ3S = gridBytes(IQ3S_GRID);
const IQ1S = new Int8Array(gridBytes(IQ1S_GRID).buffer);

function readU16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

/**
 * Writes the 8 elements of group `g` of block `b` as scale * grid[j] with the
 * sign of bit j of `signs`: `grid` holds 8 consecutive magnitudes from `at`.
 */
function writeSignedGroup(
  out: Float32Array,
  b: number,
  g: number,
  scale: number,
  grid: Uint8Array,
  at: number,
  signs: number,
): void {
  const first = b * QK_K + 8 * g;
  for (let j = 0; j < 8; j++) out[first + j] = scale * grid[at + j] * ((signs >> j) & 1 ? -1 : 1);
}

/**
 * IQ2_XXS: d f16, then per 32-element sub-block s two u32: the first holds
 * 4 grid indices (byte l for group 4s + l), the second 4 seven-bit sign
 * indices (bits 7l..7l+6) and a 4-bit scale (bits 28..31);
 * x = d * (0.5 + scale) * 0.25 * iq2xxs_grid[index][j] * sign.
 */
export function dequantIQ2XXS(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ2_XXS, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ2_XXS_BYTES;
    const d = readF16(bytes, base);
    for (let s = 0; s < 8; s++) {
      const aux = readU32(bytes, base + 2 + 8 * s + 4);
      const db = d * (0.5 + (aux >>> 28)) * 0.25;
      for (let l = 0; l < 4; l++) {
        const index = bytes[base + 2 + 8 * s + l];
        writeSignedGroup(out, b, 4 * s + l, db, IQ2XXS, 8 * index, KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127]);
      }
    }
  }
}

/**
 * IQ2_XS: d f16, qs u16[32], scales u8[8]. Group g: qs[g] holds a 9-bit grid
 * index and (bits 9..15) a sign index; the scale is the low (g % 4 < 2) or
 * high nibble of scales[g / 4]; x = d * (0.5 + scale) * 0.25 * grid * sign.
 */
export function dequantIQ2XS(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ2_XS, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ2_XS_BYTES;
    const d = readF16(bytes, base);
    for (let g = 0; g < 32; g++) {
      const scale = (bytes[base + 66 + (g >> 2)] >> (4 * ((g >> 1) & 1))) & 0x0f;
      const db = d * (0.5 + scale) * 0.25;
      const q = readU16(bytes, base + 2 + 2 * g);
      writeSignedGroup(out, b, g, db, IQ2XS, 8 * (q & 511), KSIGNS_IQ2XS[q >> 9]);
    }
  }
}

/**
 * IQ2_S: d f16, qs u8[32] (grid index low bits), signs u8[32], qh u8[8],
 * scales u8[8]. Group g: index = qs[g] | bit pair g % 4 of qh[g / 4] << 8;
 * sign bits signs[g]; scale as IQ2_XS.
 */
export function dequantIQ2S(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ2_S, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ2_S_BYTES;
    const d = readF16(bytes, base);
    for (let g = 0; g < 32; g++) {
      const scale = (bytes[base + 74 + (g >> 2)] >> (4 * ((g >> 1) & 1))) & 0x0f;
      const db = d * (0.5 + scale) * 0.25;
      const high = (bytes[base + 66 + (g >> 2)] >> (2 * (g & 3))) & 3;
      const index = bytes[base + 2 + g] | (high << 8);
      writeSignedGroup(out, b, g, db, IQ2S, 8 * index, bytes[base + 34 + g]);
    }
  }
}

/**
 * IQ3_XXS: d f16, qs u8[64] (two 4-value grid indices per group: qs[2g],
 * qs[2g + 1]), then per sub-block s a u32 of 4 sign indices and a 4-bit scale
 * as in IQ2_XXS; x = d * (0.5 + scale) * 0.5 * iq3xxs_grid value * sign.
 */
export function dequantIQ3XXS(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ3_XXS, bytes.length, out.length);
  const halves = new Uint8Array(8);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ3_XXS_BYTES;
    const d = readF16(bytes, base);
    for (let s = 0; s < 8; s++) {
      const aux = readU32(bytes, base + 66 + 4 * s);
      const db = d * (0.5 + (aux >>> 28)) * 0.5;
      for (let l = 0; l < 4; l++) {
        const g = 4 * s + l;
        halves.set(IQ3XXS.subarray(4 * bytes[base + 2 + 2 * g], 4 * bytes[base + 2 + 2 * g] + 4), 0);
        halves.set(IQ3XXS.subarray(4 * bytes[base + 3 + 2 * g], 4 * bytes[base + 3 + 2 * g] + 4), 4);
        writeSignedGroup(out, b, g, db, halves, 0, KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127]);
      }
    }
  }
}

/**
 * IQ3_S: d f16, qs u8[64], qh u8[8], signs u8[32], scales u8[4]. Group g in
 * sub-block s = g / 4: grid indices qs[2g] | bit 2(g % 4) of qh[s] << 8 and
 * qs[2g + 1] | bit 2(g % 4) + 1 of qh[s] << 8 (4 values each); sign bits
 * signs[g]; the 4-bit scale is nibble s % 2 of scales[s / 2];
 * x = d * (1 + 2 scale) * iq3s_grid value * sign.
 */
export function dequantIQ3S(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ3_S, bytes.length, out.length);
  const halves = new Uint8Array(8);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ3_S_BYTES;
    const d = readF16(bytes, base);
    for (let g = 0; g < 32; g++) {
      const s = g >> 2;
      const db = d * (1 + 2 * ((bytes[base + 106 + (s >> 1)] >> (4 * (s & 1))) & 0x0f));
      const qh = bytes[base + 66 + s];
      const index1 = bytes[base + 2 + 2 * g] | (((qh >> (2 * (g & 3))) & 1) << 8);
      const index2 = bytes[base + 3 + 2 * g] | (((qh >> (2 * (g & 3) + 1)) & 1) << 8);
      halves.set(IQ3S.subarray(4 * index1, 4 * index1 + 4), 0);
      halves.set(IQ3S.subarray(4 * index2, 4 * index2 + 4), 4);
      writeSignedGroup(out, b, g, db, halves, 0, bytes[base + 74 + g]);
    }
  }
}

/**
 * IQ1_S: d f16, qs u8[32], qh u16[8]. Sub-block s: qh[s] holds four 3-bit
 * grid index highs (bits 3l..3l+2 for group 4s + l), a 3-bit scale (bits
 * 12..14) and the delta's sign (bit 15). Group g: index = qs[g] | high << 8;
 * x = d * (2 scale + 1) * (iq1s_grid value + delta), delta = +-IQ1S_DELTA.
 */
export function dequantIQ1S(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ1_S, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ1_S_BYTES;
    const d = readF16(bytes, base);
    for (let s = 0; s < 8; s++) {
      const qh = readU16(bytes, base + 34 + 2 * s);
      const dl = d * (2 * ((qh >> 12) & 7) + 1);
      const delta = qh & 0x8000 ? -IQ1S_DELTA : IQ1S_DELTA;
      for (let l = 0; l < 4; l++) {
        const g = 4 * s + l;
        const at = 8 * (bytes[base + 2 + g] | (((qh >> (3 * l)) & 7) << 8));
        const first = b * QK_K + 8 * g;
        for (let j = 0; j < 8; j++) out[first + j] = dl * (IQ1S[at + j] + delta);
      }
    }
  }
}

/**
 * The f16 scale of an IQ1_M block: its 16 bits are the top nibbles of the
 * four u16 scale words at `offset`, word k giving bits 4k..4k+3.
 */
export function iq1mScale(bytes: Uint8Array, offset: number): number {
  let bits = 0;
  for (let k = 0; k < 4; k++) bits |= (bytes[offset + 2 * k + 1] >> 4) << (4 * k);
  return f16BitsToF32(bits);
}

/**
 * IQ1_M: qs u8[32], qh u8[16], scales u8[8] (four u16, whose top nibbles
 * are the f16 d, see iq1mScale). Group g: nibble g % 2 of qh[g / 2] holds the
 * grid index high bits (bits 0..2) and the delta's sign (bit 3);
 * index = qs[g] | high << 8; the 3-bit scale is bits 6(s % 2) + 3(g % 4 / 2)
 * of u16 scale word s / 2, for sub-block s = g / 4;
 * x = d * (2 scale + 1) * (iq1s_grid value + delta), delta = +-IQ1M_DELTA.
 */
export function dequantIQ1M(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ1_M, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ1_M_BYTES;
    const d = iq1mScale(bytes, base + 48);
    for (let g = 0; g < 32; g++) {
      const s = g >> 2;
      const scales = readU16(bytes, base + 48 + 2 * (s >> 1));
      const dl = d * (2 * ((scales >> (6 * (s & 1) + 3 * ((g >> 1) & 1))) & 7) + 1);
      const nibble = (bytes[base + 32 + (g >> 1)] >> (4 * (g & 1))) & 0x0f;
      const delta = nibble & 8 ? -IQ1M_DELTA : IQ1M_DELTA;
      const at = 8 * (bytes[base + g] | ((nibble & 7) << 8));
      const first = b * QK_K + 8 * g;
      for (let j = 0; j < 8; j++) out[first + j] = dl * (IQ1S[at + j] + delta);
    }
  }
}

/**
 * IQ4_NL: d f16, qs u8[16]; element j < 16 is the low nibble of qs[j], element
 * j + 16 its high nibble, each an index into KVALUES_IQ4NL; x = d * kvalue.
 */
export function dequantIQ4NL(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ4_NL, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ4_NL_BYTES;
    const d = readF16(bytes, base);
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 2 + j];
      out[32 * b + j] = d * KVALUES_IQ4NL[q & 0x0f];
      out[32 * b + j + 16] = d * KVALUES_IQ4NL[q >> 4];
    }
  }
}

/**
 * IQ4_XS: d f16, scales_h u16, scales_l u8[4], qs u8[128]. Sub-block s has a
 * 6-bit scale: low 4 bits nibble s % 2 of scales_l[s / 2], top 2 bits bit pair
 * s of scales_h; its 32 elements are coded as an IQ4_NL block's, in
 * qs[16s..16s + 16]; x = d * (scale - 32) * kvalue.
 */
export function dequantIQ4XS(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.IQ4_XS, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ4_XS_BYTES;
    const d = readF16(bytes, base);
    const scalesHigh = readU16(bytes, base + 2);
    for (let s = 0; s < 8; s++) {
      const low = (bytes[base + 4 + (s >> 1)] >> (4 * (s & 1))) & 0x0f;
      const dl = d * ((low | (((scalesHigh >> (2 * s)) & 3) << 4)) - 32);
      const first = b * QK_K + 32 * s;
      for (let j = 0; j < 16; j++) {
        const q = bytes[base + 8 + 16 * s + j];
        out[first + j] = dl * KVALUES_IQ4NL[q & 0x0f];
        out[first + j + 16] = dl * KVALUES_IQ4NL[q >> 4];
      }
    }
  }
}

/** The trit a TQ1_0 byte holds in base-3 digit n (most significant first): (byte * 3^n mod 256) * 3 / 256. */
function tq1Trit(byte: number, n: number): number {
  return (((byte * 3 ** n) & 0xff) * 3) >> 8;
}

/**
 * TQ1_0: qs u8[48], qh u8[4], d f16. Each byte packs 5 trits (qh bytes use 4)
 * as a fixed-point fraction of 256 / 243. Elements 0..159: trit n of qs[e % 32]
 * for n = e / 32; 160..239: trit n of qs[32 + e' % 16], e' = e - 160,
 * n = e' / 16; 240..255: trit n of qh[e'' % 4], e'' = e - 240, n = e'' / 4;
 * x = (trit - 1) * d.
 */
export function dequantTQ1_0(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.TQ1_0, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * TQ1_0_BYTES;
    const d = readF16(bytes, base + 52);
    const first = b * QK_K;
    for (let e = 0; e < 160; e++) out[first + e] = (tq1Trit(bytes[base + (e & 31)], e >> 5) - 1) * d;
    for (let e = 0; e < 80; e++) out[first + 160 + e] = (tq1Trit(bytes[base + 32 + (e & 15)], e >> 4) - 1) * d;
    for (let e = 0; e < 16; e++) out[first + 240 + e] = (tq1Trit(bytes[base + 48 + (e & 3)], e >> 2) - 1) * d;
  }
}

/**
 * TQ2_0: qs u8[64], d f16. Element e: bit pair (e / 32) % 4 of
 * qs[32 (e / 128) + e % 32] is q in 0..3; x = (q - 1) * d.
 */
export function dequantTQ2_0(bytes: Uint8Array, out: Float32Array): void {
  const nBlocks = checkedBlockCount(GgmlType.TQ2_0, bytes.length, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * TQ2_0_BYTES;
    const d = readF16(bytes, base + 64);
    for (let e = 0; e < QK_K; e++) {
      const q = (bytes[base + 32 * (e >> 7) + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
      out[b * QK_K + e] = (q - 1) * d;
    }
  }
}
