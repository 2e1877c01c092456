/**
 * Bad requests through the Node API (createEngine from src/api/node.ts) on
 * a tiny generated model: every malformed request is refused with a typed
 * BAD_REQUEST (a prompt beyond the context with CONTEXT_OVERFLOW) and leaves
 * the engine serving; 100 requests sent at once queue behind each other (the
 * engine service runs one at a time, in arrival order) and all complete,
 * with the bad ones among them refused alone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebMoeError } from '../../src/api/errors';
import { createEngine } from '../../src/api/node';
import type { ChatCompletionRequest, CompletionRequest, WebMoeEngine } from '../../src/api/types';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const dir = mkdtempSync(join(tmpdir(), 'webmoe-bad-requests-'));
const CONTEXT = 64;
const MESSAGES = [{ role: 'user' as const, content: 'Tell me about the river.' }];
const VALID = { prompt: 'The river', max_tokens: 3, temperature: 0 };

/** Requests wrong in one field each (over a valid chat request). */
const BAD: Record<string, unknown>[] = [
  { max_tokens: -1 }, { max_tokens: NaN }, { max_tokens: 'many' }, { max_tokens: 2.5 },
  { temperature: NaN }, { temperature: -1 }, { temperature: Infinity },
  { top_p: 0 }, { top_p: 1.5 }, { stop: '' }, { stop: 'x'.repeat(10_000) }, { stop: Array.from({ length: 100 }, (_, i) => `s${i}`) },
  { messages: [] }, { messages: [{ role: 'wizard', content: 'hi' }] }, { messages: [{ role: 'user', content: 7 }] },
  { messages: [{ role: 'user', content: { text: 'hi' } }] }, { messages: [{ role: 'user', content: null }] }, { messages: [null] },
  { n: 2 }, { n: 0 },
];

async function errorOf(promise: Promise<unknown>): Promise<WebMoeError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(WebMoeError);
  return error as WebMoeError;
}

describe('bad requests through createEngine', () => {
  let engine: WebMoeEngine;
  let reference: string;

  beforeAll(async () => {
    const path = join(dir, 'tiny.gguf');
    writeFileSync(path, makeTinyModel({ arch: 'olmoe', seed: 11, layers: 2 }));
    engine = await createEngine({ model: path, storeDir: join(dir, 'store'), contextLength: CONTEXT });
    reference = (await engine.completions.create(VALID)).choices[0].text;
  });
  afterAll(async () => {
    await engine?.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each malformed request is BAD_REQUEST naming its field; a prompt beyond the context is CONTEXT_OVERFLOW; then a valid one succeeds', async () => {
    for (const bad of BAD) {
      const error = await errorOf(engine.chat.completions.create({ messages: MESSAGES, ...bad } as unknown as ChatCompletionRequest));
      expect(error.code, JSON.stringify(bad).slice(0, 80)).toBe('BAD_REQUEST');
      expect(error.message.startsWith(Object.keys(bad)[0])).toBe(true);
    }
    const long = await errorOf(engine.completions.create({ prompt: 'the river and the mill '.repeat(40), max_tokens: 1 }));
    expect(long.code).toBe('CONTEXT_OVERFLOW');
    const tooMany = await errorOf(engine.completions.create({ prompt: 'The river', max_tokens: 1e12 }));
    expect(tooMany.code).toBe('CONTEXT_OVERFLOW');
    expect((await errorOf(engine.completions.create({ prompt: 42 } as unknown as CompletionRequest))).code).toBe('BAD_REQUEST');
    // max_tokens 0 is allowed: an empty completion that ran nothing.
    expect((await engine.completions.create({ ...VALID, max_tokens: 0 })).choices[0]).toMatchObject({ text: '', finish_reason: 'length' });
    expect((await engine.completions.create(VALID)).choices[0].text).toBe(reference);
    const chat = await engine.chat.completions.create({ messages: MESSAGES, max_tokens: 3, temperature: 0 });
    expect(chat.usage.completion_tokens).toBeGreaterThan(0);
  });

  it('100 requests at once queue and all complete, the bad ones among them refused alone', async () => {
    const before = (await engine.stats()).requests;
    const started = Array.from({ length: 100 }, (_, i) =>
      i % 10 === 9
        ? engine.completions.create({ ...VALID, top_p: 2 })
        : i % 10 === 4
          ? engine.completions.create({ prompt: 'the mill '.repeat(80), max_tokens: 1 })
          : engine.completions.create(VALID),
    );
    const settled = await Promise.allSettled(started);
    const outcomes = settled.map((s) => (s.status === 'fulfilled' ? 'ok' : s.reason instanceof WebMoeError ? s.reason.code : `untyped ${String(s.reason)}`));
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(80);
    expect(outcomes.filter((o) => o === 'BAD_REQUEST')).toHaveLength(10);
    expect(outcomes.filter((o) => o === 'CONTEXT_OVERFLOW')).toHaveLength(10);
    // Greedy and queued: every completed request gives the same text as one alone.
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value.choices[0].text).toBe(reference);
    const after = await engine.completions.create(VALID);
    expect(after.choices[0].text).toBe(reference);
    expect((await engine.stats()).requests).toBe(before + 81);
  });
});
