/**
 * Malformed requests to the OpenAI-shaped API (src/api/openai.ts) over a
 * fake engine service: each is refused with a typed BAD_REQUEST whose
 * message starts with the field it is about (the server reads the field from
 * there) before anything reaches the engine, engine-side refusals keep their
 * codes (CONTEXT_OVERFLOW, a chat template's failure as BAD_REQUEST), and a
 * valid request after all of them still succeeds.
 */
import { describe, expect, it } from 'vitest';
import { WebMoeError } from '../../../src/api/errors';
import { MAX_STOP_LENGTH, MAX_STOP_STRINGS, createClient } from '../../../src/api/openai';
import type { ChatCompletionRequest, CompletionRequest } from '../../../src/api/types';
import { zeroRequestCost } from '../../../src/engine/engine';
import { ContextOverflowError } from '../../../src/engine/errors';
import type { EngineServiceApi, ServiceRequest, ServiceResult } from '../../../src/engine/service-types';
import { ChatTemplateError } from '../../../src/text/errors';

/** A service that answers "ok" unless told to fail the next request. */
class FakeCore implements EngineServiceApi {
  requests: ServiceRequest[] = [];
  failNext: unknown;

  async load() {
    return { model: 'fake', architecture: 'olmoe' };
  }
  async generate(_id: number, request: ServiceRequest): Promise<ServiceResult> {
    this.requests.push(request);
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    return {
      promptTokens: 3, completionTokens: 1, cachedPromptTokens: 0, text: 'ok', finishReason: 'stop',
      stats: {
        prefillTokPerS: 1, decodeTokPerS: 1, expertHits: 0, expertMisses: 0, prefetchPrecision: 0, prefetchRecall: 0,
        bytesStreamed: 0, stallMs: 0, expertLayers: [], cost: zeroRequestCost(),
        gpuHits: 0, hostHits: 0, storeReads: 0, storeBytes: 0, hostWarmReads: 0, hostBudgetBytes: 0, hostHeldBytes: 0,
      },
    };
  }
  abort() {}
  async tokenize() {
    return [];
  }
  async detokenize() {
    return '';
  }
  async useStore() {}
  async listModels() {
    return [];
  }
  async deleteModel() {
    return false;
  }
  async importModel(): Promise<never> {
    throw new Error('unused');
  }
  async stats(): Promise<never> {
    throw new Error('unused');
  }
  async unload() {}
  async simulateDeviceLoss() {}
}

const MESSAGES = [{ role: 'user' as const, content: 'hi' }];

/** Field → requests that are wrong in it (merged over a valid chat request). */
const BAD_CHAT: [string, Record<string, unknown>][] = [
  ['max_tokens', { max_tokens: -1 }],
  ['max_tokens', { max_tokens: 1.5 }],
  ['max_tokens', { max_tokens: NaN }],
  ['max_tokens', { max_tokens: Infinity }],
  ['max_tokens', { max_tokens: '5' }],
  ['max_tokens', { max_tokens: 2 ** 60 }],
  ['max_completion_tokens', { max_completion_tokens: -3 }],
  ['temperature', { temperature: NaN }],
  ['temperature', { temperature: -0.5 }],
  ['temperature', { temperature: Infinity }],
  ['temperature', { temperature: '1' }],
  ['top_p', { top_p: 0 }],
  ['top_p', { top_p: 1.01 }],
  ['top_p', { top_p: -1 }],
  ['top_p', { top_p: NaN }],
  ['top_k', { top_k: -1 }],
  ['top_k', { top_k: 2.5 }],
  ['min_p', { min_p: 2 }],
  ['repetition_penalty', { repetition_penalty: 0 }],
  ['repetition_penalty', { repetition_penalty: NaN }],
  ['seed', { seed: 0.5 }],
  ['seed', { seed: 'abc' }],
  ['stop', { stop: '' }],
  ['stop', { stop: [''] }],
  ['stop', { stop: 'x'.repeat(10_000) }],
  ['stop', { stop: Array.from({ length: MAX_STOP_STRINGS + 1 }, (_, i) => `s${i}`) }],
  ['stop', { stop: [3] }],
  ['stop', { stop: { text: 'x' } }],
  ['n', { n: 2 }],
  ['n', { n: 0 }],
  ['n', { n: '1' }],
  ['stream', { stream: 'yes' }],
  ['moe_routing', { moe_routing: 1 }],
  ['ignore_eos', { ignore_eos: 'true' }],
  ['messages', { messages: [] }],
  ['messages', { messages: 'hi' }],
  ['messages', { messages: null }],
  ['messages[0]', { messages: [null] }],
  ['messages[0]', { messages: ['hi'] }],
  ['messages[1].role', { messages: [...MESSAGES, { role: 'wizard', content: 'x' }] }],
  ['messages[0].role', { messages: [{ role: 7, content: 'x' }] }],
  ['messages[0].role', { messages: [{ content: 'x' }] }],
  ['messages[0].content', { messages: [{ role: 'user', content: 42 }] }],
  ['messages[0].content', { messages: [{ role: 'user', content: { text: 'x' } }] }],
  ['messages[0].content', { messages: [{ role: 'user', content: null }] }],
  ['messages[0].content', { messages: [{ role: 'user' }] }],
];

