/** The sampler: which path a request takes, llama.cpp's repetition penalty, each filter, seeds, and the distribution drawn. */
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../src/engine/errors';
import { applyRepetitionPenalty, argmax, candidatesFromLogits, checkSamplingOptions, Sampler, samplingPath } from '../../../src/engine/sampler';
import type { SamplingOptions } from '../../../src/engine/sampler';
import { mulberry32 } from '../../../src/quant/random';
import { topKLogits } from '../../../src/ref/sample-topk';

const MAX_TOP_K = 64;

/** Logits whose softmax is exactly `probabilities`. */
function logitsOf(probabilities: number[]): Float32Array {
  return Float32Array.from(probabilities, (p) => Math.log(p));
}

/** Frequencies of each id over `draws` samples of one position's logits. */
function frequencies(options: SamplingOptions, logits: Float32Array, draws: number): number[] {
  const sampler = new Sampler(options, 0);
  expect(sampler.path).not.toBe('gpu-topk');
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample({ logits: [logits] }, [])]++;
  return counts.map((c) => c / draws);
}

function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
}

describe('sampling path', () => {
  it('is greedy at temperature 0 (the default), whatever the filters', () => {
    expect(samplingPath({}, MAX_TOP_K)).toBe('greedy');
    expect(samplingPath({ temperature: 0, topK: 5, topP: 0.5 }, MAX_TOP_K)).toBe('greedy');
    expect(new Sampler({}, MAX_TOP_K).output).toBe('argmax');
    expect(new Sampler({ repeatPenalty: 1.1 }, MAX_TOP_K).output).toBe('last-logits');
  });

  it('uses the GPU top-k only when top-k is set, within maxTopK, and there is no penalty', () => {
    expect(samplingPath({ temperature: 0.8, topK: 40 }, MAX_TOP_K)).toBe('gpu-topk');
    expect(samplingPath({ temperature: 0.8, topK: 40, topP: 0.9, minP: 0.05 }, MAX_TOP_K)).toBe('gpu-topk');
    expect(new Sampler({ temperature: 0.8, topK: 40 }, MAX_TOP_K).output).toEqual({ topK: 40, temperature: 0.8 });
    expect(samplingPath({ temperature: 0.8 }, MAX_TOP_K)).toBe('cpu');
    expect(samplingPath({ temperature: 0.8, topP: 0.9 }, MAX_TOP_K)).toBe('cpu');
    expect(samplingPath({ temperature: 0.8, topK: MAX_TOP_K + 1 }, MAX_TOP_K)).toBe('cpu');
    expect(samplingPath({ temperature: 0.8, topK: 40, repeatPenalty: 1.1 }, MAX_TOP_K)).toBe('cpu');
    expect(new Sampler({ temperature: 0.8 }, MAX_TOP_K).output).toBe('last-logits');
  });
});

describe('repetition penalty (llama.cpp)', () => {
  it('divides positive logits and multiplies negative ones, once per distinct token', () => {
    const logits = Float32Array.of(2, -2, 0, 3, 1);
    applyRepetitionPenalty(logits, [0, 1, 2, 0, 0, 1], 2);
    expect([...logits]).toEqual([1, -4, 0, 3, 1]);
  });

  it('does nothing at penalty 1 and ignores ids outside the vocabulary', () => {
    const logits = Float32Array.of(2, -2);
    applyRepetitionPenalty(logits, [0, 1], 1);
    applyRepetitionPenalty(logits, [7, -1], 3);
    expect([...logits]).toEqual([2, -2]);
  });

  it('changes the greedy choice, looking only at the last repeatLastN tokens', () => {
    const logits = Float32Array.of(2, 1.9, -1);
    expect(new Sampler({}, MAX_TOP_K).sample({ argmax: 0 }, [0])).toBe(0);
    expect(new Sampler({ repeatPenalty: 1.2 }, MAX_TOP_K).sample({ logits: [logits] }, [0])).toBe(1);
    // Token 0 is outside the window of the last 2 tokens.
    expect(new Sampler({ repeatPenalty: 1.2, repeatLastN: 2 }, MAX_TOP_K).sample({ logits: [logits] }, [0, 2, 2])).toBe(0);
    expect(new Sampler({ repeatPenalty: 1.2, repeatLastN: 0 }, MAX_TOP_K).sample({ logits: [logits] }, [0])).toBe(0);
    expect(new Sampler({ repeatPenalty: 1.2, repeatLastN: -1 }, MAX_TOP_K).sample({ logits: [logits] }, [0, 2, 2, 2])).toBe(1);
    // The caller's logits are left as they were.
    expect([...logits]).toEqual([2, Math.fround(1.9), -1]);
  });
});

describe('candidates from full logits', () => {
  it('are what the GPU sample_topk returns (its CPU reference), for top-k and for the whole vocabulary', () => {
    const logits = randomLogits(1000, 3);
    for (const [k, temperature] of [[1, 1], [7, 0.7], [40, 1.3], [300, 2]] as const) {
      const got = candidatesFromLogits(logits, temperature, k);
      const want = topKLogits(logits, k, temperature);
      expect([...got.ids]).toEqual([...want.ids]);
      expect([...got.logits]).toEqual([...want.logits]);
      expect(got.logSumExp).toBeCloseTo(want.logSumExp, 10);
    }
    const all = candidatesFromLogits(logits, 0.5);
    expect([...all.ids]).toEqual([...topKLogits(logits, 1000, 0.5).ids]);
  });

  it('rank ties by the lower id, and NaN last', () => {
    const c = candidatesFromLogits(Float32Array.of(1, NaN, 3, 3, 1), 1);
    expect([...c.ids]).toEqual([2, 3, 0, 4, 1]);
    expect(argmax(Float32Array.of(NaN, 1, 5, 5))).toBe(2);
  });
});

