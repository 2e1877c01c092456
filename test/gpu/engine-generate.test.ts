/**
 * The generation engine (src/engine/engine.ts) on a tiny random-weight
 * model: greedy output is the argmax loop over the model's forward pass;
 * seeds decide sampled output; abort leaves the engine as good as new; stop
 * strings, end-of-generation tokens, maxTokens and the context limit end
 * generation as documented; a prompt extending the cached tokens reuses them
 * without changing the output.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { GenerateRequest, GenerateResult, TokenEvent } from '../../src/engine/engine';
import { ContextOverflowError, EngineError } from '../../src/engine/errors';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { tensorDataRange } from '../../src/gguf/reader';
import { kvU32, writeGguf } from '../../src/gguf/writer';
import type { GpuContext } from '../../src/gpu/device';
import { MoeTransformer } from '../../src/models/moe-transformer';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { acquireTestGpu } from './support/gpu';

const OPTIONS = { maxContext: 64, maxBatchTokens: 8 };
const PROMPT = 'The river ran past the old mill, and the miller';
const GREEDY: GenerateRequest = { prompt: PROMPT, maxTokens: 12, ignoreEog: true };

/** The model with tokenizer.ggml.eos_token_id set to `eos`, weights unchanged. */
async function withEos(bytes: Uint8Array, eos: number): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const metadata = [...file.metadata.values()].map((kv) => (kv.key === 'tokenizer.ggml.eos_token_id' ? kvU32(kv.key, eos) : kv));
  const tensors = file.tensors.map((t) => {
    const { offset, length } = tensorDataRange(file, t);
    return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
  });
  return writeGguf({ version: file.version, alignment: file.alignment, metadata, tensors });
}

