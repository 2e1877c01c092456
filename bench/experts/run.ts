/**
 * `npm run bench:experts`: decode speed and expert-cache hit rate under
 * expert budgets of 100%, 50%, 25% and 12.5% of the routed experts, for
 * on-demand LRU and for LRU with each prefetch predictor, in one run, on a
 * generated model with routing locality (src/tiny/locality.ts) imported into
 * the filesystem weight store, so every miss is a real record read.
 *
 * The figures that matter: tok/s at 25% as a fraction of tok/s at 100%
 * (everything resident), and the engine's hit rate as a fraction of Belady's
 * optimum at the same capacity, computed from the routing the engine
 * recorded in the same run (src/experts/belady.ts). Prints a markdown table;
 * asserts nothing about speed.
 *
 * Usage: npm run bench:experts -- [--layers N] [--decode N] [--prompt N] [--hidden N]
 *        [--heads N] [--experts N] [--top-k N] [--expert-ff N]
 * Defaults are OLMoE-1B-7B's layer shapes scaled down for a CPU adapter.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../../src/engine/engine';
import { beladyMin } from '../../src/experts/analysis/belady';
import { firstChoiceRepeat, shuffledBaselineStats, traceStats } from '../../src/experts/analysis/stats';
import { accessSequence } from '../../src/experts/trace';
import type { RoutingTrace } from '../../src/experts/trace';
import { requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import { sourceFromPath } from '../../src/gguf/source-node';
import type { PrefetchOptions } from '../../src/experts/scheduler';
import { openFsWeightStore } from '../../src/store/fs-node';
import { Tokenizer } from '../../src/text/tokenizer';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { TINY_CORPUS } from '../../src/tiny/corpus';
import type { TinyLocality } from '../../src/tiny/locality';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const { values: opt } = parseArgs({
  options: {
    layers: { type: 'string', default: '12' },
    decode: { type: 'string', default: '24' },
    prompt: { type: 'string', default: '8' },
    hidden: { type: 'string', default: '512' },
    heads: { type: 'string', default: '8' },
    experts: { type: 'string', default: '64' },
    'top-k': { type: 'string', default: '8' },
    'expert-ff': { type: 'string', default: '256' },
  },
});
const SHAPE = {
  arch: 'olmoe' as const,
  type: 'q4_k' as const,
  layers: Number(opt.layers),
  hidden: Number(opt.hidden),
  heads: Number(opt.heads),
  experts: Number(opt.experts),
  topK: Number(opt['top-k']),
  expertFF: Number(opt['expert-ff']),
  contextLength: 512,
  seed: 11,
};
const LOCALITY: TinyLocality = { temporal: 0.5, affinity: 0.8, skew: 0, window: 8 };
/** Sampled, not greedy: a random model's greedy text soon loops, which would flatter every cache. Same seed, same tokens under every budget. */
const SAMPLING = { temperature: 1, seed: 1 };
const DECODE = Number(opt.decode);
const PROMPT = Number(opt.prompt);
/** All resident first and again last: the spread of the two shows how much the machine drifted during the run. */
const BUDGETS = [1, 0.5, 0.25, 0.125, 1];
const PREFETCH: (PrefetchOptions | undefined)[] = [undefined, { predictor: 'pregate', lookahead: 1 }, { predictor: 'affinity', lookahead: 2 }];

const log = (message: string) => process.stderr.write(`bench:experts: ${message}\n`);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

