/**
 * The host tier (src/experts/host-tier.ts) under a streamed engine, in Node
 * and in Chromium: on a tiny generated OLMoE (2 layers, Q8_0, 8 experts,
 * top-2) with a GPU budget of a quarter of its experts, greedy output is the
 * same bits as with every expert resident whatever the host budget (none,
 * one layer's worth, all of them; with warming of every guess), and the store
 * is read less the more host memory there is: with room for every expert,
 * each is read from the store at most once. The service path is tested in
 * test/gpu-node/host-tier-service.test.ts.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { EngineOptions, GenerateResult } from '../../src/engine/engine';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import type { GpuContext } from '../../src/gpu/device';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { acquireTestGpu } from './support/gpu';

const LAYERS = 2;
const EXPERTS = 8;
const PROMPT = Array.from({ length: 12 }, (_, i) => 40 + 3 * i);
const DECODE = 8;

describe('host tier', () => {
  let gpu: GpuContext;
  let bytes: Uint8Array;
  let routedBytes: number;
  let resident: GenerateResult;

  const generate = async (options: Pick<EngineOptions, 'hostBudgetBytes' | 'expertBudgetBytes' | 'hostWarm'>): Promise<GenerateResult> => {
    const engine = await Engine.load(gpu.device, bytes, { maxContext: 64, ...options });
    try {
      const result = await engine.generate({ promptTokens: PROMPT, maxTokens: DECODE, ignoreEog: true, sampling: { temperature: 0 } });
      await engine.model.settleExperts();
      return result;
    } finally {
      engine.destroy();
    }
  };

  beforeAll(async () => {
    gpu = await acquireTestGpu();
    bytes = makeTinyModel({ arch: 'olmoe', seed: 11, layers: LAYERS, type: 'q8_0', experts: EXPERTS, topK: 2 });
    const file = await readGguf(sourceFromBytes(bytes));
    routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
    resident = await generate({});
  });
  afterAll(() => gpu?.device.destroy());

  it('keeps greedy output identical to all-resident at every host budget, and reads the store less with more of it', async () => {
    const expertBudgetBytes = Math.floor(routedBytes / 4);
    const runs: { hostBudgetBytes: number; result: GenerateResult }[] = [];
    for (const hostBudgetBytes of [0, Math.floor(routedBytes / LAYERS), routedBytes]) {
      runs.push({ hostBudgetBytes, result: await generate({ expertBudgetBytes, hostBudgetBytes }) });
    }
    for (const { hostBudgetBytes, result } of runs) {
      expect(result.tokens, `host budget ${hostBudgetBytes}`).toEqual(resident.tokens);
      const s = result.stats;
      expect(s.gpuHits).toBe(s.expertHits);
      expect(s.hostBudgetBytes).toBe(hostBudgetBytes);
      expect(s.hostHeldBytes).toBeLessThanOrEqual(hostBudgetBytes);
      // Every store byte is counted once, in the stats and on the device's cost counter.
      expect(s.cost.prefill.counts.storeBytes + s.cost.decode.counts.storeBytes).toBe(s.storeBytes);
    }
    // Warming every expert of the next two layers into half the experts' room reads ahead and changes nothing in the output.
    const warmed = await generate({ expertBudgetBytes, hostBudgetBytes: Math.floor(routedBytes / 2), hostWarm: { lookahead: 2, minConfidence: 0, width: EXPERTS } });
    expect(warmed.tokens).toEqual(resident.tokens);
    expect(warmed.stats.hostWarmReads).toBeGreaterThan(0);
    expect(warmed.stats.hostHeldBytes).toBeLessThanOrEqual(Math.floor(routedBytes / 2));
    const [none, some, all] = runs.map((r) => r.result.stats);
    expect(none!.expertMisses).toBeGreaterThan(0);
    expect(none!.hostHits).toBe(0);
    expect(none!.storeBytes).toBe(none!.bytesStreamed);
    expect(some!.storeBytes).toBeLessThan(none!.storeBytes);
    expect(all!.storeBytes).toBeLessThanOrEqual(some!.storeBytes);
    expect(all!.storeReads).toBeLessThanOrEqual(LAYERS * EXPERTS);
    expect(all!.hostHits).toBeGreaterThan(0);
  });
});
