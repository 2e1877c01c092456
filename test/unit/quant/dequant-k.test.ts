/**
 * Hand-built K-quant super-blocks (256 elements), with expected values worked
 * out by hand from llama.cpp's block layouts. Each test first fills every
 * quant with zero, so each sub-block decodes to a constant that pins its
 * scale (and min), then sets a few quants to check where their bits live.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { dequantize } from '../../../src/quant/dequant';

/** 256 expected values: sub-block s (of `subBlockSize` elements) is `constants[s]`, then `overrides`. */
function expectedValues(
  subBlockSize: number,
  constants: readonly number[],
  overrides: Readonly<Record<number, number>>,
): number[] {
  const values = Array.from({ length: 256 }, (_, e) => constants[Math.floor(e / subBlockSize)]);
  for (const [e, v] of Object.entries(overrides)) values[Number(e)] = v;
  return values;
}

/**
 * Packed scales and mins shared by the Q4_K and Q5_K tests.
 *   bytes 0..3 = 0x41 0x02 0xC3 0x04: scales of sub-blocks 0..3 are the low 6 bits: 1, 2, 3, 4
 *   bytes 4..7 = 0x85 0x06 0x47 0x08: mins of sub-blocks 0..3: 5, 6, 7, 8
 *   bytes 8..11 = 0x21 0x00 0xF3 0x14: sub-blocks 4..7 take scale from the low nibble and
 *   min from the high nibble, plus 2 high bits from the top of bytes 0..3 (scale) / 4..7 (min):
 *     s4: scale 1 | (0x41 >> 6 = 1) << 4 = 17,  min 2 | (0x85 >> 6 = 2) << 4 = 34
 *     s5: scale 0 | 0 = 0,                      min 0 | 0 = 0
 *     s6: scale 3 | (0xC3 >> 6 = 3) << 4 = 51,  min 15 | (0x47 >> 6 = 1) << 4 = 31
 *     s7: scale 4 | 0 = 4,                      min 1 | 0 = 1
 */
const K_SCALES = [0x41, 0x02, 0xc3, 0x04, 0x85, 0x06, 0x47, 0x08, 0x21, 0x00, 0xf3, 0x14];
/** With d = 1 and dmin = 0.5, a zero quant in sub-block s decodes to -0.5 * min(s). */
const K_ZERO_QUANT_VALUES = [-2.5, -3, -3.5, -4, -17, 0, -15.5, -0.5];
const D_ONE_DMIN_HALF = [0x00, 0x3c, 0x00, 0x38];

describe('Q4_K', () => {
  it('unpacks 6-bit scales and mins of sub-blocks 0..3 and 4..7, low nibbles first', () => {
    const qs = new Array<number>(128).fill(0);
    qs[0] = 0xa3; // group 0, l = 0: e0 (s0) low 3 -> 1*3 - 2.5 = 0.5;  e32 (s1) high 10 -> 2*10 - 3 = 17
    qs[31] = 0x1f; // l = 31: e31 (s0) 15 -> 15 - 2.5 = 12.5;          e63 (s1) 1 -> 2 - 3 = -1
    qs[64] = 0x52; // group 2: e128 (s4) 2 -> 17*2 - 17 = 17;          e160 (s5) 5 -> 0*5 - 0 = 0
    qs[127] = 0xf2; // group 3, l = 31: e223 (s6) 2 -> 51*2 - 15.5 = 86.5; e255 (s7) 15 -> 4*15 - 0.5 = 59.5
    const bytes = new Uint8Array([...D_ONE_DMIN_HALF, ...K_SCALES, ...qs]);
    const expected = expectedValues(32, K_ZERO_QUANT_VALUES, {
      0: 0.5, 32: 17, 31: 12.5, 63: -1, 128: 17, 160: 0, 223: 86.5, 255: 59.5,
    });
    expect(Array.from(dequantize(GgmlType.Q4_K, bytes, 256))).toEqual(expected);
  });

  it('decodes each super-block with its own d and dmin', () => {
    // Block 1 has d = 2 (0x4000) and dmin = 1 (0x3C00): every value doubles.
    const qs = new Array<number>(128).fill(0x11); // every quant 1
    const b0 = [...D_ONE_DMIN_HALF, ...K_SCALES, ...qs];
    const b1 = [0x00, 0x40, 0x00, 0x3c, ...K_SCALES, ...qs];
    const out = dequantize(GgmlType.Q4_K, new Uint8Array([...b0, ...b1]), 512);
    expect(out[0]).toBe(1 * 1 - 2.5);
    expect(out[256]).toBe(2 * 1 * 1 - 1 * 5);
    expect(out[256 + 192]).toBe(2 * 51 * 1 - 1 * 31); // s6 of block 1
  });
});

