/**
 * The OpenAI shaping of the public API (src/api/openai.ts) over a fake
 * engine service: chunks, finish_reason, usage, request mapping, abort, typed
 * errors, errors crossing a comlink boundary with their code, and the
 * moe_routing extension spread over chunks.
 */
import * as Comlink from 'comlink';
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { EngineServiceApi, ServiceDelta, ServiceRequest, ServiceResult } from '../../../src/engine/service-types';
import { WebMoeError, toWebMoeError } from '../../../src/api/errors';
import { createClient } from '../../../src/api/openai';
import type { ChatCompletionChunk, CompletionChunk, MoeRoutingDelta } from '../../../src/api/types';
import type { RoutingDelta } from '../../../src/engine/routing';
import { installErrorTransfer } from '../../../src/worker/transfer';
import { ContextOverflowError } from '../../../src/engine/errors';
import { zeroRequestCost } from '../../../src/engine/engine';
import { GgufError } from '../../../src/gguf/errors';
import { UnsupportedArchitectureError } from '../../../src/models/registry';
import { StoreError } from '../../../src/store/errors';
import { GpuUnavailableError } from '../../../src/gpu/errors';

const PIECES = ['Hel', 'lo', '', ' wor', 'ld'];
const PROMPT_POSITIONS = [0, 1, 2];

/** The routing of the tokens at `positions` (one MoE layer), with `resident` as the residency. */
function routingOf(positions: number[], resident: number): RoutingDelta {
  return { tokens: positions.map((position) => ({ position, experts: [[position % 4, 4]] })), resident: [[resident]] };
}

/** A service that "generates" PIECES, one per 5 ms, and records what it was asked. */
class FakeCore implements EngineServiceApi {
  requests: ServiceRequest[] = [];
  aborted: number[] = [];
  failWith: unknown;
  finishReason: 'stop' | 'length' = 'stop';
  unloaded = false;

