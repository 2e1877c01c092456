/** The CPU reference of the embedding lookup. */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { f32ToF16Bits } from '../../../src/quant/half';
import { embeddingLookup } from '../../../src/ref/embedding';

describe('embeddingLookup (CPU reference)', () => {
  const table = new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16).buffer); // 2 rows of 8

  it('gathers rows by id, repeats included', () => {
    expect([...embeddingLookup(GgmlType.F32, table, 2, 8, [1, 0, 1])]).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  });

  it('scales the rows and gives zeros for ids past the vocabulary', () => {
    expect([...embeddingLookup(GgmlType.F32, table, 2, 8, [2, 0], 0.5)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
  });

  it('dequantises quantised rows: a Q8_0 row is d * q', () => {
    const block = new Uint8Array(34);
    const d = f32ToF16Bits(0.5);
    block[0] = d & 0xff;
    block[1] = d >> 8;
    block[2] = 6; // q[0] = 6
    block[3] = 0xfe; // q[1] = -2
    expect([...embeddingLookup(GgmlType.Q8_0, block, 1, 32, [0]).subarray(0, 3)]).toEqual([3, -1, 0]);
  });

  it('rejects a table too small for the vocabulary', () => {
    expect(() => embeddingLookup(GgmlType.F32, table, 3, 8, [0])).toThrow(RangeError);
  });
});