describe('Q5_K', () => {
  it('adds 16 for bit s of qh[l], on top of the Q4_K layout', () => {
    const qh = new Array<number>(32).fill(0);
    qh[0] = 0x03; // bits 0, 1: e0 (s0) and e32 (s1) get +16
    qh[5] = 0x10; // bit 4: e133 (s4, l = 5) gets +16
    qh[31] = 0x80; // bit 7: e255 (s7, l = 31) gets +16
    const qs = new Array<number>(128).fill(0);
    qs[0] = 0xa3; // e0: 1*(3+16) - 2.5 = 16.5;  e32: 2*(10+16) - 3 = 49
    qs[127] = 0xf2; // e223: 51*2 - 15.5 = 86.5 (bit 6 of qh[31] clear);  e255: 4*(15+16) - 0.5 = 123.5
    // e133: quant 0 + 16 -> 17*16 - 17 = 255
    const bytes = new Uint8Array([...D_ONE_DMIN_HALF, ...K_SCALES, ...qh, ...qs]);
    const expected = expectedValues(32, K_ZERO_QUANT_VALUES, {
      0: 16.5, 32: 49, 133: 255, 223: 86.5, 255: 123.5,
    });
    expect(Array.from(dequantize(GgmlType.Q5_K, bytes, 256))).toEqual(expected);
  });
});

describe('Q2_K', () => {
  it('uses one scale/min byte per 16 elements and 2-bit quants in four bit pairs', () => {
    // scales[s] = s | (15 - s) << 4: scale s, min 15 - s. d = 1 (0x3C00), dmin = 0.25 (0x3400),
    // so a zero quant in sub-block s decodes to -0.25 * (15 - s).
    const scales = Array.from({ length: 16 }, (_, s) => s | ((15 - s) << 4));
    const qs = new Array<number>(64).fill(0);
    // Element e: byte 32 * (e / 128) + e % 32, bit pair (e / 32) % 4; sub-block e / 16.
    qs[0] = 0xe4; // pairs 0,1,2,3 = 0,1,2,3: e0 (s0) -3.75; e32 (s2) 2*1 - 3.25 = -1.25;
    //               e64 (s4) 4*2 - 2.75 = 5.25; e96 (s6) 6*3 - 2.25 = 15.75
    qs[31] = 0x1b; // pairs = 3,2,1,0: e31 (s1) 1*3 - 3.5 = -0.5; e63 (s3) 3*2 - 3 = 3;
    //                e95 (s5) 5*1 - 2.5 = 2.5; e127 (s7) -2
    qs[32] = 0x03; // second half: e128 (s8) 8*3 - 1.75 = 22.25
    qs[63] = 0xc0; // e255 (s15, top pair) 15*3 - 0 = 45
    const bytes = new Uint8Array([...scales, ...qs, 0x00, 0x3c, 0x00, 0x34]);
    // s15: 15 * 0 - 0.25 * 0 = +0
    const constants = [-3.75, -3.5, -3.25, -3, -2.75, -2.5, -2.25, -2, -1.75, -1.5, -1.25, -1, -0.75, -0.5, -0.25, 0];
    const expected = expectedValues(16, constants, {
      0: -3.75, 32: -1.25, 64: 5.25, 96: 15.75, 31: -0.5, 63: 3, 95: 2.5, 127: -2, 128: 22.25, 255: 45,
    });
    expect(Array.from(dequantize(GgmlType.Q2_K, bytes, 256))).toEqual(expected);
  });
});

describe('Q3_K', () => {
  /**
   * Stored 6-bit scales S0..S15 (signed scale = S - 32):
   *   33 34 31 0 | 63 32 36 28 | 40 30 48 16 | 35 29 37 27
   *   -> scales 1 2 -1 -32 | 31 0 4 -4 | 8 -2 16 -16 | 3 -3 5 -5
   * Bytes 0..7: low nibble = low 4 bits of S0..S7, high nibble = low 4 bits of S8..S15.
   * Bytes 8..11: byte 8 + i holds the top 2 bits of S[i], S[4+i], S[8+i], S[12+i] in bit pairs 0..3:
   *   i=0: 2,3,2,2 -> 0xAE; i=1: 2,2,1,1 -> 0x5A; i=2: 1,2,3,2 -> 0xB9; i=3: 0,1,1,1 -> 0x54
   */
  const scales = [0x81, 0xe2, 0x0f, 0x00, 0x3f, 0xd0, 0x54, 0xbc, 0xae, 0x5a, 0xb9, 0x54];

  it('unpacks the 16 signed 6-bit scales and subtracts 4 where the hmask bit is clear', () => {
    // d = 0.5 (0x3800). All quants 0 with hmask clear: q = 0 - 4, value = 0.5 * scale * -4 = -2 * scale.
    const constants = [-2, -4, 2, 64, -62, -0, -8, 8, -16, 4, -32, 32, -6, 6, -10, 10];
    const hmask = new Array<number>(32).fill(0);
    const qs = new Array<number>(64).fill(0);
    // Element e: hmask bit e / 32 of byte e % 32; low bits as Q2_K; sub-block e / 16.
    hmask[0] = 0x01; // e0 high bit set
    qs[0] = 0x0b; // e0: 3 (no -4) -> 0.5 * 1 * 3 = 1.5;  e32 (s2): 2 - 4 = -2 -> 0.5 * -1 * -2 = 1
    hmask[16] = 0x10; // e144 (s9: second half, l = 16, bit pair 0) high bit set
    qs[48] = 0x02; // e144: 2 -> 0.5 * -2 * 2 = -2
    hmask[31] = 0x80; // e255 high bit set
    qs[63] = 0xc0; // e255 (s15, top pair): 3 -> 0.5 * -5 * 3 = -7.5
    const bytes = new Uint8Array([...hmask, ...qs, ...scales, 0x00, 0x38]);
    const expected = expectedValues(16, constants, { 0: 1.5, 32: 1, 144: -2, 255: -7.5 });
    const out = dequantize(GgmlType.Q3_K, bytes, 256);
    expect(Array.from(out)).toEqual(expected);
    expect(Object.is(out[5 * 16], -0)).toBe(true); // scale 0 times -4 is -0, as in C
  });
});

