/** Pieces of a streamed batch (src/experts/streaming-pieces.ts): runs of tokens whose experts fit the cache, and routing masked to one piece. */
import { describe, expect, it } from 'vitest';
import { maskRouting, planPieces } from '../../../src/experts/streaming-pieces';
import { MASKED_EXPERT_ID } from '../../../src/kernels/router';

const M = MASKED_EXPERT_ID;

describe('planPieces', () => {
  it('cuts the batch where the distinct experts would exceed the slots', () => {
    const ids = Uint32Array.of(0, 1, 1, 2, 3, 4);
    expect(planPieces(ids, 3, 2, 3)).toEqual([
      { tokens: [0, 1], experts: [0, 1, 1, 2] },
      { tokens: [2], experts: [3, 4] },
    ]);
  });

  it('asks no expert for pairs a routing knob skipped, so they take no slot', () => {
    const ids = Uint32Array.of(0, M, 1, M, 2, M);
    expect(planPieces(ids, 3, 2, 3)).toEqual([{ tokens: [0, 1, 2], experts: [0, 1, 2] }]);
  });
});

describe('maskRouting', () => {
  it('routes every token outside the piece nowhere: masked ids, zero weights', () => {
    const words = new Uint32Array(8);
    words.set([4, 5], 0);
    words.set([6, 7], 4);
    new Float32Array(words.buffer).set([0.5, 0.25], 2);
    const masked = maskRouting(words, 2, 2, [0]);
    expect([...masked.subarray(0, 2)]).toEqual([4, 5]);
    expect([...new Float32Array(masked.buffer, 8, 2)]).toEqual([0.5, 0.25]);
    expect([...masked.subarray(4)]).toEqual([M, M, 0, 0]);
  });
});
