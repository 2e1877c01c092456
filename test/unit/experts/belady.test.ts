/** Belady's MIN: textbook counts, exhaustive optimality on small cases, and an upper bound of every policy. */
import { describe, expect, it } from 'vitest';
import { beladyMin, nextUseIndices } from '../../../src/experts/analysis/belady';
import { createPolicy, POLICY_NAMES } from '../../../src/experts/policies';
import { mulberry32 } from '../../../src/quant/random';

const TWENTY_REFS = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
const BELADY_ANOMALY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];

function randomKeys(seed: number, length: number, alphabet: number): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length }, () => Math.floor(rng() * alphabet));
}

/** The most hits any eviction choice can get (every missing key admitted): search over cache states. */
function exhaustiveBestHits(keys: number[], capacity: number): number {
  const memo = new Map<string, number>();
  const best = (i: number, cache: number[]): number => {
    if (i === keys.length) return 0;
    const id = `${i}:${cache.join(',')}`;
    const known = memo.get(id);
    if (known !== undefined) return known;
    const key = keys[i];
    let result: number;
    if (cache.includes(key)) result = 1 + best(i + 1, cache);
    else if (cache.length < capacity) result = best(i + 1, [...cache, key].sort((a, b) => a - b));
    else result = Math.max(...cache.map((out) => best(i + 1, [...cache.filter((k) => k !== out), key].sort((a, b) => a - b))));
    memo.set(id, result);
    return result;
  };
  return capacity === 0 ? 0 : best(0, []);
}

describe('nextUseIndices', () => {
  it('gives the next position of the same key, Infinity after the last', () => {
    expect([...nextUseIndices([1, 2, 1, 3, 2])]).toEqual([2, 4, Infinity, Infinity, Infinity]);
  });
});

describe('beladyMin', () => {
  it('faults 9 times on the twenty-reference string with 3 slots', () => {
    expect(beladyMin(TWENTY_REFS, 3)).toEqual({ accesses: 20, hits: 11, misses: 9 });
  });

  it('faults 7 and 6 times on the anomaly string with 3 and 4 slots (no anomaly)', () => {
    expect(beladyMin(BELADY_ANOMALY, 3).misses).toBe(7);
    expect(beladyMin(BELADY_ANOMALY, 4).misses).toBe(6);
  });

  it('handles the edges: empty input, capacity 0, capacity above the key count', () => {
    expect(beladyMin([], 3)).toEqual({ accesses: 0, hits: 0, misses: 0 });
    expect(beladyMin([1, 1, 1], 0).hits).toBe(0);
    expect(beladyMin([1, 2, 1, 2], 10).hits).toBe(2);
    expect(() => beladyMin([1], 1.5)).toThrow(RangeError);
  });

  it('equals the exhaustive optimum on small random sequences', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const keys = randomKeys(seed, 14, 5);
      const capacity = 1 + (seed % 3);
      expect(beladyMin(keys, capacity).hits, `seed ${seed}`).toBe(exhaustiveBestHits(keys, capacity));
    }
  });

  it('hits at least as often as every policy on random sequences', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = mulberry32(1000 + seed);
      const alphabet = 4 + Math.floor(rng() * 40);
      const keys = randomKeys(seed, 1500, alphabet);
      const capacity = 1 + Math.floor(rng() * alphabet);
      const optimum = beladyMin(keys, capacity).hits;
      for (const name of POLICY_NAMES) {
        const policy = createPolicy(name, capacity, { halfLifeAccesses: 1 + seed * 10 });
        for (const k of keys) policy.access(k);
        expect(policy.hits, `${name}, seed ${seed}`).toBeLessThanOrEqual(optimum);
      }
    }
  });
});
