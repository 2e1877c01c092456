/**
 * One bench:peers run in Node, in a process of its own so that its peak RSS
 * is the run's alone: load a model, prefill the prompt, generate a fixed
 * number of tokens greedily, print the figures as one JSON line on stdout.
 *
 *   tsx bench/peers/node-run.ts webmoe <model id> <store dir> <prompt file> <decode> [expert budget MB]
 *   tsx bench/peers/node-run.ts llama.cpp <gguf path> <threads> <prompt file> <decode>
 *
 * webmoe runs through its public Node API (Dawn), from its file store (the
 * model was imported before: a warm store). llama.cpp runs through
 * node-llama-cpp's prebuilt CPU build, from the file (in the page cache after
 * the first run), every layer on the CPU.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../src/api/node';
import { webmoeFigures } from './figures';
import type { RunFigures } from './figures';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function finish(figures: Omit<RunFigures, 'peakRssBytes' | 'baseRssBytes'>, baseRssBytes: number): void {
  // maxRSS is the process's peak resident set in KiB, whatever freed memory since.
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify({ ...figures, peakRssBytes, baseRssBytes })}\n`);
}

async function runWebmoe(modelId: string, storeDir: string, prompt: string, decode: number, budgetMB?: number): Promise<void> {
  const baseRssBytes = process.memoryUsage().rss;
  const start = performance.now();
  const engine = await createEngine({ model: modelId, storeDir, ...(budgetMB === undefined ? {} : { expertBudgetMB: budgetMB }) });
  const loadMs = performance.now() - start;
  try {
    const result = await engine.completions.create({ prompt, max_tokens: decode, temperature: 0, ignore_eos: true });
    finish(webmoeFigures(loadMs, result, await engine.stats()), baseRssBytes);
  } finally {
    await engine.unload();
  }
}

/** node-llama-cpp's types, as far as this file uses them (it is installed under tools/reference, not in the package). */
interface LlamaLike {
  loadModel(options: { modelPath: string; gpuLayers: number }): Promise<{
    tokenize(text: string): readonly number[];
    detokenize(tokens: readonly number[]): string;
    createContext(options: Record<string, unknown>): Promise<{
      getSequence(): { evaluate(tokens: readonly number[], options: { temperature: number }): AsyncGenerator<number> };
      dispose(): Promise<void>;
    }>;
    dispose(): Promise<void>;
  }>;
}

async function runLlamaCpp(path: string, threads: number, prompt: string, decode: number): Promise<void> {
  const baseRssBytes = process.memoryUsage().rss;
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
  const require = createRequire(join(ROOT, 'tools/reference/package.json'));
  const { getLlama } = (await import(require.resolve('node-llama-cpp'))) as {
    getLlama(options: Record<string, unknown>): Promise<LlamaLike>;
  };
  const start = performance.now();
  const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: threads, logLevel: 'error', progressLogs: false });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 1024, batchSize: 512, threads, flashAttention: false });
  const loadMs = performance.now() - start;
  const tokens = model.tokenize(prompt);
  const generated: number[] = [];
  const prefillStart = performance.now();
  let firstTokenAt = 0;
  // evaluate() runs the prompt, then feeds each yielded token back: the first yield ends prefill, each next one is a decode step.
  for await (const token of context.getSequence().evaluate(tokens, { temperature: 0 })) {
    generated.push(token);
    if (generated.length === 1) firstTokenAt = performance.now();
    if (generated.length === decode) break;
  }
  const end = performance.now();
  finish({
    loadMs,
    promptTokens: tokens.length,
    completionTokens: generated.length,
    prefillTokPerS: tokens.length / ((firstTokenAt - prefillStart) / 1000),
    decodeTokPerS: (generated.length - 1) / ((end - firstTokenAt) / 1000),
    threads,
    text: model.detokenize(generated),
  }, baseRssBytes);
  await context.dispose();
  await model.dispose();
}

const [system, target, arg, promptFile, decodeArg, budgetArg] = process.argv.slice(2);
const prompt = readFileSync(promptFile, 'utf8');
const decode = Number(decodeArg);
if (system === 'webmoe') await runWebmoe(target, arg, prompt, decode, budgetArg === undefined ? undefined : Number(budgetArg));
else if (system === 'llama.cpp') await runLlamaCpp(target, Number(arg), prompt, decode);
else throw new Error(`unknown system ${system}: webmoe or llama.cpp`);
