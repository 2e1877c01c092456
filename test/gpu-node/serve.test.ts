/**
 * `webmoe serve` (src/server) through the official `openai` npm client, as a
 * user's code calls it: greedy results equal a separate engine's on the same
 * request (streamed or not, chat or completion), usage carries the expert
 * telemetry, aborting a stream stops its generation and frees the engine,
 * errors arrive as the client's APIError with webmoe's codes; raw HTTP for
 * what a client library hides (malformed JSON, 404, 405, 413); and the
 * built command started as a process.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import type { WebMoeEngine } from '../../src/api/types';
import { startServer } from '../../src/server/index';
import type { RunningServer } from '../../src/server/index';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const bin = resolve(import.meta.dirname, '../../bin/webmoe.js');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-serve-'));
const modelPath = join(dir, 'tiny.gguf');
const storeDir = join(dir, 'store');
const CONTEXT = 128;
const MESSAGES = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Tell me about the river.' }];

async function apiErrorOf(promise: Promise<unknown>): Promise<APIError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(APIError);
  return error as APIError;
}

describe('webmoe serve', () => {
  let served: WebMoeEngine;
  let reference: WebMoeEngine;
  let server: RunningServer;
  let client: OpenAI;

  beforeAll(async () => {
    writeFileSync(modelPath, makeTinyModel({ arch: 'olmoe', seed: 6, layers: 2 }));
    served = await createEngine({ model: modelPath, storeDir, contextLength: CONTEXT });
    reference = await createEngine({ model: modelPath, storeDir, contextLength: CONTEXT });
    server = await startServer({ engine: served, port: 0 });
    // No retries: a test sees the first answer, as the server gave it.
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await served?.unload();
    await reference?.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds 127.0.0.1 by default and lists the loaded model as OpenAI\'s model object', async () => {
    expect(server.host).toBe('127.0.0.1');
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models).toEqual([{ id: 'tiny.gguf', object: 'model', created: expect.any(Number), owned_by: 'webmoe', architecture: 'olmoe', context_length: CONTEXT }]);
    expect((await client.models.retrieve('tiny.gguf')).id).toBe('tiny.gguf');
    const missing = await apiErrorOf(client.models.retrieve('other'));
    expect([missing.status, missing.code]).toEqual([404, 'MODEL_NOT_FOUND']);
  });

  it('chat.completions: greedy text equals the engine\'s, whole or streamed; usage (with moe) always on whole results, on streams when asked', async () => {
    const expected = await reference.chat.completions.create({ messages: MESSAGES, max_tokens: 8, temperature: 0 });
    const whole = await client.chat.completions.create({ model: 'anything', messages: MESSAGES, max_tokens: 8, temperature: 0 });
    expect(whole.object).toBe('chat.completion');
    expect(whole.model).toBe('tiny.gguf');
    expect(whole.choices[0].message.content).toBe(expected.choices[0].message.content);
    expect(whole.choices[0].finish_reason).toBe(expected.choices[0].finish_reason);
    // The expert counts depend on how much of the prompt each engine's KV cache still held; the token counts do not.
    const usage = whole.usage as unknown as typeof expected.usage;
    expect([usage.prompt_tokens, usage.completion_tokens]).toEqual([expected.usage.prompt_tokens, expected.usage.completion_tokens]);
    expect(usage.moe).toEqual({ ...expected.usage.moe, expert_hits: expect.any(Number), stall_ms: expect.any(Number) });
    expect(usage.moe.expert_hits).toBeGreaterThan(0);

    const plain = [];
    for await (const chunk of await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 8, temperature: 0, stream: true })) plain.push(chunk);
    expect(plain.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(expected.choices[0].message.content);
    expect(plain.every((c) => c.usage === undefined && c.choices.length === 1)).toBe(true);
    expect(plain.at(-1)!.choices[0].finish_reason).toBe(expected.choices[0].finish_reason);

    const withUsage = [];
    const stream = await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) withUsage.push(chunk);
    const last = withUsage.at(-1)!;
    expect(last.choices).toEqual([]);
    const streamedUsage = last.usage as unknown as typeof expected.usage;
    expect(streamedUsage.completion_tokens).toBe(expected.usage.completion_tokens);
    expect(streamedUsage.moe.expert_hits).toBeGreaterThan(0);
    expect(withUsage.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('completions: greedy text equals the engine\'s, whole and streamed', async () => {
    const expected = await reference.completions.create({ prompt: 'The river ran', max_tokens: 6, temperature: 0 });
    const whole = await client.completions.create({ model: 'm', prompt: 'The river ran', max_tokens: 6, temperature: 0 });
    expect(whole.choices[0].text).toBe(expected.choices[0].text);
    expect(whole.usage!.completion_tokens).toBe(expected.usage.completion_tokens);
    let text = '';
    let completionTokens = -1;
    for await (const chunk of await client.completions.create({ model: 'm', prompt: 'The river ran', max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
    expect(text).toBe(expected.choices[0].text);
    expect(completionTokens).toBe(expected.usage.completion_tokens);
  });

  it('aborting a stream through the client stops its generation; the next request is served', async () => {
    const before = (await served.stats()).requests;
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 80, temperature: 0, stream: true }, { signal: controller.signal });
    let chunks = 0;
    // The client ends the loop quietly when its own signal aborts it.
    for await (const _ of stream) if (++chunks === 3) controller.abort();
    expect(chunks).toBeGreaterThanOrEqual(3);
    const expected = await reference.completions.create({ prompt: 'After', max_tokens: 3, temperature: 0 });
    const next = await client.completions.create({ model: 'm', prompt: 'After', max_tokens: 3, temperature: 0 });
    expect(next.choices[0].text).toBe(expected.choices[0].text);
    // The engine counts finished requests only: the aborted one never finished (it would have, with 80 tokens, had it run on).
    const after = await served.stats();
    expect(after.requests).toBe(before + 1);
    expect(after.last_usage!.completion_tokens).toBe(expected.usage.completion_tokens);
  });

  it('errors come back as the client\'s APIError with status, code and param, streamed or not', async () => {
    const negative = await apiErrorOf(client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: -1 }));
    expect([negative.status, negative.code, negative.param, negative.type]).toEqual([400, 'BAD_REQUEST', 'max_tokens', 'invalid_request_error']);
    // Refused before any output: an HTTP error even for a stream, not an event inside one.
    const overflow = await apiErrorOf(client.completions.create({ model: 'm', prompt: 'The river', max_tokens: CONTEXT, stream: true }));
    expect([overflow.status, overflow.code]).toEqual([400, 'CONTEXT_OVERFLOW']);
    expect(overflow.message).toMatch(/exceed the context of 128/);
    const noMessages = await apiErrorOf(client.chat.completions.create({ model: 'm', messages: [] }));
    expect([noMessages.status, noMessages.code]).toEqual([400, 'BAD_REQUEST']);
    const limit = await apiErrorOf(client.completions.create({ model: 'm', prompt: 'x', max_tokens: 5000 }));
    expect([limit.status, limit.code, limit.param]).toEqual([400, 'BAD_REQUEST', 'max_tokens']);
    // The engine is free afterwards.
    expect((await client.completions.create({ model: 'm', prompt: 'x', max_tokens: 1, temperature: 0 })).usage!.completion_tokens).toBe(1);
  });

  it('raw HTTP: malformed JSON 400, unknown route 404, wrong method 405 with Allow, a body too large 413, all in OpenAI\'s error shape', async () => {
    const post = (path: string, body: string) => fetch(`${server.url}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    const malformed = await post('/v1/chat/completions', '{"messages": [');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: { message: expect.stringMatching(/not valid JSON/), type: 'invalid_request_error', param: null, code: 'BAD_REQUEST' } });
    expect((await (await post('/v1/completions', '[1, 2]')).json()).error.code).toBe('BAD_REQUEST');
    const unknown = await fetch(`${server.url}/v2/anything`);
    expect([unknown.status, (await unknown.json()).error.code]).toEqual([404, 'NOT_FOUND']);
    const method = await fetch(`${server.url}/v1/chat/completions`);
    expect([method.status, method.headers.get('allow'), (await method.json()).error.code]).toEqual([405, 'POST', 'METHOD_NOT_ALLOWED']);
    const large = await post('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(1100 * 1024) }));
    expect([large.status, (await large.json()).error.code]).toEqual([413, 'BODY_TOO_LARGE']);
  });

  it('limits: a full queue is 429 QUEUE_FULL; without max_tokens a request gets the limit, or what the context has left', async () => {
    const busy = await startServer({ engine: served, port: 0, maxQueue: 0 });
    const limited = await startServer({ engine: served, port: 0, maxTokensLimit: 3 });
    try {
      const busyClient = new OpenAI({ baseURL: `${busy.url}/v1`, apiKey: 'none', maxRetries: 0 });
      const controller = new AbortController();
      const running = await busyClient.completions.create({ model: 'm', prompt: 'The river', max_tokens: 100, stream: true, temperature: 0 }, { signal: controller.signal });
      const full = await apiErrorOf(busyClient.completions.create({ model: 'm', prompt: 'x', max_tokens: 1 }));
      expect([full.status, full.code, full.type]).toEqual([429, 'QUEUE_FULL', 'rate_limit_error']);
      controller.abort();
      for await (const _ of running) { /* ends at the abort */ }

      const limitedClient = new OpenAI({ baseURL: `${limited.url}/v1`, apiKey: 'none', maxRetries: 0 });
      const unbounded = await limitedClient.completions.create({ model: 'm', prompt: 'The river', temperature: 0 });
      expect(unbounded.usage!.completion_tokens).toBeLessThanOrEqual(3);
      expect(unbounded.choices[0].finish_reason === 'length').toBe(unbounded.usage!.completion_tokens === 3);
      // A prompt a token or two short of the context: what is left, where asking for 3 would overflow.
      let prompt = 'a';
      while ((await reference.tokenize(prompt)).length < CONTEXT - 2) prompt += ' a';
      const promptTokens = (await reference.tokenize(prompt)).length;
      expect(promptTokens).toBeLessThanOrEqual(CONTEXT - 1);
      const tail = await limitedClient.completions.create({ model: 'm', prompt, temperature: 0 });
      expect(tail.usage!.prompt_tokens).toBe(promptTokens);
      expect(tail.usage!.completion_tokens).toBeLessThanOrEqual(CONTEXT - promptTokens);
      expect(tail.choices[0].finish_reason === 'length').toBe(tail.usage!.completion_tokens === CONTEXT - promptTokens);
    } finally {
      await busy.close();
      await limited.close();
    }
  });

  it('the command: webmoe serve --port 0 prints where it listens, serves the openai client, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--model', modelPath, '--port', '0', '--context', String(CONTEXT), '--quiet'], {
      env: { ...process.env, WEBMOE_STORE: storeDir },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', () => {
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
          if (match) resolve(match[1]);
        });
        void exited.then(() => reject(new Error(`webmoe serve exited: ${stderr}`)));
      });
      const cliClient = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
      const expected = await reference.chat.completions.create({ messages: MESSAGES, max_tokens: 4, temperature: 0 });
      const got = await cliClient.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 4, temperature: 0 });
      expect(got.choices[0].message.content).toBe(expected.choices[0].message.content);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr).toBe(0);
    expect(stderr).toMatch(/SIGTERM: stopping\n.*stopped/);
  });
});
