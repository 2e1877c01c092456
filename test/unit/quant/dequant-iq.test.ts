/**
 * The i-quant and ternary dequantisers reproduce llama.cpp's dequantize_row_*
 * bit for bit.
 *
 * fixtures/dequant-iq.json holds, per type, a few blocks and the f32 bits
 * llama.cpp's own dequantize_row_* produced for them: blocks of random bytes
 * (one with a subnormal f16 d, one with a negative d) and blocks made by
 * llama.cpp's quantize_* from rows of Gaussian values at several scales (a
 * row of zeros, a row with outliers, with and without an importance matrix),
 * under the "picked" key in that order. Equality is of bit patterns, so
 * signed zeros count.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../../src/quant/dequant';
import { iq1mScale } from '../../../src/quant/dequant-iq';
import { GgmlType, blockFormat } from '../../../src/quant/formats';
import { f32ToF16Bits } from '../../../src/quant/half';
import {
  IQ1S_GRID,
  IQ2S_GRID,
  IQ2XS_GRID,
  IQ2XXS_GRID,
  IQ3S_GRID,
  IQ3XXS_GRID,
  KSIGNS_IQ2XS,
  KVALUES_IQ4NL,
} from '../../../src/quant/iq-grids';

interface Fixture {
  picked: string;
  blocks: string;
  expected: string;
}

const FIXTURES = JSON.parse(readFileSync(new URL('./fixtures/dequant-iq.json', import.meta.url), 'utf8')) as Record<
  string,
  Fixture
>;

const TYPES = [
  GgmlType.IQ2_XXS,
  GgmlType.IQ2_XS,
  GgmlType.IQ2_S,
  GgmlType.IQ3_XXS,
  GgmlType.IQ3_S,
  GgmlType.IQ1_S,
  GgmlType.IQ1_M,
  GgmlType.IQ4_NL,
  GgmlType.IQ4_XS,
  GgmlType.TQ1_0,
  GgmlType.TQ2_0,
];

function base64Bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

describe('i-quant and ternary dequantisation against llama.cpp', () => {
  it.each(TYPES.map((t) => [GgmlType[t], t] as const))('%s: fixture blocks decode to the same bits', (name, type) => {
    const fixture = FIXTURES[name];
    expect(fixture, `fixture for ${name}`).toBeDefined();
    const blocks = base64Bytes(fixture.blocks);
    const expected = new Uint32Array(base64Bytes(fixture.expected).buffer);
    const { blockSize, blockBytes } = blockFormat(type)!;
    const picked = fixture.picked.split('; ');
    expect(blocks.length).toBe(picked.length * blockBytes);
    expect(expected.length).toBe(picked.length * blockSize);
    const actual = new Uint32Array(dequantize(type, blocks, expected.length).buffer);
    for (let b = 0; b < picked.length; b++) {
      const range = [b * blockSize, (b + 1) * blockSize] as const;
      expect([...actual.subarray(...range)], `block ${b} (${picked[b]})`).toEqual([...expected.subarray(...range)]);
    }
  });
});

describe('i-quant tables', () => {
  it('have ggml’s sizes', () => {
    expect([IQ2XXS_GRID, IQ2XS_GRID, IQ2S_GRID, IQ1S_GRID].map((g) => g.length / 2)).toEqual([256, 512, 1024, 2048]);
    expect([IQ3XXS_GRID.length, IQ3S_GRID.length, KSIGNS_IQ2XS.length, KVALUES_IQ4NL.length]).toEqual([256, 512, 128, 16]);
  });

  it('ksigns are the 7-bit index with its parity as bit 7', () => {
    KSIGNS_IQ2XS.forEach((signs, index) => {
      let parity = 0;
      for (let v = index; v; v >>= 1) parity ^= v & 1;
      expect(signs).toBe(index | (parity << 7));
    });
  });

  it('IQ2 grids hold only 8, 25 and 43; the IQ1 grid only -1, 0 and 1', () => {
    for (const grid of [IQ2XXS_GRID, IQ2XS_GRID, IQ2S_GRID]) {
      expect(new Set(new Uint8Array(Uint32Array.from(grid).buffer))).toEqual(new Set([8, 25, 43]));
    }
    expect(new Set(new Int8Array(Uint32Array.from(IQ1S_GRID).buffer))).toEqual(new Set([-1, 0, 1]));
  });
});

describe('hand-built blocks', () => {
  it('IQ4_NL: codes 0..15 with d = 1 decode to the levels, low nibbles first', () => {
    const block = new Uint8Array(18);
    block[1] = 0x3c; // d = 1
    for (let j = 0; j < 16; j++) block[2 + j] = j | ((15 - j) << 4);
    const values = dequantize(GgmlType.IQ4_NL, block, 32);
    expect([...values.subarray(0, 16)]).toEqual([...KVALUES_IQ4NL]);
    expect([...values.subarray(16)]).toEqual([...KVALUES_IQ4NL].reverse());
  });

  it('TQ2_0: codes 0, 1, 2 decode to -d, 0, d', () => {
    const block = new Uint8Array(66);
    block.fill(0b00_10_01_00, 0, 64); // bit pairs 0, 1, 2, 0
    block[64] = 0x00;
    block[65] = 0x40; // d = 2
    const values = dequantize(GgmlType.TQ2_0, block, 256);
    expect([...values.subarray(0, 4)]).toEqual([-2, -2, -2, -2]);
    expect(values[32]).toBe(0);
    expect(values[64]).toBe(2);
    expect(values[96]).toBe(-2);
  });

  it('TQ1_0: bytes packing trits 2, 1, 0, 2, 1 decode them in digit order', () => {
    const block = new Uint8Array(54);
    // 2*81 + 1*27 + 0*9 + 2*3 + 1 = 196; ceil(196 * 256 / 243) = 207.
    block.fill(207, 0, 48);
    block[53] = 0x3c; // d = 1
    const values = dequantize(GgmlType.TQ1_0, block, 256);
    expect([0, 32, 64, 96, 128].map((e) => values[e])).toEqual([1, 0, -1, 1, 0]);
    expect([160, 176, 192, 208, 224].map((e) => values[e])).toEqual([1, 0, -1, 1, 0]);
  });

  it('IQ1_M: d is assembled from the top nibbles of the four scale words', () => {
    const block = new Uint8Array(56);
    const bits = f32ToF16Bits(-0.375);
    for (let k = 0; k < 4; k++) block[48 + 2 * k + 1] = ((bits >> (4 * k)) & 0xf) << 4;
    expect(iq1mScale(block, 48)).toBe(-0.375);
  });
});
