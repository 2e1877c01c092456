/** The CPU completion of sampling: decoding the GPU's top-k result, the top-k / top-p / min-p filters and the draw. */

import { describe, expect, it } from 'vitest';
import { decodeTopKResult, drawIndex, filterCandidates, sampleFromCandidates } from '../../../src/kernels/sampling';
import type { TopKCandidates } from '../../../src/kernels/sampling';

/** Candidates whose probabilities over the whole vocabulary are `probabilities` (descending), ids 10, 11, ... */
function candidatesWith(probabilities: number[]): TopKCandidates {
  return {
    ids: Uint32Array.from(probabilities, (_, i) => 10 + i),
    logits: Float32Array.from(probabilities, (p) => Math.log(p)),
    logSumExp: 0,
  };
}

function rounded(values: ArrayLike<number>): number[] {
  return Array.from(values, (v) => Number(v.toFixed(6)));
}

describe('decodeTopKResult', () => {
  it('reads the count, the log-sum-exp and (logit, id) pairs by rank', () => {
    const words = new Uint32Array(2 + 2 * 3);
    const floats = new Float32Array(words.buffer);
    words[0] = 2; // two candidates; the third slot is unused
    floats[1] = 7.5;
    floats[2] = 3.25;
    words[3] = 42;
    floats[4] = -1;
    words[5] = 7;
    expect(decodeTopKResult(words.buffer)).toEqual({ ids: Uint32Array.of(42, 7), logits: Float32Array.of(3.25, -1), logSumExp: 7.5 });
  });

  it('rejects a result shorter than its count says', () => {
    expect(() => decodeTopKResult(Uint32Array.of(3, 0, 0, 0))).toThrow(RangeError);
  });
});

describe('filterCandidates', () => {
  const candidates = candidatesWith([0.5, 0.2, 0.1, 0.05]); // 0.15 of the mass lies outside the list

  it('without filters keeps every candidate, renormalised', () => {
    expect(rounded(filterCandidates(candidates).probabilities)).toEqual(rounded([0.5 / 0.85, 0.2 / 0.85, 0.1 / 0.85, 0.05 / 0.85]));
  });

  it('top-p measures whole-vocabulary mass: keeps the shortest prefix reaching p', () => {
    const kept = filterCandidates(candidates, { topP: 0.69 });
    expect([...kept.ids]).toEqual([10, 11]);
    expect(rounded(kept.probabilities)).toEqual(rounded([5 / 7, 2 / 7]));
    expect([...filterCandidates(candidates, { topP: 0.71 }).ids]).toEqual([10, 11, 12]);
  });

  it('always keeps at least the best candidate', () => {
    expect([...filterCandidates(candidates, { topP: 0.01 }).ids]).toEqual([10]);
  });

  it('keeps the whole list when the nucleus is longer than the list', () => {
    expect([...filterCandidates(candidates, { topP: 0.95 }).ids]).toEqual([10, 11, 12, 13]);
  });

  it('after top-k, top-p measures mass among the k kept', () => {
    // Over the first two, probabilities are 5/7 (0.714) and 2/7.
    expect([...filterCandidates(candidates, { topK: 2, topP: 0.7 }).ids]).toEqual([10]);
    expect([...filterCandidates(candidates, { topK: 2, topP: 0.72 }).ids]).toEqual([10, 11]);
  });

  it('min-p drops candidates below minP times the best probability', () => {
    expect([...filterCandidates(candidates, { minP: 0.19 }).ids]).toEqual([10, 11, 12]);
    expect([...filterCandidates(candidates, { minP: 0.21 }).ids]).toEqual([10, 11]);
  });

  it('applies top-k, then top-p, then min-p', () => {
    expect([...filterCandidates(candidates, { topK: 3, topP: 0.9, minP: 0.3 }).ids]).toEqual([10, 11]);
  });

  it('rejects out-of-range parameters', () => {
    expect(() => filterCandidates(candidates, { topP: 0 })).toThrow(RangeError);
    expect(() => filterCandidates(candidates, { minP: 1.5 })).toThrow(RangeError);
    expect(() => filterCandidates(candidates, { topK: -1 })).toThrow(RangeError);
  });
});

describe('drawIndex and sampleFromCandidates', () => {
  it('draws the first index whose cumulative probability exceeds u', () => {
    const p = [0.25, 0.5, 0.25];
    expect([0, 0.2499, 0.25, 0.74, 0.75, 0.9999].map((u) => drawIndex(p, u))).toEqual([0, 0, 1, 1, 2, 2]);
  });

  it('falls back to the last index when rounding leaves the total below 1', () => {
    expect(drawIndex([0.3, 0.3, 0.3999999], 0.99999999)).toBe(2);
  });

  it('samples an id among those the filters keep, with their frequencies', () => {
    const candidates = candidatesWith([0.5, 0.3, 0.2]);
    const counts = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const id = sampleFromCandidates(candidates, { topP: 0.79 }, (i + 0.5) / 1000);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    // top-p 0.79 keeps 0.5 and 0.3: shares 5/8 and 3/8.
    expect(Object.fromEntries(counts)).toEqual({ 10: 625, 11: 375 });
  });

  it('rejects u outside [0, 1)', () => {
    expect(() => drawIndex([1], 1)).toThrow(RangeError);
  });
});
