/**
 * `npm run bench:locality`: routing statistics of generated models (the
 * make-tiny locality knobs, off and on) beside those of the real Mixtral-8x7B
 * and gpt-oss-20b traces in ../shared/traces (or WEBMOE_TRACES_DIR), all
 * computed by src/experts/stats.ts. Generated models are routed by the CPU
 * reference forward pass over the generator's built-in English text.
 * Prints a markdown table.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { firstChoiceRepeat, randomBaselineStats, shuffledBaselineStats, traceStats } from '../../src/experts/analysis/stats';
import { readTraces } from '../../src/experts/trace';
import type { RoutingTrace } from '../../src/experts/trace';
import { readTracePaths } from '../../src/experts/analysis/trace-node';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { Tokenizer } from '../../src/text/tokenizer';
import { TINY_CORPUS } from '../../src/tiny/corpus';
import type { TinyLocality } from '../../src/tiny/locality';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import type { TinyModelOptions } from '../../src/tiny/make-tiny';
import { referenceRoutingTrace } from '../../src/tiny/reference-trace';

const TRACES_DIR = process.env.WEBMOE_TRACES_DIR ?? resolve(import.meta.dirname, '../../../shared/traces');
const TOKENS = 300;
const SHAPES: { label: string; opts: TinyModelOptions }[] = [
  { label: '8 layers, 16 experts, top-2, hidden 64', opts: { arch: 'olmoe', layers: 8, experts: 16, topK: 2, hidden: 64, seed: 5 } },
  { label: '8 layers, 64 experts, top-8, hidden 128', opts: { arch: 'olmoe', layers: 8, experts: 64, topK: 8, hidden: 128, seed: 5 } },
];
const KNOBS: (TinyLocality | undefined)[] = [
  undefined,
  { temporal: 0.6 },
  { affinity: 0.8 },
  { skew: 0.5 },
  { temporal: 0.6, affinity: 0.8, skew: 0 },
  // Close to the built-in trained model's held-out routing at its own shape (16 experts, top-2).
  { temporal: 0.03, affinity: 0.6 },
];
const TRAINED_TRACES = resolve(import.meta.dirname, '../../test/fixtures/default-model/heldout-routing.jsonl');

function row(label: string, traces: RoutingTrace[]): string {
  const s = traceStats(traces);
  const rnd = randomBaselineStats(traces, 10);
  const shuf = shuffledBaselineStats(traces, 10);
  const first = firstChoiceRepeat(traces);
  const mean = first.reduce((a, b) => a + b, 0) / first.length;
  const { nExperts: E, topK: k } = traces[0];
  return (
    `| ${label} | ${E}/${k} | ${s.tokens} | ${s.reuse.toFixed(3)} | ${rnd.reuse.toFixed(3)} | ${shuf.reuse.toFixed(3)} | ` +
    `${s.affinity.toFixed(3)} | ${rnd.affinity.toFixed(3)} | ${shuf.affinity.toFixed(3)} | ${s.top10.toFixed(3)} | ` +
    `${mean.toFixed(3)} (${Math.min(...first).toFixed(2)}–${Math.max(...first).toFixed(2)}) | ${(1 / E).toFixed(3)} |`
  );
}

async function main(): Promise<void> {
  const out = [
    '| routing | experts/top-k | tokens | reuse | reuse, random | reuse, shuffled | affinity | affinity, random | affinity, shuffled | top-10% share | first-choice repeat, mean (layer min–max) | first-choice, random |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const family of ['mixtral-8x7b', 'gpt-oss-20b']) {
    const dir = join(TRACES_DIR, family);
    if (!existsSync(dir)) throw new Error(`traces not found at ${dir} (set WEBMOE_TRACES_DIR)`);
    out.push(row(`${family} (real traces, decode)`, await readTracePaths([dir])));
  }
  out.push(row('built-in trained model (held-out text, teacher-forced)', readTraces(readFileSync(TRAINED_TRACES, 'utf8'))));
  for (const shape of SHAPES) {
    for (const locality of KNOBS) {
      const bytes = makeTinyModel({ ...shape.opts, locality });
      const tokens = Tokenizer.fromGguf(await readGguf(sourceFromBytes(bytes))).encode(TINY_CORPUS).slice(0, TOKENS);
      const trace = await referenceRoutingTrace(bytes, tokens, 'generated');
      process.stderr.write(`bench:locality: ${shape.label} ${JSON.stringify(locality ?? 'off')}\n`);
      out.push(row(`generated ${shape.label}, ${locality ? Object.entries(locality).map(([k, v]) => `${k} ${v}`).join(', ') : 'knobs off'}`, [trace]));
    }
  }
  console.log(out.join('\n'));
}

await main();
