/**
 * Streaming experts through the GPU expert cache changes where weights live,
 * never what the model computes: with an expert budget of about 10% of the
 * routed experts, prefill logits and greedy decoding are bit for bit those
 * of the everything-resident model, for every tiny architecture, under
 * several policies and with prefetch (pre-gating on the GPU, online
 * affinity). Prefill batches whose experts exceed the cache run in pieces.
 * Also: the cache really streams (misses, bytes, evictions), a budget below
 * top-k experts is a typed error naming the minimum, and routing traces
 * recorded by the engine are the same resident or streamed. gpt-oss streams
 * with its expert biases in the slots.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExpertBudgetError } from '../../src/experts/expert-cache';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import type { GpuContext } from '../../src/gpu/device';
import { MoeTransformer } from '../../src/models/moe-transformer';
import type { MoeTransformerOptions } from '../../src/models/moe-transformer';
import { mulberry32 } from '../../src/quant/random';
import type { TinyArch } from '../../src/tiny/archs';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { TINY_MODELS, isVariant, tinyOptions } from '../support/tiny-models';
import { acquireTestGpu } from './support/gpu';

const PREFILL = 16;
const DECODE = 6;
const BATCH_TOKENS = 8;
const SHAPE = { layers: 3, experts: 16, topK: 2 };

function randomTokens(vocab: number, count: number, seed: number): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, () => Math.floor(rng() * vocab));
}

/** Index of the first element whose bits differ, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

interface RunResult {
  prefill: Float32Array[];
  greedy: number[];
  decodeLogits: Float32Array[];
}

/** Prefill all-logits, then greedy decoding (argmax per step, and the last step's logits). */
async function run(model: MoeTransformer, prompt: number[]): Promise<RunResult> {
  const { logits } = await model.forward(prompt, 0, 'all-logits');
  const greedy: number[] = [];
  const decodeLogits: Float32Array[] = [];
  let next = argmaxOf(logits![logits!.length - 1]);
  for (let i = 0; i < DECODE; i++) {
    greedy.push(next);
    const step = await model.forward([next], prompt.length + i, 'last-logits');
    decodeLogits.push(step.logits![0]);
    next = (await model.forward([next], prompt.length + i, 'argmax')).argmax!;
  }
  return { prefill: logits!, greedy, decodeLogits };
}

