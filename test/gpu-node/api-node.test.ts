/**
 * The public API in Node (src/api/node.ts, exported as `webmoe/node`) end to
 * end on a tiny generated model: streamed and whole greedy completions agree,
 * abort stops a stream and leaves the engine usable, a Blob is imported into
 * the filesystem store and listed, device loss is reported and recovered
 * from, and bad models fail with typed errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebMoeError } from '../../src/api/errors';
import { createEngine } from '../../src/api/node';
import type { ChatCompletionChunk, DeviceLostInfo, LoadProgress, WebMoeEngine } from '../../src/api/types';
import { readGguf, tensorDataRange } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { kvString, writeGguf } from '../../src/gguf/writer';
import { GgmlType } from '../../src/quant/formats';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const dir = mkdtempSync(join(tmpdir(), 'webmoe-api-'));
const storeDir = join(dir, 'store');
const modelPath = join(dir, 'tiny.gguf');
const MESSAGES = [{ role: 'user' as const, content: 'Tell me about the river.' }];

async function withArchitecture(bytes: Uint8Array, arch: string): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const metadata = [...file.metadata.values()].map((kv) => (kv.key === 'general.architecture' ? kvString(kv.key, arch) : kv));
  const tensors = file.tensors.map((t) => {
    const { offset, length } = tensorDataRange(file, t);
    return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
  });
  return writeGguf({ version: file.version, alignment: file.alignment, metadata, tensors });
}

async function errorOf(promise: Promise<unknown>): Promise<WebMoeError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(WebMoeError);
  return error as WebMoeError;
}

describe('webmoe/node createEngine', () => {
  let bytes: Uint8Array;
  let engine: WebMoeEngine;
  const progress: LoadProgress[] = [];
  const losses: DeviceLostInfo[] = [];

  beforeAll(async () => {
    bytes = makeTinyModel({ arch: 'olmoe', seed: 5, layers: 2 });
    writeFileSync(modelPath, bytes);
    engine = await createEngine({ model: modelPath, storeDir, contextLength: 96, onProgress: (p) => progress.push(p), onDeviceLost: (i) => losses.push(i) });
  });
  afterAll(async () => {
    await engine?.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads a GGUF path with progress; greedy stream and non-stream give the same text and usage', async () => {
    expect(progress.some((p) => p.phase === 'load' && /loaded olmoe/.test(p.text))).toBe(true);
    const whole = await engine.chat.completions.create({ messages: MESSAGES, max_tokens: 8, temperature: 0 });
    expect(whole.choices[0].message.content.length).toBeGreaterThan(0);
    expect(whole.usage.completion_tokens).toBeGreaterThan(0);
    expect(whole.usage.total_tokens).toBe(whole.usage.prompt_tokens + whole.usage.completion_tokens);
    expect(whole.usage.moe.expert_hits + whole.usage.moe.expert_misses).toBeGreaterThan(0);

    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of await engine.chat.completions.create({ messages: MESSAGES, max_tokens: 8, temperature: 0, stream: true })) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0].message.content);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(whole.usage.completion_tokens);

    const completion = await engine.completions.create({ prompt: 'The river', max_tokens: 4, temperature: 0 });
    expect(completion.usage.completion_tokens).toBeLessThanOrEqual(4);
    expect(await engine.tokenize('The river')).toEqual(expect.arrayContaining([expect.any(Number)]));
    const stats = await engine.stats();
    expect(stats).toMatchObject({ model: modelPath, architecture: 'olmoe', context_length: 96, requests: 3, device_losses: 0 });
    expect(stats.last_usage!.completion_tokens).toBe(completion.usage.completion_tokens);
  });

  it('abort stops a stream within a token with ABORTED; the next request is unaffected', async () => {
    const reference = await engine.completions.create({ prompt: 'Once upon', max_tokens: 6, temperature: 0 });
    const controller = new AbortController();
    let pieces = 0;
    const error = await errorOf((async () => {
      for await (const chunk of await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stream: true, signal: controller.signal })) {
        if (chunk.choices[0]?.text) pieces++;
        if (pieces === 1) controller.abort();
      }
    })());
    expect(error.code).toBe('ABORTED');
    expect(pieces).toBeLessThanOrEqual(2);
    const again = await engine.completions.create({ prompt: 'Once upon', max_tokens: 6, temperature: 0 });
    expect(again.choices[0].text).toBe(reference.choices[0].text);
  });

  it('device loss is reported and the next request recreates the device and reloads the model', async () => {
    const before = await engine.completions.create({ prompt: 'The mill', max_tokens: 5, temperature: 0 });
    await engine.simulateDeviceLoss();
    expect(losses).toHaveLength(1);
    expect((await engine.stats()).device_losses).toBe(1);
    const after = await engine.completions.create({ prompt: 'The mill', max_tokens: 5, temperature: 0 });
    expect(after.choices[0].text).toBe(before.choices[0].text);
  });

  it('a device lost during a request fails it with DEVICE_LOST; the next request recovers', async () => {
    const reference = await engine.completions.create({ prompt: 'The old mill', max_tokens: 5, temperature: 0 });
    const error = await errorOf((async () => {
      let pieces = 0;
      for await (const chunk of await engine.completions.create({ prompt: 'The old mill', max_tokens: 30, temperature: 0, stream: true })) {
        if (chunk.choices[0]?.text && ++pieces === 1) await engine.simulateDeviceLoss();
      }
    })());
    expect(error.code).toBe('DEVICE_LOST');
    expect(losses).toHaveLength(2);
    const after = await engine.completions.create({ prompt: 'The old mill', max_tokens: 5, temperature: 0 });
    expect(after.choices[0].text).toBe(reference.choices[0].text);
  });

  it('a Blob is imported into the filesystem store, listed, loadable by id, and deleted', async () => {
    const blobEngine = await createEngine({ model: new Blob([bytes as Uint8Array<ArrayBuffer>]), modelId: 'tiny-olmoe', storeDir, contextLength: 64 });
    try {
      const list = await blobEngine.models.list();
      expect(list.data.map((m) => [m.id, m.object, m.architecture, m.state])).toEqual([['tiny-olmoe', 'model', 'olmoe', 'complete']]);
      const text = (await blobEngine.completions.create({ prompt: 'The mill', max_tokens: 5, temperature: 0 })).choices[0].text;
      const byId = await createEngine({ model: 'tiny-olmoe', storeDir, contextLength: 64 });
      expect((await byId.completions.create({ prompt: 'The mill', max_tokens: 5, temperature: 0 })).choices[0].text).toBe(text);
      await byId.unload();
      expect(await blobEngine.models.delete('tiny-olmoe')).toEqual({ id: 'tiny-olmoe', object: 'model', deleted: true });
      expect((await blobEngine.models.list()).data).toEqual([]);
    } finally {
      await blobEngine.unload();
    }
    expect((await errorOf(blobEngine.tokenize('x'))).code).toBe('UNLOADED');
  });

  it('gpt-oss streams its experts (with their biases) from the store under a small budget, with the tokens of the resident file', async () => {
    const gptOss = makeTinyModel({ arch: 'gpt-oss', type: 'mxfp4', seed: 7, layers: 2, experts: 16 });
    const request = { prompt: 'The mill', max_tokens: 8, temperature: 0 };
    const resident = await createEngine({ model: new Blob([gptOss as Uint8Array<ArrayBuffer>]), modelId: 'tiny-gpt-oss', storeDir, contextLength: 64 });
    let expected: string;
    try {
      expected = (await resident.completions.create(request)).choices[0].text;
    } finally {
      await resident.unload();
    }
    // About 4 of the 32 experts' slots (a tiny gpt-oss MXFP4 expert is a few KiB).
    const streamed = await createEngine({ model: 'tiny-gpt-oss', storeDir, contextLength: 64, expertBudgetMB: 0.02 });
    try {
      const reply = await streamed.completions.create(request);
      expect(reply.choices[0].text).toBe(expected);
      expect(reply.usage.moe.expert_misses).toBeGreaterThan(0);
      expect(reply.usage.moe.bytes_streamed).toBeGreaterThan(0);
      const memory = (await streamed.stats()).memory!;
      expect(memory.streaming).toBe(true);
      expect(memory.expert_slots).toBeLessThan(memory.total_experts);
      expect(await streamed.models.delete('tiny-gpt-oss')).toMatchObject({ deleted: true });
    } finally {
      await streamed.unload();
    }
  });

  it('typed errors: a truncated file is BAD_GGUF, an unknown architecture UNSUPPORTED_ARCH, an unknown id MODEL_NOT_FOUND', async () => {
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, bytes.subarray(0, 200));
    expect((await errorOf(createEngine({ model: bad, storeDir }))).code).toBe('BAD_GGUF');
    const mamba = join(dir, 'mamba.gguf');
    writeFileSync(mamba, await withArchitecture(bytes, 'mamba'));
    const arch = await errorOf(createEngine({ model: mamba, storeDir }));
    expect(arch.code).toBe('UNSUPPORTED_ARCH');
    expect(arch.message).toMatch(/mamba/);
    expect((await errorOf(createEngine({ model: 'no-such-model', storeDir }))).code).toBe('MODEL_NOT_FOUND');
    const overflow = await errorOf(engine.completions.create({ prompt: 'The river', max_tokens: 1000 }));
    expect(overflow.code).toBe('CONTEXT_OVERFLOW');
  });

  it('a tensor type no GPU decoder reads is refused from the header, naming the tensor, with nothing imported', async () => {
    const file = await readGguf(sourceFromBytes(bytes));
    const retyped = 'blk.1.ffn_up_exps.weight';
    const tensors = file.tensors.map((t) => {
      const { offset, length } = tensorDataRange(file, t);
      // Q8_1 (36 bytes per 32 elements) has block geometry but no GPU decoder.
      if (t.name === retyped) return { name: t.name, type: GgmlType.Q8_1, dims: [...t.dims], data: new Uint8Array((t.nElements / 32) * 36) };
      return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
    });
    const odd = writeGguf({ version: file.version, alignment: file.alignment, metadata: [...file.metadata.values()], tensors });
    const error = await errorOf(createEngine({ model: new Blob([odd as Uint8Array<ArrayBuffer>]), modelId: 'odd-type', storeDir }));
    expect(error.code).toBe('UNSUPPORTED_MODEL');
    expect(error.message).toContain(retyped);
    expect(error.message).toMatch(/Q8_1.*supported: .*IQ4_XS/);
    expect((await errorOf(createEngine({ model: 'odd-type', storeDir }))).code).toBe('MODEL_NOT_FOUND');
  });
});
