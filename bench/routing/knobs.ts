/**
 * `npm run bench:routing`: what the routing knobs (skip experts below a
 * weight; top-p routing) cost in quality and save in experts, on the built-in
 * default model (models/default-moe-q8_0.gguf: 16 experts, top-2, weights not
 * renormalised) and its held-out sample (test/fixtures/default-model/
 * heldout-sample.txt, text the model never trained on).
 *
 * Every setting runs the same held-out tokens teacher-forced one token per
 * forward call, as decoding does, on a streaming model whose expert budget
 * is a quarter of the routed experts' bytes (default cache policy and
 * prefetch), each window of tokens from an empty KV cache. Reported per
 * setting: perplexity and its change against the knobs off, routed experts
 * each token used per MoE layer (from the routing stream, which lists only
 * the experts used), the expert cache's hit rate, and per token the expert
 * bytes loaded into the cache's GPU slots (misses and prefetches) and the
 * bytes read from the model store for them (the cost counters' store bytes:
 * fewer where the engine keeps expert records in host memory), each against
 * the knobs off.
 * Asserts nothing; writes bench/results/routing-knobs-<adapter>.md and prints it.
 *
 * Options: --tokens N (held-out tokens, default 420: the whole sample),
 * --window N (tokens per window, default 210), --out PATH.
 */

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { defaultModelPath } from '../../src/default-model';
import { costCounterOf } from '../../src/gpu/cost-counter';
import { requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import type { GpuAdapterSummary } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import type { GgufFile } from '../../src/gguf/types';
import type { RoutingKnobs } from '../../src/kernels/router';
import { MoeTransformer } from '../../src/models/moe-transformer';
import { nextTokenNll } from '../../src/ref/forward-compare';
import { Tokenizer } from '../../src/text/tokenizer';
import { adapterSlug } from '../adapter-slug';

const { values: opt } = parseArgs({
  options: {
    tokens: { type: 'string', default: '420' },
    window: { type: 'string', default: '210' },
    out: { type: 'string' },
  },
});
const HELD_OUT_TOKENS = Number(opt.tokens);
const WINDOW_TOKENS = Number(opt.window);
const BUDGET_SHARE = 0.25;
const HELD_OUT_PATH = 'test/fixtures/default-model/heldout-sample.txt';

const SETTINGS: readonly { label: string; knobs?: RoutingKnobs }[] = [
  { label: 'off' },
  { label: 'threshold 0.05', knobs: { minExpertWeight: 0.05 } },
  { label: 'threshold 0.1', knobs: { minExpertWeight: 0.1 } },
  { label: 'threshold 0.2', knobs: { minExpertWeight: 0.2 } },
  { label: 'top-p 0.5', knobs: { topP: 0.5 } },
  { label: 'top-p 0.7', knobs: { topP: 0.7 } },
  { label: 'top-p 0.9', knobs: { topP: 0.9 } },
];

interface Row {
  label: string;
  perplexity: number;
  expertsPerToken: number;
  hitRate: number;
  slotBytesPerToken: number;
  storeBytesPerToken: number;
  seconds: number;
}

const log = (message: string) => process.stderr.write(`bench:routing: ${message}\n`);

/** Consecutive windows of the held-out tokens (the first starts with <|endoftext|>, as the model saw documents begin). */
function heldOutWindows(file: GgufFile): number[][] {
  const tokenizer = Tokenizer.fromGguf(file);
  const text = readFileSync(HELD_OUT_PATH, 'utf8');
  const tokens = [tokenizer.tokenId('<|endoftext|>')!, ...tokenizer.encode(text)].slice(0, HELD_OUT_TOKENS);
  if (tokens.length < HELD_OUT_TOKENS) throw new RangeError(`the held-out sample has ${tokens.length} tokens, fewer than --tokens ${HELD_OUT_TOKENS}`);
  const windows: number[][] = [];
  for (let start = 0; start + 2 <= tokens.length; start += WINDOW_TOKENS) windows.push(tokens.slice(start, start + WINDOW_TOKENS));
  return windows;
}

async function measure(device: GPUDevice, file: GgufFile, bytes: Uint8Array, budgetBytes: number, windows: number[][], setting: (typeof SETTINGS)[number]): Promise<Row> {
  const started = performance.now();
  const nll: number[] = [];
  let used = 0;
  let routedRows = 0;
  let hits = 0;
  let accesses = 0;
  let slotBytes = 0;
  let tokens = 0;
  const costs = costCounterOf(device);
  const storeBytesBefore = costs.snapshot().storeBytes;
  for (const window of windows) {
    const model = await MoeTransformer.load(device, file, sourceFromBytes(bytes), { maxContext: WINDOW_TOKENS, expertBudgetBytes: budgetBytes, routing: setting.knobs });
    try {
      model.startRoutingStream();
      const logits: Float32Array[] = [];
      for (const [position, token] of window.entries()) logits.push((await model.forward([token], position, 'last-logits')).logits![0]!);
      await model.settleExperts();
      nll.push(...nextTokenNll(logits, window));
      for (const token of model.drainRouting()) for (const ids of token.experts) [used, routedRows] = [used + ids.length, routedRows + 1];
      const stats = model.expertStats();
      [hits, accesses, slotBytes, tokens] = [hits + stats.hits, accesses + stats.accesses, slotBytes + stats.bytesStreamed, tokens + window.length];
    } finally {
      model.destroy();
    }
  }
  return {
    label: setting.label,
    perplexity: Math.exp(nll.reduce((a, b) => a + b, 0) / nll.length),
    expertsPerToken: used / routedRows,
    hitRate: hits / accesses,
    slotBytesPerToken: slotBytes / tokens,
    storeBytesPerToken: (costs.snapshot().storeBytes - storeBytesBefore) / tokens,
    seconds: (performance.now() - started) / 1000,
  };
}

function report(rows: readonly Row[], adapter: string, predictions: number, windows: number, budgetBytes: number, routedBytes: number, seconds: number): string {
  const off = rows[0]!;
  const signed = (v: number, digits: number) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
  const kib = (bytes: number) => (bytes / 1024).toFixed(1);
  /** The row's figure against the knobs off, in percent. */
  const change = (r: Row, figure: (r: Row) => number) => (r === off || figure(off) === 0 ? '-' : `${signed((figure(r) / figure(off) - 1) * 100, 1)}%`);
  const out = [
    '# Routing knobs on the default model',
    '',
    `Command: \`npm run bench:routing\` (bench/routing/knobs.ts). Adapter: ${adapter}.`,
    '',
    `models/default-moe-q8_0.gguf (16 routed experts per layer, top-2, softmax weights not renormalised), ` +
      `${predictions} next-token predictions over ${windows} held-out windows (test/fixtures/default-model/heldout-sample.txt), ` +
      `teacher-forced one token per forward call, each window from an empty cache. Expert budget: ${(BUDGET_SHARE * 100).toFixed(0)}% of the routed experts ` +
      `(${(budgetBytes / 2 ** 20).toFixed(2)} of ${(routedBytes / 2 ** 20).toFixed(2)} MiB), default policy (next-use) and prefetch (affinity). ` +
      'Experts per token: routed experts a token used per MoE layer (top-k is 2). Slot loads: expert bytes loaded into the GPU cache (misses and prefetches) per token; ' +
      'store reads: the bytes read from the model store for them (`stats().cost` store bytes), per token.',
    '',
    'The knobs look at the routing weights as the model uses them (here the full-softmax probabilities of the two chosen experts, which sum to less than 1); ' +
      'top-p takes p of the two weights\' sum; the heaviest expert is always kept and kept weights are not renormalised.',
    '',
    '| setting | perplexity | vs off | experts per token | hit rate | slot loads, KiB per token | vs off | store reads, KiB per token | vs off |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.perplexity.toFixed(3)} | ${r === off ? '-' : `${signed((r.perplexity / off.perplexity - 1) * 100, 2)}%`} | ` +
        `${r.expertsPerToken.toFixed(3)} | ${r.hitRate.toFixed(3)} | ${kib(r.slotBytesPerToken)} | ${change(r, (x) => x.slotBytesPerToken)} | ` +
        `${kib(r.storeBytesPerToken)} | ${change(r, (x) => x.storeBytesPerToken)} |`,
    ),
    '',
    ...(off.storeBytesPerToken < 0.9 * off.slotBytesPerToken
      ? [
          `Store reads are far below slot loads: the engine kept expert records in host memory (its host tier), so the store was read about once per expert ` +
            `and window (${(routedBytes / 2 ** 20).toFixed(2)} MiB per window over ${(predictions / windows + 1).toFixed(0)} tokens); slot loads are what the knobs change.`,
          '',
        ]
      : []),
    `Perplexity and experts per token depend on the adapter only through rounding (a weight at a knob's edge); byte counts follow from the routing, the cache and prefetch. The whole run took ${seconds.toFixed(0)} s.`,
  ];
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const gpu = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'bench routing' });
  const info = gpu.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  try {
    const bytes = new Uint8Array(readFileSync(defaultModelPath()));
    const file = await readGguf(sourceFromBytes(bytes));
    const routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
    const budgetBytes = Math.floor(BUDGET_SHARE * routedBytes);
    const windows = heldOutWindows(file);
    const rows: Row[] = [];
    for (const setting of SETTINGS) {
      const row = await measure(gpu.device, file, bytes, budgetBytes, windows, setting);
      log(`${row.label}: perplexity ${row.perplexity.toFixed(3)}, ${row.expertsPerToken.toFixed(3)} experts per token, ${(row.slotBytesPerToken / 1024).toFixed(1)} KiB loaded and ${(row.storeBytesPerToken / 1024).toFixed(1)} KiB read from the store per token (${row.seconds.toFixed(1)} s)`);
      rows.push(row);
    }
    const predictions = windows.reduce((sum, w) => sum + w.length - 1, 0);
    const markdown = report(rows, adapter, predictions, windows.length, budgetBytes, routedBytes, (performance.now() - started) / 1000);
    const path = opt.out ?? `bench/results/routing-knobs-${adapterSlug(info)}.md`;
    await writeFile(path, markdown + '\n');
    log(`wrote ${path}`);
    console.log(markdown);
  } finally {
    gpu.device.destroy();
  }
}

await main();
