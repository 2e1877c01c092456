/** The CPU reference of MoE routing, on cases small enough to work out by hand. */

import { describe, expect, it } from 'vitest';
import { MASKED_ID, MIN_WEIGHT_SUM, keptPairs, routerLogits, routeTokens, selectTopK, sharedExpertGate, sigmoid } from '../../../src/ref/router';

const round6 = (values: ArrayLike<number>): number[] => Array.from(values, (v) => Number(v.toFixed(6)));

describe('routerLogits', () => {
  it('takes the dot product of each expert row with each token, plus the logit bias', () => {
    // W [3 experts, 2 hidden]; x [2 tokens, 2 hidden].
    const weight = Float32Array.of(1, 0, 0, 1, 1, -1);
    const x = Float32Array.of(2, 3, -1, 4);
    expect([...routerLogits(x, 2, 2, weight, 3)]).toEqual([2, 3, -1, -1, 4, -5]);
    expect([...routerLogits(x, 2, 2, weight, 3, Float32Array.of(10, 20, 30))]).toEqual([12, 23, 29, 9, 24, 25]);
  });

  it('rejects arrays that do not match the shape', () => {
    expect(() => routerLogits(new Float32Array(3), 1, 2, new Float32Array(6), 3)).toThrow(RangeError);
    expect(() => routerLogits(new Float32Array(2), 1, 2, new Float32Array(5), 3)).toThrow(RangeError);
  });
});

describe('selectTopK', () => {
  it('returns the highest scores first and breaks ties by the lower index', () => {
    expect(selectTopK([1, 3, 2, 3, 0], 3)).toEqual([1, 3, 2]);
    expect(selectTopK([5, 5, 5, 5], 4)).toEqual([0, 1, 2, 3]);
  });

  it('never prefers a NaN score, but takes one when nothing else is left', () => {
    expect(selectTopK([NaN, 1, NaN, 2], 3)).toEqual([3, 1, 0]);
  });

  it('orders -Infinity below every finite score', () => {
    expect(selectTopK([-Infinity, -1e30, 0], 2)).toEqual([2, 1]);
  });
});