interface Row {
  budget: number;
  mode: string;
  slots: number;
  tokPerS: number;
  hitRate: number;
  belady: number;
  stallMs: number;
  streamed: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'webmoe-bench-experts-'));
  const gpu = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'bench experts' });
  const adapter = [gpu.adapterInfo.vendor, gpu.adapterInfo.architecture, gpu.adapterInfo.description].filter(Boolean).join(' ');
  const cpu = gpu.adapterInfo.isFallbackAdapter;
  try {
    log(`generating the model (${JSON.stringify(SHAPE)}, locality ${JSON.stringify(LOCALITY)})`);
    const bytes = makeTinyModel({ ...SHAPE, locality: LOCALITY });
    const path = join(dir, 'bench.gguf');
    await writeFile(path, bytes);
    const file = await readGguf(sourceFromBytes(bytes));
    const routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((s, t) => s + t.nBytes, 0);
    const promptTokens = Tokenizer.fromGguf(file).encode(TINY_CORPUS).slice(0, PROMPT);
    log(`${mib(bytes.byteLength)} file, ${mib(routedBytes)} of routed experts; importing into the filesystem store`);
    const store = await openFsWeightStore(join(dir, 'store'));
    const source = await sourceFromPath(path);
    const t0 = performance.now();
    await store.importModel(source, { modelId: 'bench' });
    await source.close();
    const importSeconds = (performance.now() - t0) / 1000;
    const stored = await store.openModel('bench');

    const rows: Row[] = [];
    let residentTrace: RoutingTrace | undefined;
    // Warm-up (shader compilation, first-use costs), not measured.
    const warm = await Engine.fromStoredModel(gpu.device, stored, { maxContext: 256 });
    await warm.generate({ promptTokens, maxTokens: 4, ignoreEog: true, sampling: SAMPLING });
    warm.destroy();
    for (const [i, budget] of BUDGETS.entries()) {
      for (const prefetch of budget === 1 ? [undefined] : PREFETCH) {
        const resident = i === 0 ? 'all resident' : 'all resident (again, at the end)';
        const mode = prefetch ? `LRU + ${prefetch.predictor} prefetch (lookahead ${prefetch.lookahead})` : budget === 1 ? resident : 'LRU on demand';
        log(`budget ${budget * 100}%: ${mode}`);
        const engine = await Engine.fromStoredModel(gpu.device, stored, {
          expertBudgetBytes: budget === 1 ? undefined : Math.floor(budget * routedBytes),
          expertPolicy: 'lru',
          prefetch: prefetch ?? { predictor: 'none' }, // on demand: the engine's default would prefetch
          maxContext: 256,
        });
        try {
          engine.model.startRoutingTrace('bench');
          const result = await engine.generate({ promptTokens, maxTokens: DECODE, ignoreEog: true, sampling: SAMPLING });
          await engine.model.settleExperts();
          const trace = engine.model.takeRoutingTrace()!;
          residentTrace ??= trace;
          const slots = engine.model.memory().expertSlots;
          const s = result.stats;
          const belady = beladyMin(accessSequence(trace), slots);
          rows.push({
            budget, mode, slots,
            tokPerS: s.decodeTokPerS,
            hitRate: s.expertHits / Math.max(1, s.expertHits + s.expertMisses),
            belady: belady.hits / Math.max(1, belady.accesses),
            stallMs: s.stallMs,
            streamed: s.bytesStreamed,
          });
        } finally {
          engine.destroy();
        }
      }
    }
    const stats = traceStats([residentTrace!]);
    const shuffled = shuffledBaselineStats([residentTrace!], 8);
    const first = firstChoiceRepeat([residentTrace!]);
    printReport(rows, { adapter, cpu, bytes: bytes.byteLength, routedBytes, importSeconds, seconds: (performance.now() - started) / 1000, promptTokens: promptTokens.length, stats, shuffled, first });
  } finally {
    gpu.device.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Context {
  adapter: string;
  /** A software adapter: its tok/s measure the CPU. */
  cpu: boolean;
  bytes: number;
  routedBytes: number;
  importSeconds: number;
  seconds: number;
  promptTokens: number;
  stats: ReturnType<typeof traceStats>;
  shuffled: ReturnType<typeof traceStats>;
  first: number[];
}

function printReport(rows: Row[], c: Context): void {
  const residents = rows.filter((r) => r.budget === 1);
  const resident = { ...residents[0], tokPerS: residents.reduce((sum, r) => sum + r.tokPerS, 0) / residents.length };
  const k = SHAPE.topK;
  const E = SHAPE.experts;
  const out: string[] = [];
  out.push('# Expert streaming benchmark (`npm run bench:experts`)', '');
  const reading = c.cpu ? 'A CPU adapter: absolute tok/s say nothing about a GPU; ratios within this run are what to read.' : 'Ratios within this run are what to read.';
  out.push(`Adapter: ${c.adapter}. ${reading}`, '');
  out.push(
    `Model: generated \`olmoe\` with OLMoE-1B-7B's layer structure ${c.cpu ? 'scaled down for the CPU adapter ' : ''}` +
      `(OLMoE: hidden 2048, 64 experts, top-8, expert FFN 1024, 16 layers, 6.9B parameters; here: hidden ${SHAPE.hidden}, ${E} experts, top-${k}, ` +
      `expert FFN ${SHAPE.expertFF}, ${SHAPE.layers} layers, Q4_K experts), ${mib(c.bytes)}, of which ${mib(c.routedBytes)} routed experts ` +
      `(${mib(c.routedBytes / (SHAPE.layers * E))} each); routing locality on (make-tiny ${JSON.stringify(LOCALITY)}). ` +
      `Imported into the filesystem weight store in ${c.importSeconds.toFixed(1)} s; every miss reads one record from it.`,
    '',
  );
  out.push(
    `Routing of this run (${c.promptTokens} prompt + ${DECODE} decoded tokens, sampled at temperature 1 with one seed, so the same tokens under every budget): reuse of the previous token's experts ` +
      `${c.stats.reuse.toFixed(3)} (per-layer shuffled ${c.shuffled.reuse.toFixed(3)}, uniform ${(k / E).toFixed(3)}), inter-layer affinity ` +
      `${c.stats.affinity.toFixed(3)} (shuffled ${c.shuffled.affinity.toFixed(3)}), top-10% experts' share ${c.stats.top10.toFixed(3)} (uniform 0.100), ` +
      `first-choice repeat ${(c.first.reduce((a, b) => a + b, 0) / c.first.length).toFixed(3)} (uniform ${(1 / E).toFixed(3)}).`,
    '',
  );
  out.push('| budget | expert slots | policy | decode tok/s | tok/s vs 100% (mean of both) | hit rate | Belady hit rate | hit / Belady | stall ms | streamed |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    out.push(
      `| ${r.budget * 100}% | ${r.slots} | ${r.mode} | ${r.tokPerS.toFixed(2)} | ${(r.tokPerS / resident.tokPerS).toFixed(2)} | ${r.hitRate.toFixed(3)} | ` +
        (r.budget === 1 ? '- | - |' : `${r.belady.toFixed(3)} | ${r.belady > 0 ? (r.hitRate / r.belady).toFixed(2) : '-'} |`) +
        ` ${r.stallMs.toFixed(0)} | ${mib(r.streamed)} |`,
    );
  }
  const at25 = rows.filter((r) => r.budget === 0.25);
  const best = at25.reduce((a, b) => (b.tokPerS > a.tokPerS ? b : a));
  const lru = at25.find((r) => r.mode === 'LRU on demand')!;
  out.push('');
  out.push(
    `At 25%: on-demand LRU decodes at ${(lru.tokPerS / resident.tokPerS).toFixed(2)} of the all-resident speed with ${(lru.hitRate / lru.belady).toFixed(2)} of Belady's hit rate; ` +
      `the fastest, ${best.mode}, at ${(best.tokPerS / resident.tokPerS).toFixed(2)} with ${(best.hitRate / best.belady).toFixed(2)}.`,
  );
  out.push(
    '',
    `Belady's optimum bounds demand-only caches; a prefetching cache can beat it (a prefetch turns a would-be miss into a hit). ` +
      (c.cpu
        ? `Decode speed on a CPU adapter, on a machine shared with other work, mostly measures the CPU: a miss here is a page-cache read and a copy into another part ` +
          `of the same memory, so tok/s ratios say little about a GPU. `
        : '') +
      `Hit rates count every routed (token, layer, expert) access of prefill and decode as the engine's cache saw them (a prefill batch loads its ` +
      `experts once per piece), from a cold cache (all resident: every expert loaded before the run, so no Belady figure); Belady's optimum replays the recorded routing token by token, cold, at the same slot count. The whole run took ${c.seconds.toFixed(0)} s.`,
  );
  console.log(out.join('\n'));
}

await main();
