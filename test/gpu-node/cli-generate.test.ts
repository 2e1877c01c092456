/**
 * `webmoe run`, `logits` and `tokenize` run as a user runs them (bin/webmoe.js
 * in a child process, on its own Dawn device) against a tiny model in a
 * temporary directory, checked against the library in this process; and a
 * model imported into the filesystem store generates what its file does.
 * Node only: child processes and the filesystem.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { GenerateRequest, GenerationStats } from '../../src/engine/engine';
import { encodePrompt } from '../../src/engine/prompt';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { sourceFromPath } from '../../src/gguf/source-node';
import type { GpuContext } from '../../src/gpu/device';
import { MoeTransformer } from '../../src/models/moe-transformer';
import { openFsWeightStore } from '../../src/store/fs-node';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { acquireTestGpu } from '../gpu/support/gpu';

const bin = resolve(import.meta.dirname, '../../bin/webmoe.js');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-generate-'));
const modelPath = join(dir, 'tiny.gguf');
const storeDir = join(dir, 'store');
const PROMPT = 'The river ran past the old mill';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function webmoe(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, WEBMOE_STORE: storeDir } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function json(run: Run): { promptTokens: number[]; tokens: number[]; text: string; stats: GenerationStats } {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

describe('webmoe run, logits, tokenize', () => {
  let gpu: GpuContext;
  let bytes: Uint8Array;
  let engine: Engine;

  beforeAll(async () => {
    bytes = makeTinyModel({ arch: 'olmoe', seed: 4 });
    writeFileSync(modelPath, bytes);
    gpu = await acquireTestGpu();
    engine = await Engine.load(gpu.device, bytes, { maxContext: 128 });
  });
  afterAll(() => {
    engine?.destroy();
    gpu?.device.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const inProcess = async (request: GenerateRequest) => {
    engine.resetCache();
    return engine.generate(request);
  };

  it('run --json prints one JSON object: the library\'s greedy output and stats, nothing else on stdout', async () => {
    const out = json(await webmoe('run', '--model', modelPath, '--prompt', PROMPT, '--max-tokens', '10', '--json'));
    expect(Object.keys(out)).toEqual(['promptTokens', 'tokens', 'text', 'stats']);
    const expected = await inProcess({ prompt: PROMPT, maxTokens: 10 });
    expect(out.promptTokens).toEqual(expected.promptTokens);
    expect(out.tokens).toEqual(expected.tokens);
    expect(out.text).toBe(expected.text);
    expect(Object.keys(out.stats).sort()).toEqual([
      'bytesStreamed', 'cost', 'decodeTokPerS', 'expertHits', 'expertLayers', 'expertMisses', 'gpuHits', 'hostBudgetBytes', 'hostHeldBytes', 'hostHits',
      'hostWarmReads', 'prefetchPrecision', 'prefetchRecall', 'prefillTokPerS', 'stallMs', 'storeBytes', 'storeReads',
    ]);
    expect(out.stats.expertHits).toBe(expected.stats.expertHits);
    expect(out.stats.expertLayers.map((l) => l.hits)).toEqual(expected.stats.expertLayers.map((l) => l.hits));
    expect(out.stats.expertLayers.reduce((n, l) => n + l.hits, 0)).toBe(out.stats.expertHits);
    expect(out.stats.decodeTokPerS).toBeGreaterThan(0);
  });

  it('run streams the text to stdout and progress to stderr; sampling options and --chat reach the engine', async () => {
    const streamed = await webmoe('run', '--model', modelPath, '--prompt', PROMPT, '--max-tokens', '10');
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe(`${(await inProcess({ prompt: PROMPT, maxTokens: 10 })).text}\n`);
    expect(streamed.stderr).toMatch(/webmoe: loaded olmoe/);
    expect(streamed.stderr).toMatch(/decode [\d.]+ tok\/s/);

    const sampling = ['--temperature', '1.2', '--top-k', '30', '--top-p', '0.95', '--min-p', '0.01', '--repeat-penalty', '1.1', '--seed', '9'];
    const sampled = json(await webmoe('run', '--model', modelPath, '--prompt', PROMPT, '--max-tokens', '10', ...sampling, '--json'));
    const expected = await inProcess({ prompt: PROMPT, maxTokens: 10, sampling: { temperature: 1.2, topK: 30, topP: 0.95, minP: 0.01, repeatPenalty: 1.1, seed: 9 } });
    expect(sampled.tokens).toEqual(expected.tokens);

    const chat = json(await webmoe('run', '--model', modelPath, '--prompt', 'Hello', '--chat', '--max-tokens', '2', '--json'));
    expect(chat.promptTokens).toEqual(engine.promptTokensOf({ messages: [{ role: 'user', content: 'Hello' }] }));
  });

  it('run reports bad input: usage errors exit 2, an expert budget too small for the model exits 1 with the typed error', async () => {
    const missing = await webmoe('run', '--model', modelPath);
    expect([missing.code, missing.stdout]).toEqual([2, '']);
    expect(missing.stderr).toMatch(/--prompt is required/);
    const noModel = await webmoe('run', '--model', join(dir, 'nope.gguf'), '--prompt', 'x');
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/--model: no file '.*nope\.gguf' and no model/);
    expect((await webmoe('run', '--model', modelPath, '--prompt', 'x', '--top-p', '1.5')).stderr).toMatch(/--top-p must be in \(0, 1\]/);
    // 0.01 MiB holds not even one expert (3 x 64 x 64 f32 = 48 KiB).
    const budget = await webmoe('run', '--model', modelPath, '--prompt', 'x', '--expert-budget-mb', '0.01');
    expect(budget.code).toBe(1);
    expect(budget.stderr).toMatch(/ExpertBudgetError: .*\b10485 bytes/);
    expect(json(await webmoe('run', '--model', modelPath, '--prompt', 'x', '--expert-budget-mb', '64', '--max-tokens', '1', '--json')).tokens).toHaveLength(1);
    const overflow = await webmoe('run', '--model', modelPath, '--prompt', 'x', '--context', '16', '--max-tokens', '20');
    expect(overflow.code).toBe(1);
    expect(overflow.stderr).toMatch(/ContextOverflowError: .* exceed the context of 16/);
  });

  it('logits writes every position\'s logits as little-endian f32 [nTokens][nVocab], as the model computes them', async () => {
    const tokens = [5, 17, 200, 3, 99, 42];
    const out = join(dir, 'logits.bin');
    const run = await webmoe('logits', '--model', modelPath, '--tokens', tokens.join(','), '--out', out);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    const file = readFileSync(out);
    const model = await MoeTransformer.load(gpu.device, await readGguf(sourceFromBytes(bytes)), sourceFromBytes(bytes), { maxContext: tokens.length });
    try {
      const { logits } = await model.forward(tokens, 0, 'all-logits');
      const vocab = model.config.vocabSize;
      expect(file.byteLength).toBe(tokens.length * vocab * 4);
      const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
      const got = Float32Array.from({ length: tokens.length * vocab }, (_, i) => view.getFloat32(i * 4, true));
      for (let t = 0; t < tokens.length; t++) expect(got.subarray(t * vocab, (t + 1) * vocab)).toEqual(logits![t]);
    } finally {
      model.destroy();
    }
    expect((await webmoe('logits', '--model', modelPath, '--tokens', '1,100000', '--out', out)).stderr).toMatch(/100000 is outside the vocabulary/);
    expect((await webmoe('logits', '--model', modelPath, '--tokens', '1,2')).code).toBe(2);
  });

  it('tokenize prints the ids run feeds the model, comma-separated', async () => {
    const text = 'Hello <|im_start|>world, 12345 café';
    const run = await webmoe('tokenize', '--model', modelPath, '--text', text);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${encodePrompt(engine.tokenizer, text).join(',')}\n`);
    expect(run.stdout).toContain(String(engine.tokenizer.tokenId('<|im_start|>')));
    expect(run.stdout.startsWith(`${engine.tokenizer.encode('Hello')[0]},`)).toBe(true);
    expect((await webmoe('tokenize', '--model', modelPath)).stderr).toMatch(/--text is required/);
  });

  it('a model imported into the filesystem store generates what its file does, by id', async () => {
    const store = await openFsWeightStore(storeDir);
    const source = await sourceFromPath(modelPath);
    try {
      // Small chunks: shared tensors spread over several records.
      await store.importModel(source, { modelId: 'tiny-olmoe', sharedChunkBytes: 40_000 });
    } finally {
      await source.close();
    }
    const fromStore = await Engine.fromStoredModel(gpu.device, await store.openModel('tiny-olmoe'), { maxContext: 128 });
    try {
      const request = { prompt: PROMPT, maxTokens: 8, ignoreEog: true };
      expect((await fromStore.generate(request)).tokens).toEqual((await inProcess(request)).tokens);
    } finally {
      fromStore.destroy();
    }
    const byId = json(await webmoe('run', '--model', 'tiny-olmoe', '--prompt', PROMPT, '--max-tokens', '6', '--json'));
    expect(byId.tokens).toEqual((await inProcess({ prompt: PROMPT, maxTokens: 6 })).tokens);
    const unknown = await webmoe('run', '--model', 'no-such-model', '--prompt', 'x');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no model 'no-such-model' in the store at .*; stored models: tiny-olmoe/);
  });
});
