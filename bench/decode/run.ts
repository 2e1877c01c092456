/**
 * What each token costs (`npm run bench:decode`): the engine's cost counters
 * (src/gpu/cost-counter.ts) per decode token and per prefill token, for
 * generated models with the layer shapes of OLMoE-1B-7B and Qwen3-30B-A3B
 * in Q4_K, all experts resident and at a 25% expert budget (on demand, with
 * pre-gate and with affinity prefetch): dispatches, passes, submissions,
 * round trips, weight bytes read, bytes uploaded, store bytes read, JS encode
 * ms and tok/s on this adapter. Counts come per layer and extrapolated to
 * each model's real depth (and vocabulary), next to the bandwidth bound
 * tok/s <= memory bandwidth / weight bytes per token for a few GPU classes.
 *
 * Each model is generated with 2 layers; a 1-layer copy (the same tensors
 * without the second layer) separates what a layer costs from what the
 * embedding, final norm, output projection and sampling cost. Writes the
 * markdown to bench/results/decode-<adapter>.md and prints it.
 *
 * Options: --prompt N (prompt tokens, default 256), --decode N (decode tokens, default 8),
 * --models olmoe,qwen3 (default both), --out PATH.
 */

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine } from '../../src/engine/engine';
import type { PhaseCost } from '../../src/engine/engine';
import type { PrefetchOptions } from '../../src/experts/scheduler';
import { readGguf, tensorDataRange } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { kvU32, writeGguf } from '../../src/gguf/writer';
import { COST_FIELDS, perCosts, zeroCosts } from '../../src/gpu/cost-counter';
import type { CostCounts } from '../../src/gpu/cost-counter';
import { requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import { blockFormat, GgmlType } from '../../src/quant/formats';
import type { TinyArch } from '../../src/tiny/archs';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import type { TinyModelOptions } from '../../src/tiny/make-tiny';
import { adapterSlug } from '../adapter-slug';

const { values: opt } = parseArgs({
  options: {
    prompt: { type: 'string', default: '256' },
    decode: { type: 'string', default: '8' },
    models: { type: 'string', default: 'olmoe,qwen3' },
    out: { type: 'string' },
  },
});
const PROMPT_TOKENS = Number(opt.prompt);
const DECODE_TOKENS = Number(opt.decode);
const LAYERS = 2;

interface BenchModel {
  key: string;
  name: string;
  arch: TinyArch;
  shape: Partial<TinyModelOptions>;
  realLayers: number;
  realVocab: number;
}

const MODELS: readonly BenchModel[] = [
  {
    key: 'olmoe', name: 'OLMoE-1B-7B', arch: 'olmoe', realLayers: 16, realVocab: 50304,
    shape: { hidden: 2048, heads: 16, kvHeads: 16, headDim: 128, experts: 64, topK: 8, expertFF: 1024 },
  },
  {
    key: 'qwen3', name: 'Qwen3-30B-A3B', arch: 'qwen3moe', realLayers: 48, realVocab: 151936,
    shape: { hidden: 2048, heads: 32, kvHeads: 4, headDim: 128, experts: 128, topK: 8, expertFF: 768 },
  },
];

interface BenchConfig {
  label: string;
  budget: number;
  prefetch?: PrefetchOptions;
}

const CONFIGS: readonly BenchConfig[] = [
  { label: '100%, all resident', budget: 1 },
  { label: '25%, LRU on demand', budget: 0.25 },
  { label: '25%, LRU + pre-gate prefetch', budget: 0.25, prefetch: { predictor: 'pregate', lookahead: 1 } },
  { label: '25%, LRU + affinity prefetch', budget: 0.25, prefetch: { predictor: 'affinity', lookahead: 1 } },
];

/** Data-sheet memory bandwidths, GB/s (10^9 bytes per second). */
const GPU_CLASSES: readonly [string, number][] = [
  ['Intel Iris Xe (LPDDR4X-4266)', 68],
  ['Apple M1', 68],
  ['Apple M1 Max', 400],
  ['NVIDIA RTX 4090', 1008],
  ['NVIDIA H100 SXM', 3350],
  ['NVIDIA H200', 4800],
];

const log = (message: string) => process.stderr.write(`bench:decode: ${message}\n`);

/** One phase's counts per token, and its speed. */
interface PhaseFigures {
  perToken: CostCounts;
  tokPerS: number;
}

interface RunFigures {
  prefill: PhaseFigures;
  decode: PhaseFigures;
}

/** The same model without its layers from `layers` on (block_count lowered, their tensors left out). */
async function firstLayers(bytes: Uint8Array, arch: string, layers: number): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const metadata = [...file.metadata.values()].map((kv) => (kv.key === `${arch}.block_count` ? kvU32(kv.key, layers) : kv));
  const kept = file.tensors.filter((t) => {
    const m = /^blk\.(\d+)\./.exec(t.name);
    return !m || Number(m[1]) < layers;
  });
  const tensors = kept.map((t) => {
    const { offset, length } = tensorDataRange(file, t);
    return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
  });
  return writeGguf({ version: file.version, alignment: file.alignment, metadata, tensors });
}