describe('routeTokens', () => {
  const logits = Float32Array.of(1, 3, 2, 3); // one token, four experts

  it('softmax-selected (Mixtral, gpt-oss): softmax over the k chosen logits only', () => {
    const r = routeTokens(logits, 1, 4, { topK: 2, scoring: 'softmax-selected', normalize: false });
    expect([...r.ids]).toEqual([1, 3]);
    expect([...r.weights]).toEqual([0.5, 0.5]);
    const three = routeTokens(logits, 1, 4, { topK: 3, scoring: 'softmax-selected', normalize: false });
    const e = Math.exp(-1);
    expect(round6(three.weights)).toEqual(round6([1 / (2 + e), 1 / (2 + e), e / (2 + e)]));
  });

  it('softmax without renormalisation (qwen2moe, OLMoE): the weights are the full-softmax probabilities', () => {
    const r = routeTokens(logits, 1, 4, { topK: 2, scoring: 'softmax', normalize: false });
    const z = Math.exp(1) + 2 * Math.exp(3) + Math.exp(2);
    expect([...r.ids]).toEqual([1, 3]);
    expect(round6(r.weights)).toEqual(round6([Math.exp(3) / z, Math.exp(3) / z]));
  });

  it('softmax with renormalisation (qwen3moe): the k weights sum to 1', () => {
    const r = routeTokens(Float32Array.of(0.5, -1, 2, 1), 1, 4, { topK: 3, scoring: 'softmax', normalize: true });
    expect([...r.ids]).toEqual([2, 3, 0]);
    expect(r.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(r.weights[0] / r.weights[1]).toBeCloseTo(Math.exp(1), 5);
  });

  it('sigmoid with a selection bias (DeepSeek-V3): the bias changes the choice, not the weights', () => {
    const sigmoidLogits = Float32Array.of(2, 1, 0, -1);
    const selectionBias = Float32Array.of(0, 0, 0.9, 0);
    const unbiased = routeTokens(sigmoidLogits, 1, 4, { topK: 2, scoring: 'sigmoid', normalize: false });
    expect([...unbiased.ids]).toEqual([0, 1]);
    const biased = routeTokens(sigmoidLogits, 1, 4, { topK: 2, scoring: 'sigmoid', normalize: false, selectionBias });
    // sigmoid(0) + 0.9 = 1.4 beats sigmoid(2) = 0.88.
    expect([...biased.ids]).toEqual([2, 0]);
    expect(round6(biased.weights)).toEqual(round6([0.5, sigmoid(2)]));
    const normalised = routeTokens(sigmoidLogits, 1, 4, {
      topK: 2,
      scoring: 'sigmoid',
      normalize: true,
      selectionBias,
      weightScale: 2.5,
    });
    const sum = 0.5 + sigmoid(2);
    expect(round6(normalised.weights)).toEqual(round6([(2.5 * 0.5) / sum, (2.5 * sigmoid(2)) / sum]));
  });

  it('divides by at least MIN_WEIGHT_SUM when normalising tiny weights', () => {
    const r = routeTokens(Float32Array.of(-20, -30), 1, 2, { topK: 1, scoring: 'sigmoid', normalize: true });
    expect(r.weights[0] / (sigmoid(-20) / MIN_WEIGHT_SUM)).toBeCloseTo(1, 6);
  });

  it('routes every token on its own row, token-major', () => {
    const twoTokens = Float32Array.of(0, 1, 2, 2, 1, 0);
    const r = routeTokens(twoTokens, 2, 3, { topK: 1, scoring: 'softmax-selected', normalize: false });
    expect([...r.ids]).toEqual([2, 0]);
    expect([...r.weights]).toEqual([1, 1]);
  });

  it('treats ids past the real experts (null experts) like any other', () => {
    const r = routeTokens(Float32Array.of(0, 0, 5), 1, 3, { topK: 2, scoring: 'softmax', normalize: true });
    expect([...r.ids]).toEqual([2, 0]);
    expect(r.weights[0] + r.weights[1]).toBeCloseTo(1, 6);
  });

  it('rejects k outside 1..E and mismatched arrays', () => {
    expect(() => routeTokens(logits, 1, 4, { topK: 0, scoring: 'softmax', normalize: false })).toThrow(RangeError);
    expect(() => routeTokens(logits, 1, 4, { topK: 5, scoring: 'softmax', normalize: false })).toThrow(RangeError);
    expect(() => routeTokens(logits, 2, 4, { topK: 1, scoring: 'softmax', normalize: false })).toThrow(RangeError);
    expect(() =>
      routeTokens(logits, 1, 4, { topK: 1, scoring: 'sigmoid', normalize: false, selectionBias: new Float32Array(3) }),
    ).toThrow(RangeError);
  });
});

describe('routing knobs', () => {
  // f32 weights by rank, as they leave step 5 (not sorted: a selection bias can order experts otherwise).
  const weights = [0.25, 0.5, 0.15, 0.1].map(Math.fround);

  it('keep every pair when off, whatever the weights', () => {
    expect(keptPairs(weights, undefined)).toEqual([true, true, true, true]);
    expect(keptPairs(weights, { minExpertWeight: 0, topP: 1 })).toEqual([true, true, true, true]);
    expect(keptPairs([0, 0], {})).toEqual([true, true]);
  });

  it('minExpertWeight drops the experts below it, never the heaviest', () => {
    expect(keptPairs(weights, { minExpertWeight: 0.15 })).toEqual([true, true, true, false]);
    expect(keptPairs(weights, { minExpertWeight: 0.3 })).toEqual([false, true, false, false]);
    expect(keptPairs(weights, { minExpertWeight: 0.9 })).toEqual([false, true, false, false]);
  });

  it('topP keeps the fewest experts, heaviest first, whose weights reach p of their sum', () => {
    expect(keptPairs(weights, { topP: 0.5 })).toEqual([false, true, false, false]);
    expect(keptPairs(weights, { topP: 0.7 })).toEqual([true, true, false, false]);
    expect(keptPairs(weights, { topP: 0.8 })).toEqual([true, true, true, false]);
    // p of the k weights' sum, not of 1: un-normalised weights (qwen2moe, OLMoE) summing to 0.5 here.
    expect(keptPairs([0.3, 0.2], { topP: 0.6 })).toEqual([true, false]);
    expect(keptPairs([0.3, 0.2], { topP: 0.61 })).toEqual([true, true]);
  });

  it('topP breaks equal weights by the lower rank, and with a threshold keeps what both keep', () => {
    expect(keptPairs([0.25, 0.25, 0.25, 0.25], { topP: 0.5 })).toEqual([true, true, false, false]);
    expect(keptPairs(weights, { topP: 0.8, minExpertWeight: 0.2 })).toEqual([true, true, false, false]);
  });

  it('write a skipped pair as MASKED_ID with weight 0 and leave the kept weights as they were (no renormalisation)', () => {
    // Probabilities of softmax over [3, 2, 1, 0] are 0.644, 0.237, 0.087, 0.032.
    const row = Float32Array.of(3, 2, 1, 0);
    const base = { topK: 3, scoring: 'softmax' as const, normalize: false };
    const all = routeTokens(row, 1, 4, base);
    const skipped = routeTokens(row, 1, 4, { ...base, knobs: { minExpertWeight: 0.1 } });
    expect([...skipped.ids]).toEqual([0, 1, MASKED_ID]);
    expect([...skipped.weights]).toEqual([all.weights[0], all.weights[1], 0]);
    const nucleus = routeTokens(row, 1, 4, { ...base, knobs: { topP: 0.6 } }); // 0.644 / 0.968 = 0.665 of the sum
    expect([...nucleus.ids]).toEqual([0, MASKED_ID, MASKED_ID]);
    expect(nucleus.weights[0]).toBe(all.weights[0]);
  });

  it('look at the weights before the constant scale', () => {
    const row = Float32Array.of(2, 0);
    const options = { topK: 2, scoring: 'sigmoid' as const, normalize: true, knobs: { minExpertWeight: 0.2 } };
    // Normalised sigmoids: 0.88 / 1.38 = 0.64 and 0.5 / 1.38 = 0.36; scaled by 0.25 both fall below 0.2, yet both stay.
    expect([...routeTokens(row, 1, 2, { ...options, weightScale: 0.25 }).ids]).toEqual([0, 1]);
    expect([...routeTokens(row, 1, 2, { ...options, knobs: { minExpertWeight: 0.4 } }).ids]).toEqual([0, MASKED_ID]);
  });
});

describe('sharedExpertGate', () => {
  it('is the sigmoid of the gate row times each token', () => {
    const gates = sharedExpertGate(Float32Array.of(1, 2, 0, 0), 2, 2, Float32Array.of(0.5, -1));
    expect(round6(gates)).toEqual(round6([sigmoid(-1.5), 0.5]));
  });
});
