/**
 * `npm run bench:host-tier`: what the host tier (src/experts/host-tier.ts)
 * saves. On a generated model with OLMoE-1B-7B's layer shapes (hidden 2048,
 * 16 heads of 128, 64 experts, top-8, expert FFN 1024, Q4_K; a few layers)
 * and routing locality (src/tiny/locality.ts, as bench:experts), imported
 * into the filesystem weight store so every store read is a real record
 * read, at a GPU expert budget of 25%: store bytes and store reads per
 * decode token, hit rates at each tier and tok/s, with no host tier, with
 * one holding 50% of the experts (the engine's default warming), and the
 * same without warming; all experts resident first and last, for tok/s. Writes
 * bench/results/host-tier-<adapter>.md and prints it; asserts nothing.
 *
 * Options: --layers N (default 2), --prompt N (default 8), --decode N (default 128: at 64 the host
 * tier's ratio was 0.25, still falling with cold reads; at 128, 0.21),
 * --host-shares 0,0.5 (host budgets as shares of the experts' bytes), --out PATH.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../../src/engine/engine';
import type { EngineOptions, GenerateResult } from '../../src/engine/engine';
import { firstChoiceRepeat, traceStats } from '../../src/experts/analysis/stats';
import { DEFAULT_HOST_WARM } from '../../src/experts/scheduler';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { sourceFromPath } from '../../src/gguf/source-node';
import { requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import { openFsWeightStore } from '../../src/store/fs-node';
import type { StoredModel } from '../../src/store/weight-store';
import { Tokenizer } from '../../src/text/tokenizer';
import { TINY_CORPUS } from '../../src/tiny/corpus';
import type { TinyLocality } from '../../src/tiny/locality';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { adapterSlug } from '../adapter-slug';

const { values: opt } = parseArgs({
  options: {
    layers: { type: 'string', default: '2' },
    prompt: { type: 'string', default: '8' },
    decode: { type: 'string', default: '128' },
    'host-shares': { type: 'string', default: '0,0.5' },
    out: { type: 'string' },
  },
});
const SHAPE = {
  arch: 'olmoe' as const, type: 'q4_k' as const, layers: Number(opt.layers), seed: 11, contextLength: 512,
  hidden: 2048, heads: 16, kvHeads: 16, headDim: 128, experts: 64, topK: 8, expertFF: 1024,
};
const LOCALITY: TinyLocality = { temporal: 0.5, affinity: 0.8, skew: 0, window: 8 };
/** Sampled, not greedy (a random model's greedy text soon loops, flattering every cache); one seed, so every run decodes the same tokens. */
const SAMPLING = { temperature: 1, seed: 1 };
const GPU_SHARE = 0.25;
const PROMPT = Number(opt.prompt);
const DECODE = Number(opt.decode);
const HOST_SHARES = opt['host-shares'].split(',').map(Number);

const log = (message: string) => process.stderr.write(`bench:host-tier: ${message}\n`);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const mb = (bytes: number) => (bytes / 1e6).toFixed(2);

interface Setting {
  label: string;
  gpuShare: number;
  hostShare: number;
  warm: boolean;
}

interface Row {
  setting: Setting;
  result: GenerateResult;
  trace: ReturnType<Engine['model']['takeRoutingTrace']>;
}

function settings(): Setting[] {
  const out: Setting[] = [{ label: 'all resident', gpuShare: 1, hostShare: 0, warm: false }];
  for (const hostShare of HOST_SHARES) {
    if (hostShare === 0) out.push({ label: 'no host tier', gpuShare: GPU_SHARE, hostShare, warm: false });
    else {
      out.push({ label: `host ${hostShare * 100}%, warming (default)`, gpuShare: GPU_SHARE, hostShare, warm: true });
      out.push({ label: `host ${hostShare * 100}%, no warming`, gpuShare: GPU_SHARE, hostShare, warm: false });
    }
  }
  // Again at the end: the spread of the two resident rows shows how much the shared machine drifted.
  out.push({ label: 'all resident (again, at the end)', gpuShare: 1, hostShare: 0, warm: false });
  return out;
}

