/**
 * The moe_routing extension of the public Node API (src/api/node.ts) on a
 * tiny generated deepseek2 model whose first layer is dense (so MoE rows are
 * layers 1 and 2): it leaves outputs unchanged; its streamed deltas cover
 * exactly the tokens the engine ran (prompt positions after the reused KV
 * prefix, then every fed generated token) with top-k ids per MoE layer;
 * they equal a routing trace the streaming scheduler records for the same
 * request on its own engine (its per-layer readback, not the resident
 * scheduler's copy the API engine reads); under a small expert budget the
 * residency fits the cache and holds what the last token just used; off,
 * no chunk carries it; and stats() names the rows and the residency.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import type { CompletionChunk, EngineStats, MoeRoutingDelta, WebMoeEngine } from '../../src/api/types';
import { Engine } from '../../src/engine/engine';
import type { RoutingTrace } from '../../src/experts/trace';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { acquireTestGpu } from '../gpu/support/gpu';

const dir = mkdtempSync(join(tmpdir(), 'webmoe-routing-'));
const storeDir = join(dir, 'store');
const modelPath = join(dir, 'tiny-deepseek2.gguf');
/** Sampled (not greedy), so equal outputs also say the seed's draws were unchanged. */
const REQUEST = { prompt: 'The river ran past the old mill', max_tokens: 6, temperature: 0.8, seed: 42 };
const CONTEXT = 64;
/** About 4 of the 16 routed experts (8 per MoE layer, 48 KiB each in f32). */
const BUDGET_MB = 0.2;

type Routed = { moe_routing?: MoeRoutingDelta };

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

const textsOf = (chunks: CompletionChunk[]) => chunks.map((c) => c.choices[0]?.text ?? '');
const tokensOf = (chunks: Routed[]) => chunks.flatMap((c) => c.moe_routing?.tokens ?? []);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** Positions the engine ran for a request: the prompt after the reused prefix, then the generated tokens it fed. */
function expectedPositions(usage: { prompt_tokens: number; completion_tokens: number; cached_prompt_tokens: number }, finish: string | null): number[] {
  // Generation that ends on max_tokens samples its last token without feeding it; an end token (no stop strings here) was never pushed.
  const fed = finish === 'length' ? usage.completion_tokens - 1 : usage.completion_tokens;
  return [...range(usage.cached_prompt_tokens, usage.prompt_tokens), ...range(usage.prompt_tokens, usage.prompt_tokens + fed)];
}

function finishOf(chunks: CompletionChunk[]): string | null {
  return chunks.at(-2)!.choices[0].finish_reason;
}

