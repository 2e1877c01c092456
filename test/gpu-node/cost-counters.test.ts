/**
 * The engine's cost counters (src/gpu/cost-counter.ts) on a tiny generated
 * OLMoE (2 layers, Q8_0, QK-norm over the whole projection, no biases, 8
 * experts, top-2) against what its graph must do:
 *
 * - a decode step records 14 dispatches per layer (attention: norm, q, k, v,
 *   q-norm, k-norm, RoPE with the KV write, attention, output; FFN: norm,
 *   router logits and top-k, expert gate/up and down) plus 5 (embedding, final
 *   norm, output projection, argmax in two steps), in one pass and one
 *   submission with one round trip (the sampled id) when every expert is
 *   resident; streamed, each MoE layer adds a submission and a pass before
 *   and after its FFN and a round trip for its routing;
 * - weight bytes per decode token are the sizes of the tensors it touches:
 *   one embedding row, every shared tensor, and top-k experts' gate, up and
 *   down per MoE layer; prefill reads each attention matrix once per tile of
 *   8 tokens, the router once per token, and runs the routed experts grouped
 *   by expert (2 more dispatches per MoE layer: the group list and the
 *   weighted sum), each expert read once per group of up to 8 of its
 *   tokens, counted at the bound maxGroups (the groups are formed on the
 *   GPU, so the CPU knows only the bound);
 * - the public stats() carries the same figures, per request and summed.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import { Engine } from '../../src/engine/engine';
import type { GenerateResult } from '../../src/engine/engine';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import type { GgufFile } from '../../src/gguf/types';
import { requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { countGroups, maxGroups } from '../../src/kernels/expert-group-list';
import type { RoutingTrace } from '../../src/experts/trace';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const LAYERS = 2;
const TOP_K = 2;
const EXPERTS = 8;
const BATCH = 16;
/** The matmul's tile of tokens (src/kernels/matmul.ts's default). */
const TILE = 8;
/** The grouped expert FFN's most pairs per group (src/kernels/expert-ffn.ts's default). */
const PAIR_TILE = 8;
/** 21 prompt tokens: batches of 16 (2 tiles) and 5 (1 tile). */
const PROMPT = Array.from({ length: 21 }, (_, i) => 40 + i);
const DECODE = 5;

const DISPATCHES_PER_LAYER = 9 + 5;
/** A batch of several tokens builds a group list and sums the experts' outputs in a dispatch of its own. */
const GROUPED_DISPATCHES_PER_LAYER = 2;
const DISPATCHES_OUTSIDE_LAYERS = 5;

