/**
 * The browser half of bench:peers, driven by run.ts through Playwright: each
 * call runs one system on one file in this (cross-origin isolated) page and
 * returns what it measured. Memory is measured from outside (the browser's
 * processes), so a fresh page is opened for every run.
 *
 * webmoe runs in its worker from its IndexedDB store; wllama from its own
 * cache (the Cache Storage copy it keeps of a downloaded model), both filled
 * by a run before the timed ones: loads are from a warm store.
 */

import { Wllama } from '@wllama/wllama';
import wllamaWasmUrl from '@wllama/wllama/esm/wasm/wllama.wasm?url';
import type * as WebmoeApi from '../../src/api/worker-client';
import { webmoeFigures } from './figures';
import type { RunFigures } from './figures';

type PageFigures = Omit<RunFigures, 'peakRssBytes' | 'baseRssBytes'>;

const DATABASE = 'webmoe-bench-peers';

/**
 * webmoe as users load it: the built library (run.ts builds it first), whose
 * worker is one bundled file, not the dev server's hundreds of modules.
 */
const LIBRARY_URL = new URL('../../dist/lib/webmoe.js', import.meta.url).href;
const webmoe = (): Promise<typeof WebmoeApi> => import(/* @vite-ignore */ LIBRARY_URL);

/** Imports the file at `url` into webmoe's store once; its model id. */
async function importWebmoe(url: string, id: string): Promise<string> {
  const store = await (await webmoe()).openModelStore({ databaseName: DATABASE });
  try {
    const listed = await store.list();
    const found = listed.data.find((m) => m.id === id && m.state === 'complete');
    return found ? found.id : (await store.import(url, { id })).id;
  } finally {
    await store.close();
  }
}

async function runWebmoe(id: string, prompt: string, decode: number, budgetMB?: number): Promise<PageFigures> {
  const { createEngine } = await webmoe();
  const start = performance.now();
  const engine = await createEngine({ model: id, databaseName: DATABASE, ...(budgetMB === undefined ? {} : { expertBudgetMB: budgetMB }) });
  const loadMs = performance.now() - start;
  try {
    const result = await engine.completions.create({ prompt, max_tokens: decode, temperature: 0, ignore_eos: true });
    return webmoeFigures(loadMs, result, await engine.stats());
  } finally {
    await engine.unload();
  }
}

/** wllama's log lines, kept to tell where it put the model's buffers (its CPU fallback is silent otherwise). */
function capturingLogger(lines: string[]) {
  const keep = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  return { debug: keep, log: keep, info: keep, warn: keep, error: keep };
}

/** wllama with every layer offloaded to WebGPU (`webgpu`) or none (its WebAssembly CPU path, multi-threaded here). */
async function runWllama(url: string, prompt: string, decode: number, webgpu: boolean, threads: number, banned: readonly number[]): Promise<PageFigures> {
  const lines: string[] = [];
  const wllama = new Wllama({ default: wllamaWasmUrl }, { logger: capturingLogger(lines) });
  const start = performance.now();
  await wllama.loadModelFromUrl(url, { n_gpu_layers: webgpu ? 999 : 0, n_threads: threads, n_ctx: 1024, n_batch: 512 });
  const loadMs = performance.now() - start;
  try {
    // Where llama.cpp put the weights: "<device> model buffer size = ..." lines, one per buffer type.
    const buffers = lines.filter((l) => /model buffer size/.test(l)).map((l) => l.replace(/.*load_tensors:\s*/, '').trim());
    if (webgpu && !buffers.some((b) => !/^CPU/.test(b))) {
      const why = lines.find((l) => /ggml_webgpu|WebGPU/i.test(l));
      throw new Error(`wllama kept every layer on the CPU (${buffers.join('; ') || 'no buffer lines'})${why ? `: ${why}` : ''}${await f16Note()}`);
    }
    // The banned tokens (see run.ts, nonAsciiTokens) keep the completion's text valid UTF-8, which wllama's server needs.
    // wllama's types intersect OpenAI's object form with llama.cpp's array form, which no value satisfies; its server reads either.
    const logitBias = Object.fromEntries(banned.map((id) => [String(id), -100])) as never;
    const result = await wllama.createCompletion({ prompt, max_tokens: decode, temperature: 0, ignore_eos: true, logit_bias: logitBias });
    const timings = result.timings;
    if (!timings) throw new Error('wllama returned no timings');
    return {
      loadMs,
      promptTokens: timings.prompt_n,
      completionTokens: result.usage?.completion_tokens ?? timings.predicted_n,
      prefillTokPerS: timings.prompt_per_second,
      decodeTokPerS: timings.predicted_per_second,
      adapter: buffers.join('; '),
      threads,
      text: result.choices[0]?.text,
    };
  } finally {
    await wllama.exit();
  }
}

/** Why llama.cpp's WebGPU backend would register no device here: it requires shader-f16. */
async function f16Note(): Promise<string> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return '; this page gets no WebGPU adapter';
  return adapter.features.has('shader-f16')
    ? ''
    : `; the adapter (${adapter.info.vendor} ${adapter.info.architecture}) lacks shader-f16, which llama.cpp's WebGPU backend requires of a device`;
}

/** Puts the file into wllama's cache (a download from this page's server). */
async function cacheWllama(url: string): Promise<void> {
  const wllama = new Wllama({ default: wllamaWasmUrl });
  await wllama.modelManager.getModelOrDownload({ url });
}

const peers = { importWebmoe, runWebmoe, runWllama, cacheWllama, ready: true };
export type PeersPage = typeof peers;
(window as { peers?: PeersPage }).peers = peers;
