/**
 * What grouping the routed experts by expert buys prefill (`npm run bench:prefill`):
 * on generated models with the layer shapes of OLMoE-1B-7B and Qwen3-30B-A3B
 * in Q4_K, all experts resident, a prompt run in batches of each size given,
 * once token by token (the decode FFN on every token, as prefill ran before
 * grouping) and once grouped, alternating in this process. Reports prefill
 * and decode tok/s, their ratio, and per prefill token the weight bytes the
 * kernels read and the dispatches, and checks both modes sample the same
 * greedy tokens. Writes bench/results/prefill-<adapter>.md and prints it.
 *
 * Options: --prompt N (default 256), --decode N (default 4), --batches 32,128
 * (batch sizes), --layers N (default 1), --models olmoe,qwen3, --rounds N
 * (alternating runs per row, median quoted; default 1), --out PATH.
 */

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine } from '../../src/engine/engine';
import { perCosts } from '../../src/gpu/cost-counter';
import { requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import type { TinyArch } from '../../src/tiny/archs';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import type { TinyModelOptions } from '../../src/tiny/make-tiny';
import { adapterSlug } from '../adapter-slug';

const { values: opt } = parseArgs({
  options: {
    prompt: { type: 'string', default: '256' },
    decode: { type: 'string', default: '4' },
    batches: { type: 'string', default: '32,128' },
    layers: { type: 'string', default: '1' },
    models: { type: 'string', default: 'olmoe,qwen3' },
    rounds: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
const PROMPT_TOKENS = Number(opt.prompt);
const DECODE_TOKENS = Number(opt.decode);
const LAYERS = Number(opt.layers);
const ROUNDS = Number(opt.rounds);
const BATCHES = opt.batches.split(',').map(Number);

const MODELS: readonly { key: string; name: string; arch: TinyArch; shape: Partial<TinyModelOptions> }[] = [
  { key: 'olmoe', name: 'OLMoE-1B-7B', arch: 'olmoe', shape: { hidden: 2048, heads: 16, kvHeads: 16, headDim: 128, experts: 64, topK: 8, expertFF: 1024 } },
  { key: 'qwen3', name: 'Qwen3-30B-A3B', arch: 'qwen3moe', shape: { hidden: 2048, heads: 32, kvHeads: 4, headDim: 128, experts: 128, topK: 8, expertFF: 768 } },
];

const log = (message: string) => process.stderr.write(`bench:prefill: ${message}\n`);

interface Run {
  prefillTokPerS: number;
  decodeTokPerS: number;
  weightMBPerToken: number;
  dispatchesPerToken: number;
  tokens: number[];
}

async function runOnce(device: GPUDevice, bytes: Uint8Array, prompt: number[], batch: number, grouped: boolean): Promise<Run> {
  const engine = await Engine.load(device, bytes, { maxContext: PROMPT_TOKENS + DECODE_TOKENS + 8, maxBatchTokens: batch, groupedPrefill: grouped });
  try {
    const result = await engine.generate({ promptTokens: prompt, maxTokens: DECODE_TOKENS + 1, ignoreEog: true, sampling: { temperature: 0 } });
    const prefill = perCosts(result.stats.cost.prefill.counts, result.stats.cost.prefill.tokens);
    return {
      prefillTokPerS: result.stats.prefillTokPerS,
      decodeTokPerS: result.stats.decodeTokPerS,
      weightMBPerToken: prefill.weightBytes / 1e6,
      dispatchesPerToken: prefill.dispatches,
      tokens: result.tokens,
    };
  } finally {
    engine.destroy();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (n: number, digits = 2) => n.toFixed(digits);

async function main(): Promise<void> {
  const gpu = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'bench:prefill' });
  const info = gpu.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  const out: string[] = [
    '# What grouping experts buys prefill (`npm run bench:prefill`)',
    '',
    `Run: \`npm run bench:prefill -- --prompt ${PROMPT_TOKENS} --decode ${DECODE_TOKENS} --batches ${BATCHES.join(',')} --layers ${LAYERS} --rounds ${ROUNDS}\`.`,
    '',
    `Adapter: ${adapter}. Counts (weight MB, dispatches) are the engine's cost counters and do not depend on the adapter; tok/s is measured here, alternating the two modes in one process${ROUNDS > 1 ? ` (median of ${ROUNDS} rounds)` : ''}.`,
    '',
    `Models: generated in Q4_K with ${LAYERS} layer${LAYERS > 1 ? 's' : ''}, all experts resident, greedy; ${PROMPT_TOKENS} prompt tokens in batches of the size given, then ${DECODE_TOKENS} decode steps. "token by token": every prompt token runs the decode FFN (each routed expert read once per token); "grouped": the batch's pairs are gathered by expert on the GPU and each expert read once per group of up to 8 of its tokens (weight MB counted at the bound on the groups; the real count is at most that).`,
    '',
  ];
  for (const model of MODELS.filter((m) => opt.models.split(',').includes(m.key))) {
    log(`${model.name}: generating ${LAYERS} layer(s) in Q4_K`);
    const bytes = makeTinyModel({ arch: model.arch, type: 'q4_k', layers: LAYERS, seed: 1, ...model.shape });
    const vocab = 256; // every generated model's vocabulary holds the 256 byte tokens at least
    const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => (i * 7919 + 3) % vocab);
    out.push(`## ${model.name} (${JSON.stringify(model.shape)})`, '');
    out.push('| batch | mode | prefill tok/s | decode tok/s | prefill / decode | weight MB per prefill token | dispatches per prefill token | grouped / token by token (prefill tok/s) | same tokens |');
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const batch of BATCHES) {
      const runs: Record<'token' | 'grouped', Run[]> = { token: [], grouped: [] };
      for (let r = 0; r < ROUNDS; r++) {
        for (const mode of ['token', 'grouped'] as const) {
          log(`${model.name}: batch ${batch}, ${mode}, round ${r + 1}/${ROUNDS}`);
          runs[mode].push(await runOnce(gpu.device, bytes, prompt, batch, mode === 'grouped'));
        }
      }
      const same = runs.grouped.every((g) => JSON.stringify(g.tokens) === JSON.stringify(runs.token[0]!.tokens));
      const ratios = runs.grouped.map((g, i) => g.prefillTokPerS / runs.token[i]!.prefillTokPerS);
      for (const mode of ['token', 'grouped'] as const) {
        const rs = runs[mode];
        const prefill = median(rs.map((x) => x.prefillTokPerS));
        const decode = median(rs.map((x) => x.decodeTokPerS));
        const ratio = mode === 'grouped' ? `${fmt(median(ratios))}x${ROUNDS > 1 ? ` (${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))})` : ''}` : '-';
        out.push(
          `| ${batch} | ${mode === 'token' ? 'token by token' : 'grouped'} | ${fmt(prefill)} | ${fmt(decode)} | ${fmt(prefill / decode)} | ${fmt(rs[0]!.weightMBPerToken)} | ${fmt(rs[0]!.dispatchesPerToken)} | ${ratio} | ${mode === 'grouped' ? (same ? 'yes' : 'NO') : '-'} |`,
        );
      }
    }
    out.push('');
  }
  gpu.device.destroy();
  const markdown = out.join('\n');
  const path = opt.out ?? `bench/results/prefill-${adapterSlug(info)}.md`;
  await writeFile(path, `${markdown}\n`);
  process.stdout.write(`${markdown}\n`);
  log(`wrote ${path}`);
}

await main();
