/**
 * The routing knobs (MoeTransformerOptions.routing) on the built-in default
 * model (16 experts, top-2, un-normalised softmax weights): at their off
 * values greedy generation is token for token what it is without them; on,
 * under a streaming budget, tokens run fewer experts and the routing stream
 * lists only those (bench/routing/knobs.ts measures what that saves).
 * Out-of-range knobs fail the load as BAD_REQUEST before anything is read.
 */

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelPath } from '../../src/default-model';
import { Engine } from '../../src/engine/engine';
import type { EngineOptions } from '../../src/engine/engine';
import { EngineError } from '../../src/engine/errors';
import type { GpuContext } from '../../src/gpu/device';
import { acquireTestGpu } from '../gpu/support/gpu';

const PROMPT = 'To read a file, use';
const MAX_TOKENS = 12;
/** A quarter of the default model's routed experts (4 layers x 16 experts x 78,336 bytes). */
const BUDGET_BYTES = Math.floor((4 * 16 * 78_336) / 4);

describe('routing knobs on the default model', () => {
  let gpu: GpuContext;
  const bytes = new Uint8Array(readFileSync(defaultModelPath()));
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function generate(options: EngineOptions): Promise<{ tokens: number[]; experts: number[][][]; bytesStreamed: number }> {
    const engine = await Engine.load(gpu.device, bytes, { maxContext: 64, ...options });
    try {
      engine.model.startRoutingStream();
      const result = await engine.generate({ prompt: PROMPT, maxTokens: MAX_TOKENS, sampling: { temperature: 0 }, ignoreEog: true });
      const experts = engine.model.drainRouting().map((t) => t.experts);
      return { tokens: result.tokens, experts, bytesStreamed: engine.model.expertStats().bytesStreamed };
    } finally {
      engine.destroy();
    }
  }

  it('at their off values (0 and 1) give the same greedy tokens and routing as without them', async () => {
    const plain = await generate({});
    const off = await generate({ routing: { minExpertWeight: 0, topP: 1 } });
    expect(off.tokens).toEqual(plain.tokens);
    expect(off.experts).toEqual(plain.experts);
    expect(plain.experts.flat().every((ids) => ids.length === 2)).toBe(true);
  });

  it.each(['affinity', 'pregate'] as const)('on, while streaming with %s prefetch: some tokens run one expert, and the stream lists only those used', async (predictor) => {
    const on = await generate({ expertBudgetBytes: BUDGET_BYTES, prefetch: { predictor }, routing: { minExpertWeight: 0.1 } });
    expect(on.tokens).toHaveLength(MAX_TOKENS);
    const perLayer = on.experts.flat();
    expect(perLayer.every((ids) => ids.length >= 1 && ids.length <= 2 && ids.every((id) => Number.isInteger(id) && id >= 0 && id < 16))).toBe(true);
    const used = perLayer.reduce((sum, ids) => sum + ids.length, 0);
    expect(used).toBeLessThan(2 * perLayer.length);
    console.log(`default model, threshold 0.1, ${predictor} prefetch: ${(used / perLayer.length).toFixed(2)} experts per token and layer, ${on.bytesStreamed} expert bytes streamed`);
  });

  it('on, streaming under a budget gives the tokens and routing of every expert resident', async () => {
    const routing = { minExpertWeight: 0.1, topP: 0.9 };
    const resident = await generate({ routing });
    const streamed = await generate({ expertBudgetBytes: BUDGET_BYTES, routing });
    expect(resident.experts.flat().some((ids) => ids.length === 1), 'the knobs skip some experts').toBe(true);
    expect(streamed.tokens).toEqual(resident.tokens);
    expect(streamed.experts).toEqual(resident.experts);
    expect(streamed.bytesStreamed).toBeGreaterThan(0);
  });

  it('out of range fail the load as BAD_REQUEST', async () => {
    for (const routing of [{ minExpertWeight: 1 }, { minExpertWeight: -0.5 }, { topP: 0 }, { topP: 1.01 }, { topP: Number.NaN }]) {
      const error = await Engine.load(gpu.device, bytes, { routing }).catch((e: unknown) => e);
      expect(error, JSON.stringify(routing)).toBeInstanceOf(EngineError);
      expect((error as EngineError).code).toBe('BAD_REQUEST');
      expect((error as EngineError).message).toMatch(/^routing: (minExpertWeight|topP) must be in/);
    }
  });
});