describe('generation engine', () => {
  let gpu: GpuContext;
  let bytes: Uint8Array;
  let engine: Engine;
  /** Greedy GREEDY on a freshly loaded engine. */
  let fresh: GenerateResult;

  beforeAll(async () => {
    gpu = await acquireTestGpu();
    bytes = makeTinyModel({ arch: 'qwen2moe', seed: 3, layers: 2 });
    engine = await Engine.load(gpu.device, bytes, OPTIONS);
    fresh = await engine.generate(GREEDY);
  });
  afterAll(() => {
    engine?.destroy();
    gpu?.device.destroy();
  });

  it('greedy output is the step-by-step argmax loop over the forward pass, streamed token by token', async () => {
    const model = await MoeTransformer.load(gpu.device, await readGguf(sourceFromBytes(bytes)), sourceFromBytes(bytes), OPTIONS);
    try {
      const prompt = engine.promptTokensOf({ prompt: PROMPT });
      const expected: number[] = [];
      let next = (await model.forward(prompt, 0, 'argmax')).argmax!;
      while (expected.length < GREEDY.maxTokens!) {
        expected.push(next);
        if (expected.length === GREEDY.maxTokens) break;
        next = (await model.forward([next], prompt.length + expected.length - 1, 'argmax')).argmax!;
      }
      expect(fresh.promptTokens).toEqual(prompt);
      expect(fresh.tokens).toEqual(expected);
      expect(fresh.finishReason).toBe('length');
      expect(fresh.text).toBe(engine.tokenizer.decode(expected, { skipSpecial: true }));
    } finally {
      model.destroy();
    }

    const events: TokenEvent[] = [];
    engine.resetCache();
    const streamed = await engine.generate({ ...GREEDY, onToken: (e) => events.push(e) });
    expect(streamed.tokens).toEqual(fresh.tokens);
    expect(events.filter((e) => e.token !== undefined).map((e) => e.token)).toEqual(fresh.tokens);
    expect(events.map((e) => e.text).join('')).toBe(fresh.text);

    // Every routed-expert read is a resident hit: one per token run, MoE layer and chosen expert.
    const c = engine.model.config;
    const moeLayers = c.tensors.layers.filter((l) => l.ffn.kind === 'moe').length;
    const tokensRun = streamed.promptTokens.length + streamed.tokens.length - 1;
    expect(streamed.stats).toMatchObject({ expertHits: tokensRun * moeLayers * c.nExpertUsed, expertMisses: 0, bytesStreamed: 0, stallMs: 0 });
    expect(streamed.stats.prefillTokPerS).toBeGreaterThan(0);
    expect(streamed.stats.decodeTokPerS).toBeGreaterThan(0);
    console.log(`tiny qwen2moe on this adapter: prefill ${streamed.stats.prefillTokPerS.toFixed(1)} tok/s, decode ${streamed.stats.decodeTokPerS.toFixed(1)} tok/s`);
  });

  it('sampled output is decided by the seed, on the CPU path and on the GPU top-k path', async () => {
    const sample = async (sampling: GenerateRequest['sampling']) =>
      (await engine.generate({ prompt: PROMPT, maxTokens: 16, ignoreEog: true, sampling })).tokens;
    const cpu = { temperature: 1.5 };
    const a = await sample({ ...cpu, seed: 1 });
    expect(await sample({ ...cpu, seed: 1 })).toEqual(a);
    expect(await sample({ ...cpu, seed: 2 })).not.toEqual(a);
    expect(a.slice(0, fresh.tokens.length)).not.toEqual(fresh.tokens);

    const gpuTopK = { temperature: 1.5, topK: 40, topP: 0.95 };
    const b = await sample({ ...gpuTopK, seed: 1 });
    expect(await sample({ ...gpuTopK, seed: 1 })).toEqual(b);
    expect(await sample({ ...gpuTopK, seed: 2 })).not.toEqual(b);

    const penalised = { temperature: 1.5, topK: 40, repeatPenalty: 1.3 };
    const p = await sample({ ...penalised, seed: 1 });
    expect(await sample({ ...penalised, seed: 1 })).toEqual(p);
  });

  it('aborts at any token and is as good as new afterwards', async () => {
    const controller = new AbortController();
    const aborted = await engine.generate({
      ...GREEDY,
      signal: controller.signal,
      onToken: (e) => {
        if (e.token !== undefined && e.token === fresh.tokens[2]) controller.abort();
      },
    });
    expect(aborted.finishReason).toBe('abort');
    expect(aborted.tokens).toEqual(fresh.tokens.slice(0, fresh.tokens.indexOf(fresh.tokens[2]) + 1));

    const before = new AbortController();
    before.abort();
    const none = await engine.generate({ ...GREEDY, signal: before.signal });
    expect([none.finishReason, none.tokens]).toEqual(['abort', []]);

    const again = await engine.generate(GREEDY);
    expect(again.tokens).toEqual(fresh.tokens);
    expect(again.text).toBe(fresh.text);
    expect(again.finishReason).toBe('length');
  });

  it('reuses the cached prefix of a prompt that extends the previous one, with unchanged output', async () => {
    engine.resetCache();
    await engine.generate(GREEDY);
    const extended = [...fresh.promptTokens, ...fresh.tokens.slice(0, 6)];
    const reused = await engine.generate({ promptTokens: extended, maxTokens: 6, ignoreEog: true });
    expect(reused.reusedTokens).toBe(extended.length - 1);
    // Greedy continuation of the greedy output is the rest of the greedy output.
    expect(reused.tokens).toEqual(fresh.tokens.slice(6, 12));
    const other = await engine.generate({ prompt: 'Something else entirely', maxTokens: 4, ignoreEog: true });
    expect(other.reusedTokens).toBeLessThan(3);
  });

  it('stops before a stop string, even one spread over tokens, and holds back its start', async () => {
    const stop = fresh.text.slice(Math.floor(fresh.text.length / 2), Math.floor(fresh.text.length / 2) + 3);
    const events: TokenEvent[] = [];
    const result = await engine.generate({ ...GREEDY, stop: ['never appears', stop], onToken: (e) => events.push(e) });
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(fresh.text.slice(0, fresh.text.indexOf(stop)));
    expect(events.map((e) => e.text).join('')).toBe(result.text);
    expect(result.tokens).toEqual(fresh.tokens.slice(0, result.tokens.length));
    expect(result.tokens.length).toBeLessThan(fresh.tokens.length);
  });

  it('stops at an end-of-generation token, which is not part of the output', async () => {
    // Make the 4th greedy token (one not seen before it) the model's EOS; the weights are unchanged.
    const at = fresh.tokens.findIndex((t, i) => i >= 3 && !fresh.tokens.slice(0, i).includes(t));
    expect(at).toBeGreaterThan(0);
    const eosEngine = await Engine.load(gpu.device, await withEos(bytes, fresh.tokens[at]), OPTIONS);
    try {
      expect(eosEngine.tokenizer.isEog(fresh.tokens[at])).toBe(true);
      const stopped = await eosEngine.generate({ ...GREEDY, ignoreEog: false });
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.tokens).toEqual(fresh.tokens.slice(0, at));
      expect((await eosEngine.generate(GREEDY)).tokens).toEqual(fresh.tokens);
    } finally {
      eosEngine.destroy();
    }
  });

  it('generates maxTokens tokens, or until the context is full without it', async () => {
    const five = await engine.generate({ ...GREEDY, maxTokens: 5 });
    expect([five.finishReason, five.tokens]).toEqual(['length', fresh.tokens.slice(0, 5)]);
    const zero = await engine.generate({ ...GREEDY, maxTokens: 0 });
    expect([zero.finishReason, zero.tokens, zero.text]).toEqual(['length', [], '']);
    const prompt = Array.from({ length: OPTIONS.maxContext - 3 }, (_, i) => (i * 7) % 400);
    const full = await engine.generate({ promptTokens: prompt, ignoreEog: true });
    expect([full.finishReason, full.tokens.length]).toEqual(['length', 3]);
  });

  it('refuses a prompt plus maxTokens beyond the context with a typed error, and stays usable', async () => {
    const prompt = engine.promptTokensOf({ prompt: PROMPT });
    const overflow = engine.generate({ prompt: PROMPT, maxTokens: OPTIONS.maxContext - prompt.length + 1 });
    await expect(overflow).rejects.toThrow(ContextOverflowError);
    await expect(overflow).rejects.toThrow(/exceed the context of 64; ask for at most/);
    await expect(engine.generate({ promptTokens: new Array(OPTIONS.maxContext + 1).fill(1), maxTokens: 0 })).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
    await expect(engine.generate({ prompt: PROMPT, promptTokens: [1] })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(engine.generate({ promptTokens: [] })).rejects.toThrow(EngineError);
    expect((await engine.generate(GREEDY)).tokens).toEqual(fresh.tokens);
  });

  it('writes messages with the chat template and refuses a second request while one runs', async () => {
    const messages = [{ role: 'user', content: 'Hello' }];
    const chat = await engine.generate({ messages, maxTokens: 2, ignoreEog: true });
    expect(chat.promptTokens).toEqual(engine.tokenizer.encode('<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n', { parseSpecial: true }));
    const first = engine.generate(GREEDY);
    await expect(engine.generate(GREEDY)).rejects.toMatchObject({ code: 'BUSY' });
    expect((await first).tokens).toEqual(fresh.tokens);
  });
});