function phaseFigures(phase: PhaseCost, tokPerS: number): PhaseFigures {
  return { perToken: perCosts(phase.counts, phase.tokens), tokPerS };
}

async function runOnce(device: GPUDevice, bytes: Uint8Array, prompt: number[], config: BenchConfig, routedBytes: number): Promise<RunFigures> {
  const engine = await Engine.load(device, bytes, {
    maxContext: PROMPT_TOKENS + DECODE_TOKENS + 8,
    expertBudgetBytes: config.budget < 1 ? Math.floor(config.budget * routedBytes) : undefined,
    expertPolicy: 'lru',
    prefetch: config.prefetch ?? { predictor: 'none' }, // on demand: the engine's default would prefetch
  });
  try {
    // maxTokens samples DECODE + 1 tokens, of which DECODE are fed back: the decode steps.
    const result = await engine.generate({ promptTokens: prompt, maxTokens: DECODE_TOKENS + 1, ignoreEog: true, sampling: { temperature: 0 } });
    await engine.model.settleExperts();
    const { cost } = result.stats;
    return { prefill: phaseFigures(cost.prefill, result.stats.prefillTokPerS), decode: phaseFigures(cost.decode, result.stats.decodeTokPerS) };
  } finally {
    engine.destroy();
  }
}

/** c * k, field by field. */
const times = (c: CostCounts, k: number): CostCounts => {
  const p = zeroCosts();
  for (const f of COST_FIELDS) p[f] = c[f] * k;
  return p;
};
const minus = (a: CostCounts, b: CostCounts): CostCounts => {
  const d = zeroCosts();
  for (const f of COST_FIELDS) d[f] = a[f] - b[f];
  return d;
};
const plus = (a: CostCounts, b: CostCounts): CostCounts => {
  const s = zeroCosts();
  for (const f of COST_FIELDS) s[f] = a[f] + b[f];
  return s;
};

interface ModelReport {
  model: BenchModel;
  fileBytes: number;
  routedBytes: number;
  vocab: number;
  outputRowBytes: number;
  /** Per token, outside the layers (from the resident 1- and 2-layer runs). */
  fixed: { prefill: CostCounts; decode: CostCounts };
  runs: { config: BenchConfig; figures: RunFigures }[];
}

async function benchModel(device: GPUDevice, model: BenchModel): Promise<ModelReport> {
  log(`${model.name}: generating ${LAYERS} layers in Q4_K (${JSON.stringify(model.shape)})`);
  const bytes = makeTinyModel({ arch: model.arch, type: 'q4_k', layers: LAYERS, seed: 1, ...model.shape });
  const file = await readGguf(sourceFromBytes(bytes));
  const routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
  const output = file.tensors.find((t) => t.name === 'output.weight') ?? file.tensors.find((t) => t.name === 'token_embd.weight')!;
  const vocab = output.dims[1]!;
  const q4k = blockFormat(GgmlType.Q4_K)!;
  const outputRowBytes = (model.shape.hidden! / q4k.blockSize) * q4k.blockBytes;
  const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => (i * 7919 + 3) % vocab);

  log(`${model.name}: 1-layer copy, all resident (separates per-layer costs from the rest)`);
  const one = await runOnce(device, await firstLayers(bytes, model.arch, 1), prompt, CONFIGS[0]!, routedBytes / LAYERS);
  const runs: ModelReport['runs'] = [];
  for (const config of CONFIGS) {
    log(`${model.name}: ${config.label}`);
    runs.push({ config, figures: await runOnce(device, bytes, prompt, config, routedBytes) });
  }
  const two = runs[0]!.figures;
  // c(L) = fixed + L * layer, so fixed = 2 c(1) - c(2).
  const fixed = {
    prefill: minus(times(one.prefill.perToken, 2), two.prefill.perToken),
    decode: minus(times(one.decode.perToken, 2), two.decode.perToken),
  };
  return { model, fileBytes: bytes.byteLength, routedBytes, vocab, outputRowBytes, fixed, runs };
}