  async load() {
    return { model: 'fake-model', architecture: 'olmoe' };
  }
  async generate(id: number, request: ServiceRequest, onDelta?: (d: ServiceDelta) => void): Promise<ServiceResult> {
    this.requests.push(request);
    if (this.failWith) throw this.failWith;
    let text = '';
    for (const [i, piece] of PIECES.entries()) {
      await new Promise((r) => setTimeout(r, 5));
      if (this.aborted.includes(id)) throw new Error('aborted inside');
      text += piece;
      // As the service does: the prompt's routing with the first token, each fed token's with the next, the last one's in the result.
      const routing = request.moeRouting ? { routing: routingOf(i === 0 ? PROMPT_POSITIONS : [PROMPT_POSITIONS.length + i - 1], i) } : {};
      onDelta?.({ token: i, text: piece, ...routing });
    }
    return {
      ...(request.moeRouting ? { routing: routingOf([PROMPT_POSITIONS.length + PIECES.length - 1], 9) } : {}),
      promptTokens: 7, completionTokens: PIECES.length, cachedPromptTokens: 2, text, finishReason: this.finishReason,
      stats: {
        prefillTokPerS: 100, decodeTokPerS: 50, expertHits: 30, expertMisses: 10, prefetchPrecision: 0.5, prefetchRecall: 0.25,
        bytesStreamed: 4096, stallMs: 3, expertLayers: [], cost: zeroRequestCost(),
        gpuHits: 30, hostHits: 6, storeReads: 5, storeBytes: 2560, hostWarmReads: 1, hostBudgetBytes: 8192, hostHeldBytes: 4096,
      },
    };
  }
  abort(id: number) {
    this.aborted.push(id);
  }
  async tokenize(text: string) {
    return [...text].map((c) => c.charCodeAt(0));
  }
  async detokenize(tokens: number[]) {
    return String.fromCharCode(...tokens);
  }
  async useStore() {}
  async listModels() {
    return [];
  }
  async deleteModel() {
    return true;
  }
  async importModel(): Promise<never> {
    throw new StoreError('QUOTA_EXCEEDED', 'no room', { neededBytes: 10, availableBytes: 1 });
  }
  async stats(): Promise<never> {
    throw new Error('unused');
  }
  async unload() {
    this.unloaded = true;
  }
  async simulateDeviceLoss() {}
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

const MESSAGES = [{ role: 'user' as const, content: 'hi' }];

describe('chat.completions.create', () => {
  it('without stream: one chat.completion with the text, finish_reason and usage with MoE telemetry', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'fake-model');
    const c = await engine.chat.completions.create({ messages: MESSAGES, max_tokens: 5, temperature: 0 });
    expect(c.object).toBe('chat.completion');
    expect(c.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(c.model).toBe('fake-model');
    expect(c.created).toBeCloseTo(Date.now() / 1000, -1);
    expect(c.choices).toEqual([{ index: 0, message: { role: 'assistant', content: 'Hello world' }, finish_reason: 'stop', logprobs: null }]);
    expect(c.usage).toEqual({
      prompt_tokens: 7, completion_tokens: 5, total_tokens: 12, cached_prompt_tokens: 2, prefill_tokens_per_s: 100, decode_tokens_per_s: 50,
      moe: { expert_hits: 30, expert_misses: 10, hit_rate: 0.75, prefetch_precision: 0.5, prefetch_recall: 0.25, bytes_streamed: 4096, stall_ms: 3,
        host_hits: 6, store_reads: 5, store_bytes: 2560, host_budget_bytes: 8192 },
    });
    expect(core.requests[0]).toEqual({ messages: MESSAGES, maxTokens: 5, sampling: { temperature: 0 }, stop: [] });
  });

  it('with stream: a role chunk, one chunk per non-empty delta, a finish_reason chunk, then a usage chunk', async () => {
    const core = new FakeCore();
    core.finishReason = 'length';
    const engine = createClient(core, 'fake-model');
    const chunks: ChatCompletionChunk[] = await collect(await engine.chat.completions.create({ messages: MESSAGES, stream: true }));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.model === 'fake-model')).toBe(true);
    expect(chunks[0].choices).toEqual([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]);
    const deltas = chunks.slice(1, -2);
    expect(deltas.map((c) => c.choices[0].delta.content)).toEqual(['Hel', 'lo', ' wor', 'ld']);
    expect(deltas.every((c) => c.choices[0].finish_reason === null && c.usage === undefined)).toBe(true);
    expect(chunks.at(-2)!.choices).toEqual([{ index: 0, delta: {}, finish_reason: 'length', logprobs: null }]);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 5, total_tokens: 12, moe: { expert_misses: 10 } });
  });

  it('maps OpenAI sampling fields, defaults temperature to 1 and rejects what it cannot do', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    await engine.chat.completions.create({ messages: MESSAGES, max_completion_tokens: 3, top_p: 0.9, seed: 42, stop: 'END', top_k: 40, repetition_penalty: 1.1 });
    expect(core.requests[0]).toEqual({
      messages: MESSAGES, maxTokens: 3, stop: ['END'], sampling: { temperature: 1, topP: 0.9, seed: 42, topK: 40, repeatPenalty: 1.1 },
    });
    for (const bad of [{ n: 2 }, { max_tokens: -1 }, { max_tokens: 1.5 }, { stop: [''] }, { messages: [] }]) {
      const error = await engine.chat.completions.create({ messages: MESSAGES, ...bad }).catch((e) => e);
      expect(error, JSON.stringify(bad)).toBeInstanceOf(WebMoeError);
      expect(error.code).toBe('BAD_REQUEST');
    }
    expect(core.requests).toHaveLength(1);
  });

  it('abort mid-stream: the core is told within the request, the stream throws ABORTED', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    const controller = new AbortController();
    const stream = await engine.chat.completions.create({ messages: MESSAGES, stream: true, signal: controller.signal });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta.content;
        if (text) seen.push(text);
        if (seen.length === 1) controller.abort();
      }
    })().catch((e) => e);
    expect(error).toBeInstanceOf(WebMoeError);
    expect(error.code).toBe('ABORTED');
    expect(core.aborted).toEqual([1]);
    expect(seen.length).toBeLessThan(PIECES.length - 1);
  });

  it('an already aborted signal rejects at once without running anything; a non-streamed abort rejects ABORTED', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    const error = await engine.chat.completions.create({ messages: MESSAGES, signal: AbortSignal.abort() }).catch((e) => e);
    expect(error.code).toBe('ABORTED');
    expect(core.requests).toHaveLength(0);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 8);
    const later = await engine.chat.completions.create({ messages: MESSAGES, signal: controller.signal }).catch((e) => e);
    expect(later.code).toBe('ABORTED');
  });

  it('leaving a stream early aborts its request', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    for await (const chunk of await engine.chat.completions.create({ messages: MESSAGES, stream: true })) {
      if (chunk.choices[0]?.delta.content) break;
    }
    expect(core.aborted).toEqual([1]);
  });

  it('engine failures arrive as WebMoeErrors with their code, streamed or not', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    core.failWith = new ContextOverflowError(10, 100, 64);
    const error = await engine.chat.completions.create({ messages: MESSAGES }).catch((e) => e);
    expect(error).toBeInstanceOf(WebMoeError);
    expect(error.code).toBe('CONTEXT_OVERFLOW');
    expect(error.message).toMatch(/context of 64/);
    const streamed = await collect(await engine.chat.completions.create({ messages: MESSAGES, stream: true })).catch((e) => e);
    expect(streamed.code).toBe('CONTEXT_OVERFLOW');
    const quota = await engine.models.import(new Uint8Array(4)).catch((e) => e);
    expect(quota.code).toBe('QUOTA_EXCEEDED');
    expect(quota.details).toMatchObject({ neededBytes: 10, availableBytes: 1 });
  });
});