function argmaxOf(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function expectSameRun(actual: RunResult, expected: RunResult, what: string): void {
  expect(actual.greedy, `${what}: greedy tokens`).toEqual(expected.greedy);
  actual.prefill.forEach((row, t) => expect(firstBitDifference(row, expected.prefill[t]), `${what}: prefill logits of token ${t}`).toBe(-1));
  actual.decodeLogits.forEach((row, t) => expect(firstBitDifference(row, expected.decodeLogits[t]), `${what}: decode logits of step ${t}`).toBe(-1));
}

describe('expert cache: outputs do not depend on the budget, policy or prefetch', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function load(bytes: Uint8Array, options: MoeTransformerOptions = {}): Promise<MoeTransformer> {
    const file = await readGguf(sourceFromBytes(bytes));
    return MoeTransformer.load(gpu.device, file, sourceFromBytes(bytes), { maxContext: 64, maxBatchTokens: BATCH_TOKENS, ...options });
  }

  // gpt-oss's slots carry its expert biases; its experts are MXFP4 as released.
  const typeOf = (arch: TinyArch) => (arch === 'llama' ? 'q4_0' : arch === 'gpt-oss' ? 'mxfp4' : 'q8_0');
  // SwiftShader streams the plain architectures; gpu-node adds their variants.
  const kinds = typeof window !== 'undefined' ? TINY_MODELS.filter((kind) => !isVariant(kind)) : TINY_MODELS;
  describe.each(kinds.map((kind) => [kind.name, kind] as const))('%s', (arch, kind) => {
    // deepseek2's first layer is dense: one more layer gives it as many MoE layers as the others.
    const layers = SHAPE.layers + (kind.arch === 'deepseek2' ? 1 : 0);
    const bytes = makeTinyModel({ ...tinyOptions(kind, typeOf(kind.arch)), seed: 9, ...SHAPE, layers });

    it('a 10% budget streams experts and gives the bits of the everything-resident model', async () => {
      const resident = await load(bytes);
      const memory = resident.memory();
      const slotBytes = memory.expertBytes / memory.totalExperts;
      const prompt = randomTokens(resident.config.vocabSize, PREFILL, 3);
      const expected = await run(resident, prompt);
      const residentStats = resident.expertStats();
      resident.destroy();
      expect(memory.streaming).toBe(false);
      expect(residentStats.misses).toBe(0);
      expect(residentStats.hits).toBe(residentStats.accesses);
      const moeLayers = resident.config.tensors.layers.filter((l) => l.ffn.kind === 'moe').length;
      expect(residentStats.accesses).toBe((PREFILL + 2 * DECODE) * moeLayers * SHAPE.topK);

      const slots = Math.ceil(0.1 * memory.totalExperts);
      const streamed = await load(bytes, { expertBudgetBytes: slots * slotBytes });
      try {
        expect(streamed.memory()).toMatchObject({ streaming: true, expertSlots: slots, expertBytes: slots * slotBytes, totalExperts: memory.totalExperts });
        const actual = await run(streamed, prompt);
        expectSameRun(actual, expected, `${arch} at ${slots} of ${memory.totalExperts} slots`);
        const stats = streamed.expertStats();
        expect(stats.accesses).toBe(residentStats.accesses);
        expect(stats.hits + stats.misses).toBe(stats.accesses);
        expect(stats.misses).toBeGreaterThan(slots);
        expect(stats.evictions).toBeGreaterThan(0);
        expect(stats.bytesStreamed).toBeGreaterThan(stats.misses * slotBytes * 0.5);
        expect(stats.layers.reduce((n, l) => n + l.misses, 0)).toBe(stats.misses);
        console.log(`${arch}: ${slots}/${memory.totalExperts} slots, hit rate ${stats.hitRate.toFixed(3)}, ${stats.misses} misses, ${stats.bytesStreamed} bytes streamed, stall ${stats.stallMs.toFixed(1)} ms`);
      } finally {
        streamed.destroy();
      }
    });

    it('other policies, pinned experts and prefetch change hits and misses, never outputs', async () => {
      const resident = await load(bytes);
      const memory = resident.memory();
      const slotBytes = memory.expertBytes / memory.totalExperts;
      const prompt = randomTokens(resident.config.vocabSize, PREFILL, 4);
      const expected = await run(resident, prompt);
      resident.destroy();

      const budget = 6 * slotBytes;
      // Pin an expert of the first MoE layer (deepseek2's layer 0 is dense).
      const firstMoe = resident.config.tensors.layers.findIndex((l) => l.ffn.kind === 'moe');
      const variants: [string, MoeTransformerOptions][] = [
        ['lru', { expertPolicy: 'lru' }],
        ['lfu-decay + pregate', { expertPolicy: 'lfu-decay', prefetch: { predictor: 'pregate', lookahead: 2 } }],
        ['lfu + affinity + pin', { expertPolicy: 'lfu', prefetch: { predictor: 'affinity', lookahead: 2 }, pinnedExperts: [{ layer: firstMoe, expert: 1 }] }],
      ];
      const stats = [];
      for (const [name, options] of variants) {
        const model = await load(bytes, { expertBudgetBytes: budget, ...options });
        try {
          expectSameRun(await run(model, prompt), expected, `${arch} ${name}`);
          await model.settleExperts();
          stats.push({ name, ...model.expertStats() });
        } finally {
          model.destroy();
        }
      }
      for (const s of stats.slice(1)) {
        expect(s.prefetchLoads, s.name).toBeGreaterThan(0);
        expect(s.precision, s.name).toBeGreaterThanOrEqual(0);
        expect(s.precision, s.name).toBeLessThanOrEqual(1);
      }
      console.log(stats.map((s) => `${arch} ${s.name}: hit ${s.hitRate.toFixed(3)}, prefetch loads ${s.prefetchLoads}, precision ${s.precision.toFixed(2)}, recall ${s.recall.toFixed(2)}`).join('\n'));
    });
  });

  it('a budget below top-k experts is an ExpertBudgetError naming the minimum', async () => {
    const bytes = makeTinyModel({ arch: 'qwen3moe', type: 'q8_0', seed: 2, ...SHAPE });
    const resident = await load(bytes);
    const slotBytes = resident.memory().expertBytes / resident.memory().totalExperts;
    resident.destroy();
    const error = await load(bytes, { expertBudgetBytes: SHAPE.topK * slotBytes - 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExpertBudgetError);
    expect((error as ExpertBudgetError).minimumBytes).toBe(SHAPE.topK * slotBytes);
    expect((error as Error).message).toContain(String(SHAPE.topK * slotBytes));
    const smallest = await load(bytes, { expertBudgetBytes: SHAPE.topK * slotBytes });
    expect(smallest.memory().expertSlots).toBe(SHAPE.topK);
    smallest.destroy();
  });

  it('routing traces recorded resident and streamed agree, token by token', async () => {
    const bytes = makeTinyModel({ arch: 'olmoe', type: 'q8_0', seed: 6, ...SHAPE });
    const traces = [];
    for (const options of [{}, { expertBudgetBytes: 1 }]) {
      const probe = await load(bytes);
      const slotBytes = probe.memory().expertBytes / probe.memory().totalExperts;
      probe.destroy();
      const model = await load(bytes, 'expertBudgetBytes' in options ? { expertBudgetBytes: 4 * slotBytes, prefetch: { predictor: 'pregate' } } : {});
      try {
        model.startRoutingTrace('test');
        await run(model, randomTokens(model.config.vocabSize, PREFILL, 8));
        traces.push(model.takeRoutingTrace()!);
      } finally {
        model.destroy();
      }
    }
    const [resident, streamed] = traces;
    expect(resident.tokens).toHaveLength(PREFILL + 2 * DECODE);
    expect(resident).toMatchObject({ nLayers: SHAPE.layers, nExperts: SHAPE.experts, topK: SHAPE.topK });
    expect(streamed.tokens.map((t) => t.experts)).toEqual(resident.tokens.map((t) => t.experts));
    expect(streamed.tokens.map((t) => t.weights)).toEqual(resident.tokens.map((t) => t.weights));
    // The pre-gate guessed layers 1.. of every decode token.
    const guessed = streamed.tokens.filter((t) => t.predicted?.[1]);
    expect(guessed).toHaveLength(2 * DECODE);
  });
});