describe('filters', () => {
  // Probabilities 0.4, 0.3, 0.2, 0.1 at temperature 1.
  const logits = logitsOf([0.1, 0.4, 0.2, 0.3]);
  const DRAWS = 4000;
  const kept = (options: SamplingOptions) =>
    frequencies({ temperature: 1, seed: 9, ...options }, logits, DRAWS).flatMap((f, id) => (f > 0 ? [id] : []));

  it('top-k keeps the k most likely', () => {
    expect(kept({ topK: 1 })).toEqual([1]);
    expect(kept({ topK: 2 })).toEqual([1, 3]);
    expect(kept({ topK: 3 })).toEqual([1, 2, 3]);
    expect(kept({})).toEqual([0, 1, 2, 3]);
  });

  it('top-p keeps the shortest prefix reaching the mass', () => {
    expect(kept({ topP: 0.35 })).toEqual([1]);
    expect(kept({ topP: 0.65 })).toEqual([1, 3]);
    expect(kept({ topP: 0.85 })).toEqual([1, 2, 3]);
    expect(kept({ topP: 1 })).toEqual([0, 1, 2, 3]);
  });

  it('min-p keeps tokens at least minP times as likely as the best', () => {
    expect(kept({ minP: 0.8 })).toEqual([1]);
    expect(kept({ minP: 0.7 })).toEqual([1, 3]);
    expect(kept({ minP: 0.3 })).toEqual([1, 2, 3]);
    expect(kept({ minP: 0.2 })).toEqual([0, 1, 2, 3]);
  });

  it('combine: top-k, then top-p, then min-p', () => {
    expect(kept({ topK: 3, topP: 0.95 })).toEqual([1, 2, 3]);
    expect(kept({ topK: 3, minP: 0.6 })).toEqual([1, 3]);
  });
});

describe('draws', () => {
  const probabilities = [0.5, 0.25, 0.125, 0.125];
  const DRAWS = 20_000;
  // Binomial standard deviation at most sqrt(0.25 / 20000) = 0.0035; 0.015 is over 4 of them.
  const TOLERANCE = 0.015;

  it('follow the softmax of the logits at temperature 1', () => {
    const f = frequencies({ temperature: 1, seed: 1 }, logitsOf(probabilities), DRAWS);
    f.forEach((freq, i) => expect(Math.abs(freq - probabilities[i])).toBeLessThan(TOLERANCE));
  });

  it('are flattened by a higher temperature and renormalised after filtering', () => {
    // At temperature 2 the probabilities are proportional to sqrt(p).
    const roots = probabilities.map(Math.sqrt);
    const total = roots.reduce((a, b) => a + b);
    const f = frequencies({ temperature: 2, seed: 2 }, logitsOf(probabilities), DRAWS);
    f.forEach((freq, i) => expect(Math.abs(freq - roots[i] / total)).toBeLessThan(TOLERANCE));
    const top2 = frequencies({ temperature: 1, topK: 2, seed: 3 }, logitsOf(probabilities), DRAWS);
    expect(Math.abs(top2[0] - 2 / 3)).toBeLessThan(TOLERANCE);
    expect(Math.abs(top2[1] - 1 / 3)).toBeLessThan(TOLERANCE);
  });

  it('are the same for the same seed and differ for another', () => {
    const logits = randomLogits(500, 4, 1);
    const run = (seed: number) => {
      const sampler = new Sampler({ temperature: 1, seed }, MAX_TOP_K);
      return Array.from({ length: 50 }, () => sampler.sample({ logits: [logits] }, []));
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
    expect(new Sampler({ temperature: 1, seed: 42 }, MAX_TOP_K).seed).toBe(42);
  });

  it('are the same on the GPU top-k path as on the CPU path for the same seed', () => {
    const options: SamplingOptions = { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, seed: 7 };
    const gpuPath = new Sampler(options, MAX_TOP_K);
    const cpuPath = new Sampler(options, 0);
    expect([gpuPath.path, cpuPath.path]).toEqual(['gpu-topk', 'cpu']);
    for (let step = 0; step < 50; step++) {
      const logits = randomLogits(800, 100 + step);
      const candidates = topKLogits(logits, 20, 0.9);
      expect(gpuPath.sample({ candidates }, [])).toBe(cpuPath.sample({ logits: [logits] }, []));
    }
  });
});

describe('options', () => {
  it('out of range are a BAD_REQUEST EngineError naming the option', () => {
    const bad: [SamplingOptions, RegExp][] = [
      [{ temperature: -1 }, /temperature must be a number >= 0/],
      [{ temperature: NaN }, /temperature/],
      [{ topK: 1.5 }, /topK must be an integer >= 0/],
      [{ topP: 0 }, /topP must be in \(0, 1\]/],
      [{ topP: 1.5 }, /topP/],
      [{ minP: -0.1 }, /minP must be in \[0, 1\]/],
      [{ repeatPenalty: 0 }, /repeatPenalty must be a number > 0/],
      [{ repeatLastN: -2 }, /repeatLastN must be an integer >= -1/],
      [{ seed: 1.5 }, /seed must be an integer/],
    ];
    for (const [options, message] of bad) {
      expect(() => checkSamplingOptions(options)).toThrow(message);
      expect(() => new Sampler(options, MAX_TOP_K)).toThrow(EngineError);
    }
    expect(() => checkSamplingOptions({ temperature: 0.7, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.1, repeatLastN: -1, seed: 0 })).not.toThrow();
  });
});