describe('completions.create and the rest', () => {
  it('text_completion objects, streamed and whole', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    const whole = await engine.completions.create({ prompt: 'Once', max_tokens: 5, temperature: 0 });
    expect(whole.object).toBe('text_completion');
    expect(whole.id).toMatch(/^cmpl-/);
    expect(whole.choices).toEqual([{ index: 0, text: 'Hello world', finish_reason: 'stop', logprobs: null }]);
    expect(core.requests[0].prompt).toBe('Once');
    const chunks: CompletionChunk[] = await collect(await engine.completions.create({ prompt: 'Once', stream: true }));
    expect(chunks.slice(0, -2).map((c) => c.choices[0].text).join('')).toBe('Hello world');
    expect(chunks.at(-2)!.choices[0]).toMatchObject({ text: '', finish_reason: 'stop' });
    expect(chunks.at(-1)!.usage!.total_tokens).toBe(12);
  });

  it('models, tokenize, and unload after which every call is UNLOADED', async () => {
    const core = new FakeCore();
    let ended = false;
    const engine = createClient(core, 'm', { afterUnload: () => (ended = true) });
    expect(await engine.models.list()).toEqual({ object: 'list', data: [] });
    expect(await engine.models.delete('x')).toEqual({ id: 'x', object: 'model', deleted: true });
    expect(await engine.tokenize('ab')).toEqual([97, 98]);
    await engine.unload();
    expect(core.unloaded && ended).toBe(true);
    expect((await engine.tokenize('a').catch((e) => e)).code).toBe('UNLOADED');
    expect((await engine.chat.completions.create({ messages: MESSAGES }).catch((e) => e)).code).toBe('UNLOADED');
  });
});

describe('ignore_eos', () => {
  it('asks the engine to run past end-of-generation tokens only when set', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    await engine.completions.create({ prompt: 'Once', max_tokens: 4, ignore_eos: true });
    await engine.completions.create({ prompt: 'Once', max_tokens: 4 });
    await engine.chat.completions.create({ messages: MESSAGES, ignore_eos: false });
    expect(core.requests.map((r) => r.ignoreEos)).toEqual([true, undefined, undefined]);
  });
});