/** Weight bytes of each piece of the model, from its GGUF tensor table. */
function weightSizes(file: GgufFile) {
  const bytes = (name: string) => {
    const t = file.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no tensor ${name}`);
    return t.nBytes;
  };
  const layer = (l: number) => {
    const b = (n: string) => bytes(`blk.${l}.${n}.weight`);
    return {
      vectors: b('attn_norm') + b('attn_q_norm') + b('attn_k_norm') + b('ffn_norm'),
      attentionMatrices: b('attn_q') + b('attn_k') + b('attn_v') + b('attn_output'),
      router: b('ffn_gate_inp'),
      expert: (b('ffn_gate_exps') + b('ffn_up_exps') + b('ffn_down_exps')) / EXPERTS,
    };
  };
  const vocab = file.tensors.find((t) => t.name === 'token_embd.weight')!.dims[1]!;
  return {
    embeddingRow: bytes('token_embd.weight') / vocab,
    layers: Array.from({ length: LAYERS }, (_, l) => layer(l)),
    outputNorm: bytes('output_norm.weight'),
    output: bytes('output.weight'),
  };
}

/**
 * Weight bytes a batch of T tokens reads, all experts resident; `output`: the batch ends in the output projection;
 * `expertReads`: experts read per layer (default: k per token for one token, the group bound for more).
 */
function batchWeightBytes(s: ReturnType<typeof weightSizes>, T: number, output: boolean, expertReads?: (layer: number) => number): number {
  const reads = expertReads ?? (() => (T === 1 ? TOP_K : maxGroups(T * TOP_K, EXPERTS, PAIR_TILE)));
  const layers = s.layers.reduce((sum, l, i) => sum + l.vectors + Math.ceil(T / TILE) * l.attentionMatrices + T * l.router + reads(i) * l.expert, 0);
  return T * s.embeddingRow + layers + s.outputNorm + (output ? s.output : 0);
}

describe('cost counters', () => {
  let gpu: GpuContext;
  let bytes: Uint8Array;
  let sizes: ReturnType<typeof weightSizes>;
  let resident: GenerateResult;
  let residentTrace: RoutingTrace;
  let routedBytes: number;

  beforeAll(async () => {
    gpu = await requestGpuDevice({ wantFeatures: [...USEFUL_FEATURES], label: 'cost counters test' });
    bytes = makeTinyModel({ arch: 'olmoe', seed: 5, layers: LAYERS, type: 'q8_0', experts: EXPERTS, topK: TOP_K });
    const file = await readGguf(sourceFromBytes(bytes));
    sizes = weightSizes(file);
    routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
    const engine = await Engine.load(gpu.device, bytes, { maxContext: 64, maxBatchTokens: BATCH });
    try {
      resident = await engine.generate({ promptTokens: PROMPT, maxTokens: DECODE + 1, ignoreEog: true, sampling: { temperature: 0 } });
    } finally {
      engine.destroy();
    }
    // The same run on a fresh engine for its routing (a trace reads it back, which would change the counts above).
    const traced = await Engine.load(gpu.device, bytes, { maxContext: 64, maxBatchTokens: BATCH });
    try {
      traced.model.startRoutingTrace();
      await traced.generate({ promptTokens: PROMPT, maxTokens: DECODE + 1, ignoreEog: true, sampling: { temperature: 0 } });
      residentTrace = traced.model.takeRoutingTrace()!;
    } finally {
      traced.destroy();
    }
  });
  afterAll(() => gpu?.device.destroy());

  it('counts a resident decode step exactly: dispatches from the layer structure, 1 pass, 1 submission, 1 round trip', () => {
    const { tokens, counts } = resident.stats.cost.decode;
    expect(tokens).toBe(DECODE);
    expect(counts.dispatches).toBe(DECODE * (DISPATCHES_PER_LAYER * LAYERS + DISPATCHES_OUTSIDE_LAYERS));
    expect(counts.passes).toBe(DECODE);
    expect(counts.submissions).toBe(DECODE);
    expect(counts.roundTrips).toBe(DECODE);
    expect(counts.storeBytes).toBe(0);
    // ids and positions (4 bytes each) plus each dispatch's uniform block (16 bytes or more) at least.
    expect(counts.uploadBytes).toBeGreaterThanOrEqual(DECODE * (8 + 16 * (DISPATCHES_PER_LAYER - 4) * LAYERS));
    expect(counts.encodeMs).toBeGreaterThan(0);
  });

  it('counts the weight bytes a decode token touches: shared tensors, one embedding row and top-k experts per MoE layer', () => {
    const perToken = batchWeightBytes(sizes, 1, true);
    const shared = sizes.embeddingRow + sizes.outputNorm + sizes.output + sizes.layers.reduce((s, l) => s + l.vectors + l.attentionMatrices + l.router, 0);
    expect(perToken).toBe(shared + LAYERS * TOP_K * sizes.layers[0]!.expert);
    expect(resident.stats.cost.decode.counts.weightBytes).toBe(DECODE * perToken);
  });

  it('counts prefill by batches: matrices per tile of tokens, router per token, experts per group, one round trip at the end', () => {
    const { tokens, counts } = resident.stats.cost.prefill;
    expect(tokens).toBe(PROMPT.length);
    const batches = [BATCH, PROMPT.length - BATCH];
    expect(counts.dispatches).toBe(batches.length * ((DISPATCHES_PER_LAYER + GROUPED_DISPATCHES_PER_LAYER) * LAYERS + 1 + 1) + 3);
    expect(counts.passes).toBe(batches.length);
    expect(counts.submissions).toBe(batches.length);
    expect(counts.roundTrips).toBe(1);
    expect(counts.weightBytes).toBe(batchWeightBytes(sizes, BATCH, false) + batchWeightBytes(sizes, PROMPT.length - BATCH, true));
  });

  it('streaming adds a submission, a pass and a round trip per MoE layer, reads the same weights, and counts what it loads', async () => {
    // No host tier: every load is a store read.
    const engine = await Engine.load(gpu.device, bytes, { maxContext: 64, maxBatchTokens: BATCH, expertBudgetBytes: Math.floor(routedBytes / 2), hostBudgetBytes: 0 });
    let streamed: GenerateResult;
    try {
      streamed = await engine.generate({ promptTokens: PROMPT, maxTokens: DECODE + 1, ignoreEog: true, sampling: { temperature: 0 } });
    } finally {
      engine.destroy();
    }
    expect(streamed.tokens).toEqual(resident.tokens);
    const decode = streamed.stats.cost.decode.counts;
    expect(decode.dispatches).toBe(resident.stats.cost.decode.counts.dispatches);
    expect(decode.passes).toBe(DECODE * (1 + 2 * LAYERS));
    expect(decode.submissions).toBe(DECODE * (1 + 2 * LAYERS));
    expect(decode.roundTrips).toBe(DECODE * (1 + LAYERS));
    expect(decode.weightBytes).toBe(resident.stats.cost.decode.counts.weightBytes);
    // Streaming reads the routing back, so it counts each piece's groups exactly: cutting a batch into pieces of
    // tokens (where its experts do not fit) can only split groups, so at least the whole batches' exact groups
    // (from the resident run's routing) and at most one read per routed pair.
    const prefill = streamed.stats.cost.prefill.counts;
    expect(residentTrace.tokens.length, 'the traced run prefilled the whole prompt').toBe(PROMPT.length + DECODE);
    const exactGroups = (first: number, T: number) => (layer: number) =>
      countGroups(residentTrace.tokens.slice(first, first + T).flatMap((t) => t.experts[layer]!), EXPERTS, PAIR_TILE);
    const wholeBatches = batchWeightBytes(sizes, BATCH, false, exactGroups(0, BATCH)) + batchWeightBytes(sizes, PROMPT.length - BATCH, true, exactGroups(BATCH, PROMPT.length - BATCH));
    const perPair = batchWeightBytes(sizes, BATCH, false, () => BATCH * TOP_K) + batchWeightBytes(sizes, PROMPT.length - BATCH, true, () => (PROMPT.length - BATCH) * TOP_K);
    expect(wholeBatches).toBeLessThanOrEqual(resident.stats.cost.prefill.counts.weightBytes);
    expect(prefill.weightBytes).toBeGreaterThanOrEqual(wholeBatches);
    expect(prefill.weightBytes).toBeLessThanOrEqual(perPair);
    expect(prefill.roundTrips).toBe(2 * LAYERS + 1);
    const store = prefill.storeBytes + decode.storeBytes;
    expect(store).toBe(streamed.stats.bytesStreamed);
    expect(store).toBeGreaterThan(0);
    expect(prefill.uploadBytes + decode.uploadBytes).toBeGreaterThan(store);
  });

  it('pre-gating adds the next MoE layer\'s router to each layer but the last', async () => {
    const engine = await Engine.load(gpu.device, bytes, {
      maxContext: 64, maxBatchTokens: BATCH, expertBudgetBytes: Math.floor(routedBytes / 2), prefetch: { predictor: 'pregate', lookahead: 1 },
    });
    let result: GenerateResult;
    try {
      result = await engine.generate({ promptTokens: PROMPT, maxTokens: DECODE + 1, ignoreEog: true, sampling: { temperature: 0 } });
    } finally {
      engine.destroy();
    }
    const decode = result.stats.cost.decode.counts;
    const base = resident.stats.cost.decode.counts;
    expect(decode.dispatches).toBe(base.dispatches + DECODE * 2 * (LAYERS - 1));
    expect(decode.weightBytes).toBe(base.weightBytes + DECODE * sizes.layers[1]!.router * (LAYERS - 1));
    expect(decode.roundTrips).toBe(DECODE * (1 + LAYERS));
  });

  it('stats() reports the last request\'s cost with per-token views, and the sum of every request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webmoe-cost-'));
    const path = join(dir, 'tiny.gguf');
    writeFileSync(path, bytes);
    const api = await createEngine({ model: path, storeDir: join(dir, 'store'), contextLength: 96 });
    try {
      const first = await api.completions.create({ prompt: 'The river', max_tokens: 3, temperature: 0 });
      const afterFirst = (await api.stats()).cost;
      await api.completions.create({ prompt: 'The mill', max_tokens: 3, temperature: 0 });
      const { last_request: last, total } = (await api.stats()).cost;
      expect(afterFirst.last_request).toEqual(afterFirst.total);
      expect(last!.prefill.tokens).toBeGreaterThan(0);
      expect(afterFirst.total.prefill.tokens).toBe(first.usage.prompt_tokens - first.usage.cached_prompt_tokens);
      for (const phase of ['prefill', 'decode'] as const) {
        const p = last![phase];
        expect(total[phase].tokens).toBe(afterFirst.total[phase].tokens + p.tokens);
        expect(total[phase].dispatches).toBe(afterFirst.total[phase].dispatches + p.dispatches);
        expect(total[phase].weight_bytes).toBe(afterFirst.total[phase].weight_bytes + p.weight_bytes);
        if (p.tokens > 0) expect(p.per_token.dispatches).toBeCloseTo(p.dispatches / p.tokens, 9);
      }
      if (last!.decode.tokens > 0) {
        expect(last!.decode.per_token).toMatchObject({
          dispatches: DISPATCHES_PER_LAYER * LAYERS + DISPATCHES_OUTSIDE_LAYERS, compute_passes: 1, submissions: 1, round_trips: 1,
          weight_bytes: batchWeightBytes(sizes, 1, true), store_bytes: 0,
        });
      }
    } finally {
      await api.unload();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