describe('moe_routing through webmoe/node', () => {
  let resident: WebMoeEngine;
  let streamed: WebMoeEngine;
  let bytes: Uint8Array;
  let memory: NonNullable<EngineStats['memory']>;

  beforeAll(async () => {
    bytes = makeTinyModel({ arch: 'deepseek2', seed: 11, layers: 3 });
    writeFileSync(modelPath, bytes);
    resident = await createEngine({ model: modelPath, storeDir, contextLength: CONTEXT });
    streamed = await createEngine({ model: modelPath, storeDir, contextLength: CONTEXT, expertBudgetMB: BUDGET_MB });
    memory = (await resident.stats()).memory!;
  });
  afterAll(async () => {
    await resident?.unload();
    await streamed?.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stats() names the MoE layers, n_expert, top-k and the resident ids', async () => {
    expect(memory).toMatchObject({ moe_layers: [1, 2], experts_per_layer: 8, experts_per_token: 2, resident_experts_per_layer: [0, 8, 8], streaming: false });
    expect(memory.resident_experts).toEqual([range(0, 8), range(0, 8)]);
    const small = (await streamed.stats()).memory!;
    expect(small).toMatchObject({ moe_layers: [1, 2], experts_per_layer: 8, experts_per_token: 2, streaming: true });
    expect(small.expert_slots).toBeLessThan(small.total_experts);
    expect(small.resident_experts.map((ids) => ids.length)).toEqual(small.resident_experts_per_layer.slice(1));
  });

  it('on, the output is the same; the deltas cover exactly the tokens run, with top-k ids per MoE layer; off, no chunk has them', async () => {
    const off = await collect(await resident.completions.create({ ...REQUEST, stream: true }));
    expect(off.some((c) => 'moe_routing' in c)).toBe(false);
    // Same prompt again: its KV cache entries but the last are reused and not run.
    const on = await collect(await resident.completions.create({ ...REQUEST, stream: true, moe_routing: true }));
    expect(textsOf(on)).toEqual(textsOf(off));
    const usage = on.at(-1)!.usage!;
    expect(usage.completion_tokens).toBe(off.at(-1)!.usage!.completion_tokens);
    expect(finishOf(on)).toBe(finishOf(off));
    expect(usage.cached_prompt_tokens).toBe(usage.prompt_tokens - 1);

    const tokens = tokensOf(on);
    expect(tokens.map((t) => t.position)).toEqual(expectedPositions(usage, finishOf(on)));
    for (const t of tokens) {
      expect(t.experts).toHaveLength(memory.moe_layers.length);
      for (const ids of t.experts) {
        expect(ids).toHaveLength(memory.experts_per_token);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < memory.experts_per_layer)).toBe(true);
      }
    }
    // The prompt's routing comes first (on the first chunk), the rest last (on the usage chunk).
    expect(on[0].moe_routing!.tokens[0].position).toBe(usage.prompt_tokens - 1);
    expect(on.at(-1)!.moe_routing).toBeDefined();
    for (const c of on.filter((c) => c.moe_routing)) expect(c.moe_routing!.resident).toEqual(memory.resident_experts);
  });

  it("equals the streaming scheduler's routing trace of the same request, and the streaming engine's own deltas", async () => {
    const gpu = await acquireTestGpu();
    let trace: RoutingTrace;
    let traced: string;
    try {
      const engine = await Engine.load(gpu.device, bytes, { maxContext: CONTEXT, expertBudgetBytes: BUDGET_MB * 2 ** 20 });
      try {
        expect(engine.model.memory().streaming).toBe(true);
        engine.model.startRoutingTrace('reference');
        const result = await engine.generate({ prompt: REQUEST.prompt, maxTokens: REQUEST.max_tokens, sampling: { temperature: REQUEST.temperature, seed: REQUEST.seed } });
        trace = engine.model.takeRoutingTrace()!;
        traced = result.text;
      } finally {
        engine.destroy();
      }
    } finally {
      gpu.device.destroy();
    }
    // A prompt the resident engine has not cached: only its first token (BOS, if any) may be reused.
    await resident.completions.create({ prompt: 'Something else entirely', max_tokens: 1, temperature: 0 });
    const on = await collect(await resident.completions.create({ ...REQUEST, stream: true, moe_routing: true }));
    expect(textsOf(on).join('')).toBe(traced);
    const tokens = tokensOf(on);
    const usage = on.at(-1)!.usage!;
    expect(tokens.map((t) => t.position)).toEqual(expectedPositions(usage, finishOf(on)));
    // The reference engine started empty: it ran the reused prefix too.
    expect(trace.tokens).toHaveLength(usage.cached_prompt_tokens + tokens.length);
    expect(tokens.map((t) => t.experts)).toEqual(tokens.map((t) => trace.tokens[t.position].experts));

    await streamed.completions.create({ prompt: 'Something else entirely', max_tokens: 1, temperature: 0 });
    const small = await collect(await streamed.completions.create({ ...REQUEST, stream: true, moe_routing: true }));
    expect(textsOf(small)).toEqual(textsOf(on));
    expect(tokensOf(small)).toEqual(tokens);
  });

  it('under a small budget, residency fits the cache and holds the experts the last token just used at the last MoE layer', async () => {
    const chunks = await collect(await streamed.completions.create({ ...REQUEST, prompt: 'A miller and his mill', stream: true, moe_routing: true }));
    const slots = (await streamed.stats()).memory!.expert_slots;
    const deltas = chunks.flatMap((c) => (c.moe_routing ? [c.moe_routing] : []));
    expect(deltas.length).toBeGreaterThan(1);
    for (const delta of deltas) {
      expect(delta.resident).toHaveLength(2);
      for (const ids of delta.resident) {
        expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 8)).toBe(true);
      }
      // One cache (one slot layout) serves both MoE layers.
      expect(delta.resident.flat().length).toBeLessThanOrEqual(slots);
      // The last MoE layer's experts stay pinned until its FFN is submitted, and nothing runs after it before the delta.
      const last = delta.tokens.at(-1);
      if (last) expect(delta.resident[1]).toEqual(expect.arrayContaining(last.experts[1]));
    }
    const final = chunks.at(-1)!.moe_routing!;
    expect(final.resident.flat().length).toBeGreaterThan(0);
    // Nothing ran since (no prefetch): stats report the same residency.
    expect((await streamed.stats()).memory!.resident_experts).toEqual(final.resident);
  });

  it('a whole result carries every token, as the same request streamed, and the final residency', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me about the river.' }];
    const request = { messages, max_tokens: 5, temperature: 0 };
    await streamed.chat.completions.create(request);
    // Both reuse the same prefix now.
    const chunks = await collect(await streamed.chat.completions.create({ ...request, stream: true, moe_routing: true }));
    const whole = await streamed.chat.completions.create({ ...request, moe_routing: true });
    expect(whole.choices[0].message.content).toBe(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''));
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks[0].moe_routing!.tokens.length).toBeGreaterThan(0);
    expect(whole.moe_routing!.tokens).toEqual(tokensOf(chunks));
    expect(whole.moe_routing!.resident).toEqual((await streamed.stats()).memory!.resident_experts);
    expect('moe_routing' in (await streamed.chat.completions.create(request))).toBe(false);
  });
});