const BAD_COMPLETION: [string, Record<string, unknown>][] = [
  ['prompt', { prompt: 42 }],
  ['prompt', { prompt: null }],
  ['prompt', { prompt: ['a', 'b'] }],
  ['max_tokens', { prompt: 'x', max_tokens: -1 }],
  ['top_p', { prompt: 'x', top_p: 2 }],
  ['stream', { prompt: 'x', stream: 1 }],
];

async function rejection(promise: Promise<unknown>): Promise<WebMoeError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(WebMoeError);
  return error as WebMoeError;
}

describe('bad requests', () => {
  it.each(BAD_CHAT)('chat: %s %j is BAD_REQUEST naming the field, and nothing runs', async (field, bad) => {
    const core = new FakeCore();
    const engine = createClient(core, 'fake');
    const error = await rejection(engine.chat.completions.create({ messages: MESSAGES, ...bad } as unknown as ChatCompletionRequest));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message.startsWith(`${field} `), error.message).toBe(true);
    expect(error.details.field).toBe(field);
    // Long values are cut short in the message.
    expect(error.message.length).toBeLessThan(200);
    expect(core.requests).toEqual([]);
  });

  it.each(BAD_COMPLETION)('completions: %s %j is BAD_REQUEST naming the field', async (field, bad) => {
    const core = new FakeCore();
    const error = await rejection(createClient(core, 'fake').completions.create(bad as unknown as CompletionRequest));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message.startsWith(`${field} `), error.message).toBe(true);
    expect(core.requests).toEqual([]);
  });

  it('accepts the edges of every range: max_tokens 0, temperature 0, top_p 1, stop strings at their limits, every role', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'fake');
    const stop = Array.from({ length: MAX_STOP_STRINGS }, (_, i) => `${i}`.padEnd(MAX_STOP_LENGTH, 'x'));
    const roles = ['system', 'user', 'assistant', 'tool', 'developer'] as const;
    const messages = roles.map((role) => ({ role, content: '' }));
    const c = await engine.chat.completions.create({ messages, max_tokens: 0, temperature: 0, top_p: 1, min_p: 0, top_k: 0, stop, n: 1, stream: false, seed: null });
    expect(c.choices[0].message.content).toBe('ok');
    expect(core.requests[0]).toMatchObject({ maxTokens: 0, sampling: { temperature: 0, topP: 1, minP: 0, topK: 0 }, stop });
  });

  it('engine-side refusals keep their codes, and the next valid request succeeds', async () => {
    const core = new FakeCore();
    const engine = createClient(core, 'fake');
    const cases: [unknown, string][] = [
      [new ContextOverflowError(5000, 10, 4096), 'CONTEXT_OVERFLOW'],
      [new ChatTemplateError('limit', 'the chat template failed to render: the template ran more than 20000000 steps'), 'BAD_REQUEST'],
      [new ChatTemplateError('render', 'the chat template failed to render: undefined is not iterable'), 'BAD_REQUEST'],
      [new ChatTemplateError('refused', 'the chat template refuses this conversation: no', 'no'), 'BAD_REQUEST'],
      [new ChatTemplateError('parse', 'the chat template does not parse'), 'UNSUPPORTED_MODEL'],
    ];
    for (const [failure, code] of cases) {
      core.failNext = failure;
      const streamed = await engine.chat.completions.create({ messages: MESSAGES, stream: true });
      const error = await rejection((async () => {
        for await (const chunk of streamed) void chunk;
      })());
      expect(error.code, String(failure)).toBe(code);
      const whole = await engine.chat.completions.create({ messages: MESSAGES, max_tokens: 2 });
      expect(whole.choices[0].message.content).toBe('ok');
    }
  });
});