describe('Q6_K', () => {
  it('joins 4 low bits from ql and 2 high bits from qh, minus 32, times a signed 8-bit scale', () => {
    // d = 0.5 (0x3800). scales (int8): 1 -1 2 -2 3 -3 4 -4 5 -5 6 -6 7 -7 8 -128 (0x80).
    // All quants zero: q = -32, value = 0.5 * scale * -32 = -16 * scale.
    const scaleValues = [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -128];
    const constants = [-16, 16, -32, 32, -48, 48, -64, 64, -80, 80, -96, 96, -112, 112, -128, 2048];
    const ql = new Array<number>(128).fill(0);
    const qh = new Array<number>(64).fill(0);
    // Element e, half h = e / 128, quarter k = (e % 128) / 32, l = e % 32:
    // low 4 bits in ql[64h + 32(k % 2) + l] (low nibble k < 2, high k >= 2), top 2 in qh[32h + l] pair k.
    ql[0] = 0x5f; // e0 low 15, e64 low 5
    ql[32] = 0x0a; // e32 low 10, e96 low 0
    qh[0] = 0xe4; // pairs 0,1,2,3 = 0,1,2,3 for e0, e32, e64, e96
    // e0: 15 - 32 = -17 -> 0.5*1*-17 = -8.5;  e32: (10 | 1<<4) - 32 = -6 -> 0.5*2*-6 = -6
    // e64: (5 | 2<<4) - 32 = 5 -> 0.5*3*5 = 7.5;  e96: (0 | 3<<4) - 32 = 16 -> 0.5*4*16 = 32
    ql[80] = 0x01; // e144 (h1, k0, l16, s9): low 1
    qh[48] = 0x02; // e144 top 2: (1 | 2<<4) - 32 = 1 -> 0.5*-5*1 = -2.5
    ql[127] = 0xf0; // e255 (h1, k3, l31, s15): high nibble 15
    qh[63] = 0xc0; // e255 pair 3 = 3: (15 | 3<<4) - 32 = 31 -> 0.5*-128*31 = -1984
    const bytes = new Uint8Array([...ql, ...qh, ...scaleValues.map((s) => s & 0xff), 0x00, 0x38]);
    const expected = expectedValues(16, constants, { 0: -8.5, 32: -6, 64: 7.5, 96: 32, 144: -2.5, 255: -1984 });
    expect(Array.from(dequantize(GgmlType.Q6_K, bytes, 256))).toEqual(expected);
  });
});

describe('Q8_K', () => {
  it('multiplies int8 quants by an f32 d and ignores bsums', () => {
    // d = 0.125 = 0x3E000000. q0 = 1 -> 0.125, q1 = -1 -> -0.125, q255 = -128 -> -16.
    const qs = [0x01, 0xff, ...new Array<number>(253).fill(0), 0x80];
    const bsums = new Array<number>(32).fill(0xff); // inconsistent on purpose: unused by dequant
    const out = dequantize(GgmlType.Q8_K, new Uint8Array([0x00, 0x00, 0x00, 0x3e, ...qs, ...bsums]), 256);
    expect([out[0], out[1], out[2], out[255]]).toEqual([0.125, -0.125, 0, -16]);
  });

  it('rounds d * q once to f32', () => {
    // d = 0.1f = 0x3DCCCCCD (not an f16 value), q = 3: the product rounds to the nearest f32.
    const qs = [0x03, ...new Array<number>(255).fill(0)];
    const out = dequantize(GgmlType.Q8_K, new Uint8Array([0xcd, 0xcc, 0xcc, 0x3d, ...qs, ...new Array(32).fill(0)]), 256);
    expect(out[0]).toBe(Math.fround(Math.fround(0.1) * 3));
    expect(out[0]).not.toBe(Math.fround(0.1) * 3); // the exact product is not an f32
  });
});
