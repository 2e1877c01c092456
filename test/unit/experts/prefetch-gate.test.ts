/**
 * Confidence-gated prefetch and the next-use policy: guesses below the
 * threshold are never loaded, a token's allowance caps its loads, and a
 * low-confidence guess never evicts an expert the policy rates as more
 * likely needed.
 */
import { describe, expect, it } from 'vitest';
import { simulateTrace } from '../../../src/experts/analysis/simulator';
import { NextUsePolicy } from '../../../src/experts/next-use-policy';
import { createPolicy } from '../../../src/experts/policies';
import { PrefetchGate } from '../../../src/experts/prefetch-gate';
import { AffinityPredictor, scoredPredictions, type ExpertPredictor } from '../../../src/experts/predictors';
import type { RoutingTrace } from '../../../src/experts/trace';

/** `nLayers` layers, 4 experts, top-1; token t routes `route(t, layer)`. */
function trace(nTokens: number, nLayers: number, route: (t: number, layer: number) => number): RoutingTrace {
  return {
    name: 'hand-made', nLayers, nExperts: 4, topK: 1,
    tokens: Array.from({ length: nTokens }, (_, t) => ({
      experts: Array.from({ length: nLayers }, (_, l) => [route(t, l)]),
      weights: Array.from({ length: nLayers }, () => [1]),
    })),
  };
}

/** Guesses expert 3 everywhere with a fixed confidence. */
const guessThree = (score: number): ExpertPredictor => ({
  name: 'three', begin() {}, observe() {}, predict: () => [3], predictScored: () => [{ expert: 3, score }],
});

describe('PrefetchGate', () => {
  it('passes only guesses at or above the threshold, best first', () => {
    const gate = new PrefetchGate({ minConfidence: 0.5 });
    expect(gate.confident([{ expert: 1, score: 0.9 }, { expert: 2, score: 0.5 }, { expert: 3, score: 0.49 }]).map((g) => g.expert)).toEqual([1, 2]);
    expect(() => new PrefetchGate({ minConfidence: 1.5 })).toThrow(RangeError);
  });

  it('allows at most maxLoadsPerToken loads until the next token', () => {
    const gate = new PrefetchGate({ maxLoadsPerToken: 2 });
    expect([gate.take(), gate.take(), gate.take()]).toEqual([true, true, false]);
    gate.refund();
    expect(gate.take()).toBe(true);
    gate.beginToken();
    expect(gate.loadsLeft).toBe(2);
  });

  it('scores a predictor without confidences as sure', () => {
    const plain: ExpertPredictor = { name: 'plain', begin() {}, observe() {}, predict: () => [2, 1] };
    expect(scoredPredictions(plain, { token: 0, layer: 0 }, { token: 0, layer: 1 }, 2)).toEqual([{ expert: 2, score: 1 }, { expert: 1, score: 1 }]);
  });
});

describe('the simulator with a gated predictor', () => {
  const t = trace(6, 2, (_, l) => l); // keys 0 and 5 every token; expert 3 is never routed

  it('fetches nothing below the threshold', () => {
    const r = simulateTrace(t, { capacity: 4, policy: (c) => createPolicy('lru', c), predictor: () => guessThree(0.3), gate: { minConfidence: 0.5 } });
    expect(r.prefetchLoads).toBe(0);
    const open = simulateTrace(t, { capacity: 4, policy: (c) => createPolicy('lru', c), predictor: () => guessThree(0.3) });
    expect(open.prefetchLoads).toBeGreaterThan(0);
  });

  it('loads at most the per-token allowance', () => {
    const cycle = trace(8, 2, (tok) => tok % 4); // a new key at every position
    const r = simulateTrace(cycle, { capacity: 2, policy: (c) => createPolicy('lru', c), predictor: () => guessThree(1), gate: { maxLoadsPerToken: 1 } });
    expect(r.prefetchLoads).toBeLessThanOrEqual(8);
    expect(r.prefetchLoads).toBeGreaterThan(0);
  });
});

describe('AffinityPredictor confidences', () => {
  it('scores a successor seen every time near 1 and one never seen not at all', () => {
    const t = trace(8, 2, (tok, l) => (tok % 2) + 2 * l); // layer 0 routes e, layer 1 routes e + 2
    const p = new AffinityPredictor(t, 1);
    p.begin(t);
    for (let tok = 0; tok < 6; tok++) for (let l = 0; l < 2; l++) p.observe(tok, l, t.tokens[tok].experts[l]);
    p.observe(6, 0, [0]);
    const [best, ...rest] = p.predictScored({ token: 6, layer: 0 }, { token: 6, layer: 1 }, 4);
    expect(best.expert).toBe(2);
    expect(best.score).toBeGreaterThan(0.9);
    expect(rest.every((g) => g.score < 0.1)).toBe(true);
  });
});

describe('NextUsePolicy', () => {
  const shape = { nLayers: 3, nExperts: 4, topK: 1, halfLifeAccesses: 1024 };
  const key = (layer: number, expert: number) => layer * 4 + expert;

  it('keeps the next layer\'s expert and evicts the one just used, where LRU does the opposite', () => {
    // Every token routes expert 0 at all three layers: a cycle of 3 keys through 2 slots.
    const routing = Array.from({ length: 10 }, () => [key(0, 0), key(1, 0), key(2, 0)]).flat();
    const nextUse = new NextUsePolicy(2, shape);
    const lru = createPolicy('lru', 2);
    for (const k of routing) {
      nextUse.access(k);
      lru.access(k);
    }
    expect(lru.hits).toBe(0); // the cycle pathology
    expect(nextUse.hits).toBeGreaterThan(routing.length / 3);
  });

  it('refuses a low-confidence prefetch that would evict a recently used expert', () => {
    const p = new NextUsePolicy(2, shape);
    for (let tok = 0; tok < 5; tok++) for (const k of [key(0, 1), key(1, 1)]) p.access(k);
    expect(p.size).toBe(2);
    // Layer 2's expert 3 has never been routed; a 5% guess does not displace experts used every token.
    expect(p.prefetch(key(2, 3), 0.05)).toEqual({ hit: false, admitted: false, evicted: undefined });
    expect(p.residentKeys()).toEqual([key(0, 1), key(1, 1)]);
  });

  it('admits a confident prefetch for the next layer over an expert used once long ago', () => {
    const p = new NextUsePolicy(2, shape);
    p.access(key(0, 1));
    for (let tok = 0; tok < 5; tok++) for (const k of [key(0, 2), key(1, 2)]) p.access(k);
    // key(0, 1) was evicted long ago; now the cache holds key(0, 2) and key(1, 2), both used every token.
    p.access(key(2, 0)); // layer 2 runs: its expert takes the slot of the one needed furthest ahead
    const r = p.prefetch(key(0, 3), 0.95); // a sure guess for layer 0 of the next token
    expect(r.admitted).toBe(true);
    expect(p.has(key(0, 3))).toBe(true);
  });

  it('never evicts pinned keys, and refuses when all are pinned', () => {
    const p = new NextUsePolicy(1, shape);
    p.pin([key(0, 0)]);
    expect(p.access(key(1, 0)).admitted).toBe(false);
    expect(p.prefetch(key(1, 1), 1).admitted).toBe(false);
    p.unpin([key(0, 0)]);
    expect(p.access(key(1, 0))).toMatchObject({ hit: false, admitted: true, evicted: key(0, 0) });
  });
});
