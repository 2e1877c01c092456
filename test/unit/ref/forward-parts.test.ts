/**
 * The parts of the CPU reference forward pass, on values worked out by hand:
 * routing policies and near-tie margins, RoPE layouts and scaling, the
 * emulation of llama.cpp's activation rounding, and the logits comparison.
 */
import { describe, expect, it } from 'vitest';
import type { RopeConfig, RoutingPolicy } from '../../../src/models/config';
import { GgmlType } from '../../../src/quant/formats';
import { compareLogits, comparePosition } from '../../../src/ref/forward-compare';
import { matVec, rmsNormInPlace } from '../../../src/ref/forward-ops';
import { applyRope, ropeCache, ropeParams } from '../../../src/ref/forward-rope';
import { inputRoundingFor, roundInput } from '../../../src/ref/forward-rounding';
import { firstNearTie, route, type RouteStep } from '../../../src/ref/forward-routing';

const policy = (over: Partial<RoutingPolicy> = {}): RoutingPolicy => ({
  scoring: 'softmax', topK: 2, normalize: false, weightsScale: 1, sharedExpertGate: 'none', ...over,
});

describe('route', () => {
  const logits = Float32Array.of(1, 3, 2, 0);
  const expSum = Math.exp(1) + Math.exp(3) + Math.exp(2) + Math.exp(0);

  it('picks the top-k experts by router logit, best first', () => {
    expect(route(logits, policy()).experts).toEqual([1, 2]);
    expect(route(logits, policy({ topK: 3 })).experts).toEqual([1, 2, 0]);
  });

  it('without renormalisation, weights are the softmax over all experts (Qwen2-MoE, OLMoE)', () => {
    const { weights } = route(logits, policy());
    expect(weights[0]).toBeCloseTo(Math.exp(3) / expSum, 6);
    expect(weights[1]).toBeCloseTo(Math.exp(2) / expSum, 6);
  });

  it('with renormalisation, weights are the softmax over the chosen logits (Mixtral, Qwen3-MoE)', () => {
    const { weights } = route(logits, policy({ normalize: true }));
    expect(weights[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
    expect(weights[1]).toBeCloseTo(1 / (1 + Math.exp(1)), 6);
  });

  it('scales the weights after normalisation', () => {
    const { weights } = route(logits, policy({ normalize: true, weightsScale: 2.5 }));
    expect(weights[0] + weights[1]).toBeCloseTo(2.5, 6);
  });

  it('measures the margin between the k-th and the (k+1)-th logit, absolute and relative to the largest |logit|', () => {
    const step = route(logits, policy());
    expect(step.margin).toBe(1); // 2 (chosen) - 1 (best not chosen)
    expect(step.relativeMargin).toBeCloseTo(1 / 3, 6);
    expect(route(Float32Array.of(-4, 2, 1.5), policy({ topK: 1 })).relativeMargin).toBeCloseTo(0.5 / 4, 6);
  });

  it('has no margin to report when every expert is chosen', () => {
    expect(route(logits, policy({ topK: 4 })).margin).toBe(Infinity);
  });

  it('breaks exact ties toward the lower expert index, with a zero margin', () => {
    const step = route(Float32Array.of(0.5, 2, 0.5, 2), policy());
    expect(step.experts).toEqual([1, 3]);
    expect(route(Float32Array.of(0.5, 2, 0.5, 2), policy({ topK: 3 })).experts).toEqual([1, 3, 0]);
    expect(route(Float32Array.of(1, 1, 1), policy({ topK: 1 })).margin).toBe(0);
  });
});

describe('firstNearTie', () => {
  const step = (relativeMargin: number): RouteStep => ({ experts: [0], weights: [1], margin: relativeMargin, relativeMargin });

  it('finds the earliest position, over all layers, whose relative margin is below the threshold', () => {
    const trace = [
      [step(1), step(1), step(1), step(1e-6)],
      [step(1), step(1), step(5e-5), step(1)],
    ];
    expect(firstNearTie(trace, 1e-4)).toBe(2);
    expect(firstNearTie(trace, 1e-5)).toBe(3);
    expect(firstNearTie(trace, 1e-7)).toBeUndefined();
  });

  it('ignores dense layers (empty entries)', () => {
    expect(firstNearTie([[], [step(1), step(0)]], 1e-4)).toBe(1);
  });
});

const rope = (over: Partial<RopeConfig> = {}): RopeConfig => ({
  kind: 'normal', dims: 4, freqBase: 10000, scalingType: 'linear', scalingFactor: 1, originalContextLength: 512, attnFactor: 1,
  yarn: { attnFactor: 1, betaFast: 32, betaSlow: 1, logMultiplier: 0 }, ...over,
});

describe('RoPE', () => {
  it('leaves position 0 unrotated', () => {
    const x = Float32Array.of(1, 2, 3, 4);
    applyRope(x, 1, 4, ropeCache(ropeParams(rope()), 0), 'normal');
    expect([...x]).toEqual([1, 2, 3, 4]);
  });

  it('NORM rotates adjacent pairs (0,1), (2,3) by pos * base^(-2i/dims)', () => {
    const x = Float32Array.of(1, 0, 1, 0);
    applyRope(x, 1, 4, ropeCache(ropeParams(rope()), 3), 'normal');
    // Pair 0 turns by 3 rad, pair 1 by 3 * 10000^(-1/2) = 0.03 rad.
    expect([...x].map((v) => Number(v.toFixed(5)))).toEqual([Math.cos(3), Math.sin(3), Math.cos(0.03), Math.sin(0.03)].map((v) => Number(v.toFixed(5))));
  });

  it('NEOX rotates pairs (i, i + dims/2)', () => {
    const x = Float32Array.of(1, 1, 0, 0);
    applyRope(x, 1, 4, ropeCache(ropeParams(rope({ kind: 'neox' })), 3), 'neox');
    expect([...x].map((v) => Number(v.toFixed(5)))).toEqual([Math.cos(3), Math.cos(0.03), Math.sin(3), Math.sin(0.03)].map((v) => Number(v.toFixed(5))));
  });

  it('rotates each head of a multi-head vector the same way', () => {
    const x = Float32Array.of(1, 0, 0, 1, 1, 0, 0, 1);
    applyRope(x, 2, 4, ropeCache(ropeParams(rope()), 5), 'normal');
    expect([...x.subarray(0, 4)]).toEqual([...x.subarray(4, 8)]);
  });

  it('linear scaling divides positions by the factor', () => {
    const scaled = ropeCache(ropeParams(rope({ scalingFactor: 4 })), 8);
    const plain = ropeCache(ropeParams(rope()), 2);
    expect(scaled[0]).toBeCloseTo(plain[0], 6);
    expect(scaled[1]).toBeCloseTo(plain[1], 6);
  });

  it('scaling type none ignores the factor', () => {
    expect(ropeParams(rope({ scalingType: 'none', scalingFactor: 4 })).freqScale).toBe(1);
  });

  it('YaRN extrapolates and scales the rotation magnitude by 1 + 0.1 ln(factor)', () => {
    const p = ropeParams(rope({ scalingType: 'yarn', scalingFactor: 4, dims: 64 }));
    expect(p.extFactor).toBe(1);
    const cache = ropeCache({ ...p }, 7);
    const magnitude = Math.hypot(cache[0], cache[1]);
    expect(magnitude).toBeCloseTo(1 + 0.1 * Math.log(4), 5);
    // The fastest-turning pair is extrapolated (unscaled): it turns by the full position.
    expect(Math.atan2(cache[1], cache[0])).toBeCloseTo(7 - 2 * Math.PI, 4);
  });

  it('refuses longrope, which it does not implement', () => {
    expect(() => ropeParams(rope({ scalingType: 'longrope' }))).toThrow(/longrope/);
  });
});

describe("emulation of llama.cpp's activation rounding", () => {
  it('pairs each weight type with the format llama.cpp converts activations to', () => {
    expect(inputRoundingFor(GgmlType.F32)).toBe('none');
    expect(inputRoundingFor(GgmlType.F16)).toBe('f16');
    expect(inputRoundingFor(GgmlType.BF16)).toBe('bf16');
    for (const t of [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.MXFP4]) expect(inputRoundingFor(t)).toBe('q8_0');
    for (const t of [GgmlType.Q4_K, GgmlType.Q6_K]) expect(inputRoundingFor(t)).toBe('q8_k');
  });

  it('none returns the input itself', () => {
    const x = Float32Array.of(0.1, 0.2);
    expect(roundInput(x, 'none')).toBe(x);
  });

  it('f16 rounds each value to the nearest half-precision number', () => {
    expect([...roundInput(Float32Array.of(1 + 2 ** -12, 1 + 3 * 2 ** -11, 65504), 'f16')]).toEqual([1, 1 + 2 ** -9, 65504]);
  });

  it('q8_0 rounds blocks of 32 to multiples of amax/127, ties to even', () => {
    const x = new Float32Array(64);
    x.set([127, 2.5, 3.5, -2.5, 0.4, -126.6]);
    x.set([254, 1], 32); // second block: step 2
    const y = roundInput(x, 'q8_0');
    expect([...y.subarray(0, 6)]).toEqual([127, 2, 4, -2, 0, -127]);
    expect([...y.subarray(32, 34)]).toEqual([254, 0]); // 1/2 = 0.5 rounds to 0
  });

  it('q8_0 keeps the f16-rounded scale', () => {
    const x = new Float32Array(32);
    x[0] = 1; // scale 1/127 is stored as f16
    x[1] = 1 / 127;
    const y = roundInput(x, 'q8_0');
    const d = y[1];
    expect(d).not.toBe(Math.fround(1 / 127));
    expect(Math.abs(d - 1 / 127)).toBeLessThan(1e-5);
  });

  it('q8_k rounds blocks of 256 with the scale of the largest-magnitude value, whatever its sign', () => {
    const x = new Float32Array(256);
    x.set([-127, 2.5, 3.5, 100.2]);
    expect([...roundInput(x, 'q8_k').subarray(0, 4)]).toEqual([-127, 2, 4, 100]);
    expect([...roundInput(new Float32Array(256), 'q8_k').subarray(0, 2)]).toEqual([0, 0]);
  });

  it('refuses inputs that are not whole blocks', () => {
    expect(() => roundInput(new Float32Array(40), 'q8_0')).toThrow(RangeError);
  });
});

describe('numeric steps', () => {
  it('matVec multiplies the (rows, cols) matrix found at an offset', () => {
    const w = Float32Array.of(9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    const out = new Float32Array(2);
    matVec(out, w, Float32Array.of(1, 1, 1, 1, 1), 2, 5, 2);
    expect([...out]).toEqual([1 + 2 + 3 + 4 + 5, 6 + 7 + 8 + 9 + 10]);
  });

  it('rmsNormInPlace normalises each of several vectors on its own', () => {
    const x = Float32Array.of(3, 4, 1, 1);
    rmsNormInPlace(x, Float32Array.of(1, 2), 2, 2, 0);
    expect([...x].map((v) => Number(v.toFixed(6)))).toEqual([0.848528, 2.262742, 1, 2]);
  });
});

describe('logits comparison', () => {
  it('divides the largest difference by the spread of the reference row', () => {
    const p = comparePosition(Float32Array.of(0, 1.5, 4), Float32Array.of(0, 1, 4));
    expect(p.relativeDiff).toBeCloseTo(0.5 / 4, 9);
    expect(p.top1Agrees).toBe(true);
  });

  it('counts a NaN as an infinite difference', () => {
    expect(comparePosition(Float32Array.of(Number.NaN, 1), Float32Array.of(0, 1)).relativeDiff).toBe(Infinity);
  });

  it('reports top-1 agreement and the median and max over positions', () => {
    const ref = [Float32Array.of(0, 1), Float32Array.of(0, 1), Float32Array.of(0, 1)];
    const ours = [Float32Array.of(0, 1), Float32Array.of(0.1, 1), Float32Array.of(2, 1)];
    const a = compareLogits(ours, ref);
    expect(a.top1Agreement).toBeCloseTo(2 / 3, 9);
    expect(a.maxRelativeDiff).toBe(2);
    expect(a.medianRelativeDiff).toBeCloseTo(0.1, 6);
    expect(compareLogits(ours, ref, 1).positions).toHaveLength(1);
  });
});
