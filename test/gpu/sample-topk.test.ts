/**
 * The sample_topk kernel selects the same k candidates as the CPU reference,
 * in the same order (ties to the lowest id), with the scaled logits bit for
 * bit (one correctly rounded f32 product on both sides), and the log-sum-exp
 * of the scaled logits within LSE_TOLERANCE.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer, readBuffer, createEmptyStorageBuffer } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { SampleTopKKernel, topKResultBytes } from '../../src/kernels/sample-topk';
import { decodeTopKResult, sampleFromCandidates } from '../../src/kernels/sampling';
import type { TopKCandidates } from '../../src/kernels/sampling';
import { mulberry32, randomNormal } from '../../src/quant/random';
import { topKLogits } from '../../src/ref/sample-topk';
import { acquireTestGpu } from './support/gpu';

/*
 * The log-sum-exp is summed in f32: each thread folds up to 16 terms, a tree
 * merges 256 threads, the final pass merges the slices, every merge rescaling
 * by an exp (WGSL: 3 + 2|x| ulp, under 64 ulp for the spreads here). The sum
 * so carries a relative error of at most about (16 + 8 + 13 + 64) 2^-23
 * = 1.2e-5, which is the absolute error of its log; 5e-5 leaves headroom. A
 * missing slice or a wrong temperature moves it by far more.
 */
const LSE_TOLERANCE = 5e-5;

function randomLogits(length: number, seed: number, levels?: number): Float32Array {
  const rng = mulberry32(seed);
  // With `levels`, logits take few distinct values, so ties abound.
  return Float32Array.from({ length }, () => (levels ? Math.floor(rng() * levels) / 4 : 4 * randomNormal(rng)));
}

describe('sample_topk kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function topKOnGpu(logits: Float32Array, k: number, temperature?: number): Promise<TopKCandidates> {
    const { device } = gpu;
    const kernel = await SampleTopKKernel.create(device);
    const logitsBuffer = createStorageBuffer(device, logits, 'logits');
    const result = createEmptyStorageBuffer(device, topKResultBytes(k), 'top-k');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { logits: logitsBuffer, result }, { length: logits.length, k, temperature })),
    );
    return decodeTopKResult(await readBuffer(device, result));
  }

  function expectSameCandidates(actual: TopKCandidates, expected: TopKCandidates): void {
    expect([...actual.ids]).toEqual([...expected.ids]);
    expect([...actual.logits]).toEqual([...expected.logits]);
    expect(Math.abs(actual.logSumExp - expected.logSumExp)).toBeLessThanOrEqual(LSE_TOLERANCE);
  }

  const CASES: ReadonlyArray<readonly [vocab: number, k: number, temperature: number]> = [
    [50_000, 64, 1],
    [50_000, 128, 0.7],
    [4096, 1, 1],
    [4097, 256, 1.5],
    [1, 1, 1],
    [10, 64, 1],
  ];
  for (const [vocab, k, temperature] of CASES) {
    it(`top ${k} of ${vocab} random logits at temperature ${temperature}`, async () => {
      const logits = randomLogits(vocab, vocab + k);
      expectSameCandidates(await topKOnGpu(logits, k, temperature), topKLogits(logits, k, temperature));
    });
  }

  it('breaks ties toward the lowest id when many logits are equal', async () => {
    // 20 levels over 30,000 logits: about 1,500 share each value, so the top 100 all tie.
    const logits = randomLogits(30_000, 77, 20);
    const actual = await topKOnGpu(logits, 100);
    expectSameCandidates(actual, topKLogits(logits, 100));
    expect(new Set(actual.logits).size).toBe(1);
  });

  it('ranks -0 just below +0 and keeps negative logits in order', async () => {
    const logits = Float32Array.of(-5, -0, 0, -1, -0.5, -3);
    const actual = await topKOnGpu(logits, 4);
    expect([...actual.ids]).toEqual([2, 1, 4, 3]);
  });

  it('feeds CPU sampling: greedy-like top-p picks the best id', async () => {
    const logits = randomLogits(50_000, 5);
    const candidates = await topKOnGpu(logits, 64, 0.8);
    expect(sampleFromCandidates(candidates, { topP: 1e-6 }, 0.99)).toBe(topKLogits(logits, 1).ids[0]);
  });

  it('refuses k above its workgroup size and a zero temperature', async () => {
    const kernel = await SampleTopKKernel.create(gpu.device);
    const buffer = createEmptyStorageBuffer(gpu.device, 4096);
    const encode = (k: number, temperature: number) => () =>
      submitComputePass(gpu.device, 'bad', (pass) => kernel.encode(pass, { logits: buffer, result: buffer }, { length: 8, k, temperature }));
    expect(encode(kernel.maxK + 1, 1)).toThrow(/k must be an integer in \[1, /);
    expect(encode(4, 0)).toThrow(/use argmax/);
  });
});
