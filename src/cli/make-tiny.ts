/** `webmoe make-tiny`: write a small random-weight MoE model as GGUF. */
import { writeFile } from 'node:fs/promises';
import { TINY_ARCHS, type TinyArch } from '../tiny/archs';
import { makeTinyModel, TINY_WEIGHT_TYPES, type TinyWeightType } from '../tiny/make-tiny';
import { CliError, floatOption, intOption, parseCommand } from './args';

const HELP = `usage: webmoe make-tiny --arch <arch> --out <file.gguf> [options]

  --arch       ${TINY_ARCHS.join(' | ')}
  --out        output path
  --type       ${TINY_WEIGHT_TYPES.join(' | ')} (default f32; norms and routers stay f32)
  --seed       PRNG seed (default 1): same options and seed, same bytes
  --layers --experts --top-k --hidden --heads --kv-heads --head-dim
  --expert-ff --shared-ff --context --merges --rope-theta --rms-eps
  --q-lora-rank N  deepseek2: a query bottleneck of N (default 0: attn_q)
routing locality of trained MoEs (default off; any of them turns it on, see src/tiny/locality.ts):
  --temporal T   0..1 (< 1): share of router logits read from a context that drifts over --window tokens: experts repeat across neighbouring tokens
  --window N     tokens the context averages over (default 8)
  --affinity A   0..1: layer l+1's router = A x layer l's through a permutation: expert e at l predicts one expert at l+1
  --skew S       >= 0: per-expert router biases of S logit spreads: some experts far more popular`;

export async function makeTinyCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    argv,
    {
      arch: { type: 'string' },
      out: { type: 'string' },
      type: { type: 'string' },
      seed: { type: 'string' },
      layers: { type: 'string' },
      experts: { type: 'string' },
      'top-k': { type: 'string' },
      hidden: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      'head-dim': { type: 'string' },
      'expert-ff': { type: 'string' },
      'shared-ff': { type: 'string' },
      'q-lora-rank': { type: 'string' },
      context: { type: 'string' },
      merges: { type: 'string' },
      'rope-theta': { type: 'string' },
      'rms-eps': { type: 'string' },
      temporal: { type: 'string' },
      window: { type: 'string' },
      affinity: { type: 'string' },
      skew: { type: 'string' },
    },
    HELP,
  );
  if (!parsed) return;
  const v = parsed.values as Record<string, string | undefined>;
  if (!v.arch || !TINY_ARCHS.includes(v.arch as TinyArch)) throw new CliError(`--arch must be one of ${TINY_ARCHS.join(', ')}\n\n${HELP}`);
  if (!v.out) throw new CliError(`--out is required\n\n${HELP}`);
  if (v.type && !TINY_WEIGHT_TYPES.includes(v.type as TinyWeightType)) {
    throw new CliError(`--type must be one of ${TINY_WEIGHT_TYPES.join(', ')}`);
  }
  const knobs = { temporal: floatOption(v.temporal, 'temporal'), window: floatOption(v.window, 'window'), affinity: floatOption(v.affinity, 'affinity'), skew: floatOption(v.skew, 'skew') };
  const locality = Object.values(knobs).some((x) => x !== undefined)
    ? Object.fromEntries(Object.entries(knobs).filter(([, x]) => x !== undefined))
    : undefined;
  const bytes = makeTinyModel({
    arch: v.arch as TinyArch,
    type: v.type as TinyWeightType | undefined,
    seed: intOption(v.seed, 'seed'),
    layers: intOption(v.layers, 'layers'),
    experts: intOption(v.experts, 'experts'),
    topK: intOption(v['top-k'], 'top-k'),
    hidden: intOption(v.hidden, 'hidden'),
    heads: intOption(v.heads, 'heads'),
    kvHeads: intOption(v['kv-heads'], 'kv-heads'),
    headDim: intOption(v['head-dim'], 'head-dim'),
    expertFF: intOption(v['expert-ff'], 'expert-ff'),
    sharedFF: intOption(v['shared-ff'], 'shared-ff'),
    qLoraRank: intOption(v['q-lora-rank'], 'q-lora-rank'),
    contextLength: intOption(v.context, 'context'),
    merges: intOption(v.merges, 'merges'),
    ropeTheta: floatOption(v['rope-theta'], 'rope-theta'),
    rmsEps: floatOption(v['rms-eps'], 'rms-eps'),
    locality,
  });
  await writeFile(v.out, bytes);
  console.log(`wrote ${v.out} (${bytes.byteLength} bytes, ${v.arch}, ${v.type ?? 'f32'})`);
}