// ---- report ---------------------------------------------------------------

const int = (n: number) => (Math.abs(n - Math.round(n)) < 0.005 ? Math.round(n).toString() : n.toFixed(2));
const mb = (bytes: number) => (bytes / 1e6).toFixed(bytes < 1e5 ? 4 : 2);
const kb = (bytes: number) => (bytes / 1e3).toFixed(1);

function row(label: string, c: CostCounts, tokPerS?: number): string {
  return (
    `| ${label} | ${int(c.dispatches)} | ${int(c.passes)} | ${int(c.submissions)} | ${int(c.roundTrips)} | ${mb(c.weightBytes)} | ` +
    `${kb(c.uploadBytes)} | ${mb(c.storeBytes)} | ${c.encodeMs.toFixed(2)} | ${tokPerS === undefined ? '-' : tokPerS.toFixed(2)} |`
  );
}

function phaseTable(r: ModelReport, phase: 'prefill' | 'decode'): string[] {
  const out = [
    `| ${phase === 'decode' ? 'per decode token' : `per prefill token (${PROMPT_TOKENS}-token prompt)`} | dispatches | passes | submissions | round trips | weight MB | upload KB | store MB | encode ms | tok/s |`,
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  // The output projection runs once per request's prefill (its last token) and once per decode token.
  const outputsPerToken = phase === 'decode' ? 1 : 1 / PROMPT_TOKENS;
  const realFixed = { ...r.fixed[phase], weightBytes: r.fixed[phase].weightBytes + (r.model.realVocab - r.vocab) * r.outputRowBytes * outputsPerToken };
  for (const { config, figures } of r.runs) {
    const f = figures[phase];
    const perLayer = perCosts(minus(f.perToken, r.fixed[phase]), LAYERS);
    out.push(row(`${config.label}: measured, ${LAYERS} layers`, f.perToken, f.tokPerS));
    out.push(row(`${config.label}: per layer`, perLayer));
    out.push(row(`${config.label}: at ${r.model.realLayers} layers, vocab ${r.model.realVocab} (extrapolated)`, plus(realFixed, times(perLayer, r.model.realLayers))));
  }
  out.push(row('outside the layers (embedding, final norm, output, sampling)', r.fixed[phase]));
  return out;
}

function boundTable(reports: ModelReport[]): string[] {
  const perToken = reports.map((r) => {
    const resident = r.runs[0]!.figures.decode.perToken;
    const perLayer = perCosts(minus(resident, r.fixed.decode), LAYERS);
    const fixedBytes = r.fixed.decode.weightBytes + (r.model.realVocab - r.vocab) * r.outputRowBytes;
    return fixedBytes + perLayer.weightBytes * r.model.realLayers;
  });
  const out = [
    `| GPU class (data-sheet bandwidth) | ${reports.map((r, i) => `${r.model.name}: ${(perToken[i]! / 1e6).toFixed(0)} MB per decode token`).join(' | ')} |`,
    `|---|${reports.map(() => '---|').join('')}`,
  ];
  for (const [name, gbPerS] of GPU_CLASSES) {
    out.push(`| ${name}, ${gbPerS} GB/s | ${perToken.map((bytes) => `≤ ${((gbPerS * 1e9) / bytes).toFixed(0)} tok/s`).join(' | ')} |`);
  }
  return out;
}

function report(reports: ModelReport[], adapter: string, cpu: boolean, seconds: number): string {
  const args = process.argv.slice(2).join(' ');
  const out: string[] = ['# What each token costs (`npm run bench:decode`)', '', `Run: \`npm run bench:decode${args ? ` -- ${args}` : ''}\`.`, ''];
  out.push(
    `Adapter: ${adapter}. The counts are what the engine records (its cost counters, \`stats().cost\`); they do not depend on the adapter. ` +
      (cpu ? 'tok/s and encode ms are measured here, on a CPU adapter on a shared machine: they say nothing about a GPU.' : 'tok/s and encode ms are measured here, on this adapter.'),
    '',
  );
  out.push(
    `Models: generated in Q4_K (every matrix; norms and routers f32) with ${LAYERS} layers and a ${reports[0]?.vocab}-token vocabulary, ` +
      `greedy, ${PROMPT_TOKENS} prompt tokens then ${DECODE_TOKENS} decode steps, the engine's default batches of 128 prompt tokens, a fresh engine per row. ` +
      reports.map((r) => `${r.model.name}: ${JSON.stringify(r.model.shape)}, ${(r.fileBytes / 2 ** 20).toFixed(0)} MiB, ${(r.routedBytes / 2 ** 20).toFixed(0)} MiB routed experts.`).join(' ') +
      ` The 25% budget is of the routed experts' bytes; experts stream from the model file in memory through the host tier at its default budget (a quarter of this machine's memory, which holds every expert of these models), so "store MB" counts the reads that missed it and "upload KB" what reached the GPU.`,
    '',
  );
  out.push(
    `Per layer = (the ${LAYERS}-layer run - what lies outside the layers) / ${LAYERS}, where "outside the layers" is 2 x (a 1-layer copy) - (the ${LAYERS}-layer model), both all resident. ` +
      'Extrapolated = outside + per layer x the real depth, with the output projection rescaled to the real vocabulary (weight bytes only); ' +
      'a streamed run\'s per-layer figure averages the first layer (which pre-gates the next) and the last (which has none to pre-gate). ' +
      'Real files mix formats (Q4_K_M keeps some matrices in Q6_K), so their weight bytes are somewhat higher.',
    '',
  );
  out.push(
    'Units: weight MB = 10^6 bytes of weights the kernels read (a matrix once per stream of workgroups that reads it: a decode matvec once, a prefill matmul once per ' +
      'tile of 8 tokens, the decode expert FFN once per routed token and expert, the prefill expert FFN once per group of up to 8 of an expert\'s tokens ' +
      '(exactly when streaming; when all are resident at the bound on the groups, which only the GPU knows); norm vectors once per dispatch; activations and the KV cache not counted); ' +
      'upload KB = 10^3 bytes written from the CPU (writeBuffer, uniform blocks); store MB = expert bytes read from the model (loads and warm reads the host tier did not hold); ' +
      'encode ms = JS time building commands (waits and submit calls excluded); round trips = mapAsync readbacks awaited.',
    '',
  );
  for (const r of reports) {
    out.push(`## ${r.model.name}`, '', ...phaseTable(r, 'decode'), '', ...phaseTable(r, 'prefill'), '');
  }
  out.push(
    '## Bandwidth bound (arithmetic, not a measurement)',
    '',
    'tok/s ≤ memory bandwidth / weight bytes per decode token, all experts resident, at the real depth and vocabulary (extrapolated above): ' +
      'the speed at which one decode step could at best stream its weights once, ignoring the KV cache, activations, dispatch and round-trip latency.',
    '',
    ...boundTable(reports),
    '',
    `The whole run took ${seconds.toFixed(0)} s.`,
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const gpu = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'bench decode' });
  const info = gpu.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  const wanted = new Set(opt.models.split(','));
  try {
    const reports: ModelReport[] = [];
    for (const model of MODELS.filter((m) => wanted.has(m.key))) reports.push(await benchModel(gpu.device, model));
    const markdown = report(reports, adapter, info.isFallbackAdapter, (performance.now() - started) / 1000);
    const path = opt.out ?? `bench/results/decode-${adapterSlug(info)}.md`;
    await writeFile(path, markdown + '\n');
    log(`wrote ${path}`);
    console.log(markdown);
  } finally {
    gpu.device.destroy();
  }
}

await main();
