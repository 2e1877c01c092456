/** The trace simulator on hand-made traces, and cache budgets. */
import { describe, expect, it } from 'vitest';
import { beladyMin } from '../../../src/experts/analysis/belady';
import { budgetSlots, parseBudget } from '../../../src/experts/analysis/budget';
import { createPolicy } from '../../../src/experts/policies';
import { OraclePredictor, type ExpertPredictor } from '../../../src/experts/predictors';
import { simulate, simulateTrace } from '../../../src/experts/analysis/simulator';
import { accessSequence, type RoutingTrace } from '../../../src/experts/trace';

/** 2 layers, 4 experts, top-1; token t routes expert `route(t, layer)` at each layer. */
function trace(nTokens: number, route: (t: number, layer: number) => number): RoutingTrace {
  return {
    name: 'hand-made', nLayers: 2, nExperts: 4, topK: 1,
    tokens: Array.from({ length: nTokens }, (_, t) => ({ experts: [[route(t, 0)], [route(t, 1)]], weights: [[1], [1]] })),
  };
}

const lru = (c: number) => createPolicy('lru', c);

/** Always predicts expert 3, whatever the layer. */
const alwaysThree = (): ExpertPredictor => ({ name: 'three', begin() {}, observe() {}, predict: () => [3] });

describe('simulateTrace without prefetch', () => {
  it('counts the policy\'s hits and misses and Belady\'s for the same capacity', () => {
    const t = trace(3, (_, l) => l); // keys 0, 5, 0, 5, 0, 5
    const r = simulateTrace(t, { capacity: 2, policy: lru });
    expect(r).toMatchObject({ tokens: 3, accesses: 6, hits: 4, misses: 2, prefetchLoads: 0, evictions: 0 });
    expect(r.belady).toEqual({ hits: 4, misses: 2, hitRate: 4 / 6 });
    const tight = simulateTrace(t, { capacity: 1, policy: lru });
    expect(tight.hits).toBe(0);
    expect(tight.evictions).toBe(5);
  });

  it('reports Belady over the same access sequence', () => {
    const t = trace(50, (i, l) => (i * 7 + l * 3 + (i >> 2)) % 4);
    const r = simulateTrace(t, { capacity: 3, policy: lru });
    expect(r.belady!.hits).toBe(beladyMin(accessSequence(t), 3).hits);
    expect(r.belady!.hits).toBeGreaterThanOrEqual(r.hits);
  });
});

describe('simulateTrace with a host tier', () => {
  // 8 keys in a cycle: every access misses 2 GPU slots.
  const cycle = trace(10, (t) => t % 4);

  it('serves GPU loads from host memory once it holds them, least recently used first out', () => {
    expect(simulateTrace(cycle, { capacity: 2, policy: lru })).toMatchObject({ misses: 20, hostHits: 0, storeReads: 20 });
    expect(simulateTrace(cycle, { capacity: 2, policy: lru, hostCapacity: 8 })).toMatchObject({ misses: 20, hostHits: 12, storeReads: 8 });
    // Half the cycle in LRU order: each record is dropped just before it comes round again.
    expect(simulateTrace(cycle, { capacity: 2, policy: lru, hostCapacity: 4 })).toMatchObject({ hostHits: 0, storeReads: 20 });
  });

  it('warms the next positions\' guesses into host memory without GPU slots, and reports the tiers per token', () => {
    const options = { capacity: 2, policy: lru, predictor: () => new OraclePredictor(), gate: { maxLoadsPerToken: 0 }, hostCapacity: 8 };
    const r = simulateTrace(cycle, { ...options, hostWarm: { lookahead: 1, minConfidence: 0 } });
    // The GPU loads nothing ahead (no allowance): every access misses, and each after the first finds its record warmed.
    expect(r).toMatchObject({ misses: 20, prefetchLoads: 0, hostHits: 19, storeReads: 8, hostWarmReads: 7 });
    const report = simulate([cycle], { ...options, hostWarm: { lookahead: 1, minConfidence: 0 }, expertBytes: 100 });
    expect(report).toMatchObject({ hostCapacity: 8, hostHitRate: 19 / 20, storeReadsPerToken: 0.8, storeBytesPerToken: 80 });
    expect(simulate([cycle], { ...options, expertBytes: 100 })).toMatchObject({ hostHitRate: 12 / 20, storeReadsPerToken: 0.8 });
  });
});

