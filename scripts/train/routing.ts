/**
 * Routing of the default model on held-out text, as ground truth for the
 * expert scheduler: records traces (src/experts/trace.ts format) through the
 * CPU reference forward pass and measures how local they are, next to random
 * routing of the same shape and the same routing shuffled in time.
 *
 * usage: npx tsx scripts/train/routing.ts [workDir] [--model FILE] [--windows N] [--tokens T] [--fixture N] [--out FILE]
 * reads  the model (default: the shipped Q8_0 file), workDir/heldout.u16
 * writes --out (JSON statistics) when given, and with --fixture N the first
 *        N windows' traces to test/fixtures/default-model/heldout-routing.jsonl
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_MODEL_FILE } from '../../src/default-model';
import { firstChoiceRepeat, randomBaselineStats, shuffledBaselineStats, traceStats } from '../../src/experts/analysis/stats';
import { type RoutingTrace, writeTraces } from '../../src/experts/trace';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { loadReferenceModel } from '../../src/ref/forward';
import { heldoutWindows } from './heldout';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const workDir = args[0] && !args[0].startsWith('--') ? args[0] : join(import.meta.dirname, 'work');
const modelPath = option('model', DEFAULT_MODEL_FILE);
const windowCount = Number(option('windows', '16'));
const windowTokens = Number(option('tokens', '256'));
const fixtureWindows = Number(option('fixture', '0'));
const outPath = option('out', '');
export const FIXTURE_PATH = join(import.meta.dirname, '../../test/fixtures/default-model/heldout-routing.jsonl');

/** Bytes of one expert's gate, up and down matrices in layer 0 of the file. */
async function expertBytes(fileBytes: Uint8Array): Promise<number> {
  const file = await readGguf(sourceFromBytes(fileBytes));
  let total = 0;
  for (const part of ['gate', 'up', 'down']) {
    const info = file.tensors.find((t) => t.name === `blk.0.ffn_${part}_exps.weight`);
    if (!info) throw new Error(`${modelPath} has no blk.0.ffn_${part}_exps.weight`);
    total += info.nBytes / info.dims[2];
  }
  return total;
}

const bytes = new Uint8Array(readFileSync(modelPath));
const model = await loadReferenceModel(bytes);
const c = model.config;
const perExpert = await expertBytes(bytes);
const traces: RoutingTrace[] = heldoutWindows(join(workDir, 'heldout.u16'), windowCount, windowTokens).map((tokens, w) => {
  const { routes } = model.evaluate(tokens);
  return {
    name: `webmoe default model, held-out window ${w}`,
    nLayers: c.nLayer,
    nExperts: c.nExpert,
    topK: c.routing.topK,
    expertBytes: perExpert,
    tokens: tokens.map((_, p) => ({
      experts: routes.map((layer) => layer[p].experts),
      weights: routes.map((layer) => layer[p].weights.map((x) => Number(x.toPrecision(4)))),
    })),
  };
});

/** Mean over (layer, expert) of the probability mass of the top `n` next-layer experts, divided by k: 1 = fully determined. */
function affinityMass(ts: readonly RoutingTrace[], n: number): number {
  const { nLayers: L, nExperts: E, topK: k } = ts[0];
  let sum = 0;
  let count = 0;
  for (let l = 0; l + 1 < L; l++) {
    const pairs = Array.from({ length: E }, () => new Float64Array(E));
    const seen = new Float64Array(E);
    for (const t of ts) {
      for (const token of t.tokens) {
        for (const e of token.experts[l]) {
          seen[e]++;
          for (const next of token.experts[l + 1]) pairs[e][next]++;
        }
      }
    }
    for (let e = 0; e < E; e++) {
      if (seen[e] === 0) continue;
      const top = [...pairs[e]].sort((a, b) => b - a).slice(0, n).reduce((a, b) => a + b, 0);
      sum += top / (seen[e] * k);
      count++;
    }
  }
  return sum / count;
}

const k = c.routing.topK;
const E = c.nExpert;
const stats = {
  model: modelPath.slice(modelPath.lastIndexOf('/') + 1),
  tokens: traces.reduce((n, t) => n + t.tokens.length, 0),
  shape: { layers: c.nLayer, experts: E, topK: k },
  measured: traceStats(traces),
  random: randomBaselineStats(traces, 10),
  shuffled: shuffledBaselineStats(traces, 10),
  uniform: { reuse: k / E, affinity: k / E, top10: 0.1, firstChoiceRepeat: 1 / E, affinityTopKMass: k / E },
  firstChoiceRepeat: firstChoiceRepeat(traces),
  affinityTopKMass: affinityMass(traces, k),
};
console.log(JSON.stringify(stats, null, 1));
if (outPath) writeFileSync(outPath, JSON.stringify(stats, null, 1) + '\n');
if (fixtureWindows > 0) {
  mkdirSync(dirname(FIXTURE_PATH), { recursive: true });
  writeFileSync(FIXTURE_PATH, writeTraces(traces.slice(0, fixtureWindows)));
  console.log(`wrote ${FIXTURE_PATH}`);
}