describe('moe_routing', () => {
  const ALL_POSITIONS = [0, 1, 2, 3, 4, 5, 6, 7];
  const positionsOf = (chunks: { moe_routing?: MoeRoutingDelta }[]) => chunks.flatMap((c) => c.moe_routing?.tokens.map((t) => t.position) ?? []);

  it('streamed chat: the prompt on the role chunk, each token on the next chunk, the rest and the final residency on the usage chunk', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    const chunks = await collect(await engine.chat.completions.create({ messages: MESSAGES, stream: true, moe_routing: true }));
    expect(core.requests[0].moeRouting).toBe(true);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks[0].moe_routing).toEqual(routingOf(PROMPT_POSITIONS, 0));
    expect(chunks.map((c) => c.moe_routing?.tokens.map((t) => t.position) ?? null)).toEqual([[0, 1, 2], null, [3], [4, 5], [6], null, [7]]);
    expect(chunks.at(-1)!.usage).toBeDefined();
    expect(chunks.at(-1)!.moe_routing).toEqual(routingOf([7], 9));
  });

  it('a reader that falls behind still gets every token exactly once, in order', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    const stream = await engine.completions.create({ prompt: 'Once', stream: true, moe_routing: true });
    await new Promise((r) => setTimeout(r, 60));
    const chunks = await collect(stream);
    expect(positionsOf(chunks)).toEqual(ALL_POSITIONS);
    expect(chunks.at(-1)!.moe_routing!.resident).toEqual([[9]]);
  });

  it('whole results carry every token and the final residency; off, nothing carries moe_routing', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'm');
    const whole = await engine.chat.completions.create({ messages: MESSAGES, moe_routing: true });
    expect(positionsOf([whole])).toEqual(ALL_POSITIONS);
    expect(whole.moe_routing!.tokens[3].experts).toEqual([[3, 4]]);
    expect(whole.moe_routing!.resident).toEqual([[9]]);
    expect(positionsOf([await engine.completions.create({ prompt: 'Once', moe_routing: true })])).toEqual(ALL_POSITIONS);

    const off = await engine.completions.create({ prompt: 'Once', moe_routing: false });
    expect('moe_routing' in off).toBe(false);
    const chunks = await collect(await engine.chat.completions.create({ messages: MESSAGES, stream: true, moe_routing: null }));
    expect(chunks.some((c) => 'moe_routing' in c)).toBe(false);
    expect(core.requests.slice(2).map((r) => r.moeRouting)).toEqual([undefined, undefined]);
    const error = await engine.completions.create({ prompt: 'Once', moe_routing: 'yes' as unknown as boolean }).catch((e) => e);
    expect(error.code).toBe('BAD_REQUEST');
  });
});

describe('WebMoeError', () => {
  it('maps the internal errors to stable codes', () => {
    expect(toWebMoeError(new GgufError('BAD_MAGIC', 'magic', 0, 'not GGUF')).code).toBe('BAD_GGUF');
    expect(toWebMoeError(new UnsupportedArchitectureError('mamba')).code).toBe('UNSUPPORTED_ARCH');
    expect(toWebMoeError(new UnsupportedArchitectureError('mamba')).details.architecture).toBe('mamba');
    expect(toWebMoeError(new StoreError('MODEL_NOT_FOUND', 'x')).code).toBe('MODEL_NOT_FOUND');
    expect(toWebMoeError(new GpuUnavailableError('NO_WEBGPU', 'none')).code).toBe('NO_WEBGPU');
    expect(toWebMoeError(new DOMException('stop', 'AbortError')).code).toBe('ABORTED');
    expect(toWebMoeError(new TypeError('oops')).code).toBe('INTERNAL');
    expect(toWebMoeError('a string').code).toBe('INTERNAL');
  });

  it('crosses a comlink boundary as a WebMoeError with code and details', async () => {
    installErrorTransfer();
    const { port1, port2 } = new MessageChannel();
    Comlink.expose({ fail: () => { throw new StoreError('QUOTA_EXCEEDED', 'full', { neededBytes: 5 }); } }, port1 as unknown as Comlink.Endpoint);
    const remote = Comlink.wrap<{ fail(): void }>(port2 as unknown as Comlink.Endpoint);
    const error = await remote.fail().catch((e: unknown) => e);
    port1.close();
    port2.close();
    expect(error).toBeInstanceOf(WebMoeError);
    expect((error as WebMoeError).code).toBe('QUOTA_EXCEEDED');
    expect((error as WebMoeError).details.neededBytes).toBe(5);
    expect((error as WebMoeError).message).toMatch(/full/);
  });
});