async function runOnce(device: GPUDevice, stored: StoredModel, promptTokens: number[], s: Setting, routedBytes: number): Promise<Row> {
  const options: EngineOptions = {
    maxContext: PROMPT + DECODE + 8,
    expertBudgetBytes: s.gpuShare < 1 ? Math.floor(s.gpuShare * routedBytes) : undefined,
    hostBudgetBytes: Math.floor(s.hostShare * routedBytes),
    hostWarm: s.warm ? undefined : { lookahead: 0 },
  };
  const engine = await Engine.fromStoredModel(device, stored, options);
  try {
    engine.model.startRoutingTrace('bench');
    const result = await engine.generate({ promptTokens, maxTokens: DECODE + 1, ignoreEog: true, sampling: SAMPLING });
    await engine.model.settleExperts();
    return { setting: s, result, trace: engine.model.takeRoutingTrace() };
  } finally {
    engine.destroy();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'webmoe-bench-host-tier-'));
  const gpu = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'bench host tier' });
  const info = gpu.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  try {
    log(`generating ${SHAPE.layers} layers (${JSON.stringify(SHAPE)}, locality ${JSON.stringify(LOCALITY)})`);
    let t0 = performance.now();
    const bytes = makeTinyModel({ ...SHAPE, locality: LOCALITY });
    const generateSeconds = (performance.now() - t0) / 1000;
    const path = join(dir, 'bench.gguf');
    await writeFile(path, bytes);
    const file = await readGguf(sourceFromBytes(bytes));
    const routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
    const promptTokens = Tokenizer.fromGguf(file).encode(TINY_CORPUS).slice(0, PROMPT);
    log(`${mib(bytes.byteLength)} file, ${mib(routedBytes)} routed experts; importing into the filesystem store`);
    const store = await openFsWeightStore(join(dir, 'store'));
    const source = await sourceFromPath(path);
    t0 = performance.now();
    await store.importModel(source, { modelId: 'bench' });
    await source.close();
    const importSeconds = (performance.now() - t0) / 1000;
    const stored = await store.openModel('bench');
    // Warm-up (pipeline compilation, first-use costs), not measured.
    const warm = await Engine.fromStoredModel(gpu.device, stored, { maxContext: PROMPT + 8 });
    await warm.generate({ promptTokens, maxTokens: 2, ignoreEog: true, sampling: SAMPLING });
    warm.destroy();
    const rows: Row[] = [];
    for (const s of settings()) {
      log(s.label);
      rows.push(await runOnce(gpu.device, stored, promptTokens, s, routedBytes));
    }
    const markdown = report(rows, { adapter, bytes: bytes.byteLength, routedBytes, generateSeconds, importSeconds, seconds: (performance.now() - started) / 1000 });
    const out = opt.out ?? `bench/results/host-tier-${adapterSlug(info)}.md`;
    await writeFile(out, markdown + '\n');
    log(`wrote ${out}`);
    console.log(markdown);
  } finally {
    gpu.device.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Context {
  adapter: string;
  bytes: number;
  routedBytes: number;
  generateSeconds: number;
  importSeconds: number;
  seconds: number;
}

function report(rows: Row[], c: Context): string {
  const args = process.argv.slice(2).join(' ');
  const expertBytes = c.routedBytes / (SHAPE.layers * SHAPE.experts);
  const residents = rows.filter((r) => r.setting.gpuShare === 1).map((r) => r.result.stats.decodeTokPerS);
  const residentTokPerS = residents.reduce((a, b) => a + b, 0) / residents.length;
  const baseline = rows.find((r) => r.setting.gpuShare < 1 && r.setting.hostShare === 0)?.result.stats;
  const perToken = (s: GenerateResult['stats']) => s.cost.decode.counts.storeBytes / Math.max(1, s.cost.decode.tokens);
  const trace = rows[0]!.trace;
  const routing = trace ? traceStats([trace]) : undefined;
  const first = trace ? firstChoiceRepeat([trace]) : [];
  const out: string[] = ['# Host tier: store reads with and without host memory (`npm run bench:host-tier`)', ''];
  out.push(`Run: \`npm run bench:host-tier${args ? ` -- ${args}` : ''}\`. Adapter: ${c.adapter}.`, '');
  out.push(
    `Model: generated \`olmoe\` with OLMoE-1B-7B's layer shapes (${JSON.stringify({ ...SHAPE, arch: undefined, type: undefined, seed: undefined, contextLength: undefined })}), ` +
      `Q4_K, ${SHAPE.layers} layers, ${mib(c.bytes)} of which ${mib(c.routedBytes)} routed experts (${mib(expertBytes)} each); ` +
      `routing locality on (make-tiny ${JSON.stringify(LOCALITY)}, as bench:experts)` +
      (routing
        ? `: reuse of the previous token's experts ${routing.reuse.toFixed(3)} (uniform ${(SHAPE.topK / SHAPE.experts).toFixed(3)}), top-10% experts' share ` +
          `${routing.top10.toFixed(3)}, first-choice repeat ${(first.reduce((a, b) => a + b, 0) / Math.max(1, first.length)).toFixed(3)}`
        : '') +
      `. Generated in ${c.generateSeconds.toFixed(0)} s, imported into the filesystem weight store in ${c.importSeconds.toFixed(1)} s; every store read is one record read from that directory.`,
    '',
  );
  out.push(
    `Each row: a fresh engine, ${PROMPT} prompt tokens then ${DECODE} decode steps sampled at temperature 1 with one seed (the same tokens in every row), ` +
      `GPU expert budget ${GPU_SHARE * 100}% of the routed experts' bytes with the engine's default policy (next-use) and prefetch (affinity, next layer, confidence 0.45). ` +
      `Host budgets are shares of the same bytes; warming reads the affinity predictor's guesses up to ${DEFAULT_HOST_WARM.lookahead} MoE layers ahead ` +
      `(confidence ${DEFAULT_HOST_WARM.minConfidence} or more, not in GPU slots) into host memory. ` +
      'Store MB per decode token: the cost counter\'s store bytes of the decode phase over its tokens; the hit and read counts are the whole request\'s (prefill and decode). ' +
      'GPU hit rate = GPU hits / accesses; host share = GPU loads served from host memory / GPU loads.',
    '',
  );
  out.push('| setting | store MB / decode token | vs no host tier | store reads (request) | of them warming | GPU hit rate | host share of GPU loads | decode tok/s | tok/s vs no host tier | tok/s vs all resident (mean of both) | stall ms |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const { setting, result } of rows) {
    const s = result.stats;
    const loads = s.hostHits + s.storeReads - s.hostWarmReads;
    const streamed = setting.gpuShare < 1;
    out.push(
      `| ${setting.label} | ${mb(perToken(s))} | ${baseline && streamed ? (perToken(s) / Math.max(1, perToken(baseline))).toFixed(3) : '-'} | ${s.storeReads} | ${s.hostWarmReads} | ` +
        `${(s.gpuHits / Math.max(1, s.expertHits + s.expertMisses)).toFixed(3)} | ${streamed ? (s.hostHits / Math.max(1, loads)).toFixed(3) : '-'} | ` +
        `${s.decodeTokPerS.toFixed(2)} | ${baseline && streamed ? (s.decodeTokPerS / baseline.decodeTokPerS).toFixed(2) : '-'} | ` +
        `${(s.decodeTokPerS / residentTokPerS).toFixed(2)} | ${s.stallMs.toFixed(0)} |`,
    );
  }
  out.push(
    '',
    'On a CPU adapter tok/s mostly measure the CPU, and a store read here is a page-cache read of a local file (IndexedDB in a browser reads at about 175 MB/s), ' +
      'so the store-bytes ratio is the figure to carry over; tok/s ratios only show what the host tier saves on this machine.',
    '',
    `The whole run took ${c.seconds.toFixed(0)} s.`,
  );
  return out.join('\n');
}

await main();