describe('simulateTrace with prefetch', () => {
  // Token t routes expert t % 4 at both layers: 8 keys in a cycle, far beyond 2 slots.
  const cycle = trace(10, (t) => t % 4);

  it('with the oracle misses only the very first access', () => {
    expect(simulateTrace(cycle, { capacity: 2, policy: lru }).hits).toBe(0);
    const r = simulateTrace(cycle, { capacity: 2, policy: lru, predictor: () => new OraclePredictor(), lookahead: 1 });
    expect(r).toMatchObject({ accesses: 20, hits: 19, misses: 1, prefetchLoads: 19, prefetchUsed: 19 });
    expect(r.predictor).toBe('oracle');
  });

  it('counts wasted prefetches: loaded, never used', () => {
    const t = trace(2, (_, l) => l); // keys 0, 5, 0, 5
    const r = simulateTrace(t, { capacity: 4, policy: lru, predictor: alwaysThree });
    // (0,0): miss 0, prefetch key 7. (0,1): miss 5, prefetch key 3. Then 0 and 5 hit; 7 is refreshed, not reloaded.
    expect(r).toMatchObject({ hits: 2, misses: 2, prefetchLoads: 2, prefetchUsed: 0 });
  });

  it('never lets a prefetch evict the experts of the layer in flight', () => {
    const t = trace(1, () => 0); // key 0, then key 4
    const r = simulateTrace(t, { capacity: 1, policy: lru, predictor: () => new OraclePredictor() });
    // at (0,0) the single slot holds key 0, so the prefetch of key 4 finds no room
    expect(r).toMatchObject({ misses: 2, prefetchLoads: 0 });
  });
});

describe('simulate', () => {
  it('replays each trace from a cold cache and pools the counts', () => {
    const t = trace(3, (_, l) => l);
    const one = simulate([t], { capacity: 2, policy: lru, expertBytes: 100 });
    const two = simulate([t, t], { capacity: 2, policy: lru, expertBytes: 100 });
    expect(two.hits).toBe(2 * one.hits);
    expect(two.misses).toBe(2 * one.misses);
    expect(two.hitRate).toBe(one.hitRate);
    expect(two.belady!.hits).toBe(2 * one.belady!.hits);
    expect(two.bytesMoved).toBe(2 * 2 * 100);
    expect(two.traces).toHaveLength(2);
    expect(two).toMatchObject({ capacity: 2, totalExperts: 8, policy: 'lru', predictor: undefined });
  });

  it('computes precision and recall of prefetch, and bytes moved by every load', () => {
    const t = trace(2, (_, l) => l);
    const r = simulate([t], { capacity: 4, policy: lru, predictor: alwaysThree, expertBytes: 10 });
    expect(r.precision).toBe(0);
    expect(r.recall).toBe(0);
    expect(r.bytesMoved).toBe(40);
    const o = simulate([trace(10, (i) => i % 4)], { capacity: 2, policy: lru, predictor: () => new OraclePredictor() });
    expect(o.precision).toBe(1);
    expect(o.recall).toBe(19 / 20);
  });

  it('loads pinned experts at the start of each trace and keeps them', () => {
    const t = trace(4, (i, l) => (l === 0 ? 1 : i % 4)); // layer 0 always routes expert 1
    const r = simulate([t, t], { capacity: 2, policy: lru, pinned: [1], expertBytes: 1 });
    expect(r.pinLoads).toBe(2);
    expect(r.hits).toBe(8); // every layer-0 access; layer 1 cycles through 4 keys in one free slot
    expect(r.bytesMoved).toBe(r.misses + 2);
  });

  it('refuses traces of different shapes', () => {
    const other = { ...trace(1, () => 0), nExperts: 8 };
    expect(() => simulate([trace(1, () => 0), other], { capacity: 1, policy: lru })).toThrow(/different model shapes/);
  });
});

describe('budgets', () => {
  it('parse fractions, percentages and sizes', () => {
    expect(parseBudget('0.25')).toEqual({ kind: 'fraction', fraction: 0.25 });
    expect(parseBudget('12.5%')).toEqual({ kind: 'fraction', fraction: 0.125 });
    expect(parseBudget('512MB')).toEqual({ kind: 'bytes', bytes: 512e6 });
    expect(parseBudget('2GiB')).toEqual({ kind: 'bytes', bytes: 2 * 1024 ** 3 });
    expect(parseBudget('1.5 gb')).toEqual({ kind: 'bytes', bytes: 1.5e9 });
    expect(() => parseBudget('2')).toThrow(/exceeds all experts/);
    expect(() => parseBudget('lots')).toThrow(/neither a fraction/);
  });

  it('become whole slots, rounded down', () => {
    expect(budgetSlots(parseBudget('12.5%'), 256)).toBe(32);
    expect(budgetSlots(parseBudget('0.25'), 768)).toBe(192);
    expect(budgetSlots(parseBudget('0.3'), 10)).toBe(3);
    expect(budgetSlots(parseBudget('512MB'), 768, 100e6)).toBe(5);
    expect(budgetSlots(parseBudget('1TB'), 768, 100e6)).toBe(768);
    expect(() => budgetSlots(parseBudget('512MB'), 768)).toThrow(/needs the size of one expert/);
  });
});
