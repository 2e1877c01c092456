/**
 * Seeded fuzzing of what lies above the GGUF header: hyper-parameters,
 * tensor shapes, tokenizer arrays and chat templates of valid generated
 * models (makeTinyModel, every architecture), mutated a few thousand times.
 * Every mutant runs the pre-GPU path (readGguf → modelConfigFromGguf →
 * checkGpuReadable → Tokenizer.fromGguf → ChatTemplate) and each stage
 * either succeeds with values that are sane and consistent with the file, or
 * throws one of its typed errors (with a public code other than INTERNAL).
 * A TypeError, a RangeError, a hang or an allocation the file does not
 * justify fails. Work is bounded by what it is checked against (the sizes a
 * config implies are those of tensors in the file, render limits), not by
 * wall time.
 */

import { describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine';
import { toWebMoeError } from '../../../src/engine/webmoe-error';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufArray, GgufFile, GgufKv } from '../../../src/gguf/types';
import { kv, kvArray, kvF32, kvI32, kvString, kvStringArray, kvU32, kvU64 } from '../../../src/gguf/writer';
import { MODEL_LIMITS } from '../../../src/models/config';
import { modelConfigFromGguf } from '../../../src/models/registry';
import type { ModelConfig } from '../../../src/models/config';
import { GgmlType } from '../../../src/quant/formats';
import { mulberry32 } from '../../../src/quant/random';
import type { Tokenizer } from '../../../src/text/tokenizer';
import { makeTinyModel } from '../../../src/tiny/make-tiny';
import type { TinyModelOptions } from '../../../src/tiny/make-tiny';
import { cloneSpec, getKv, headerSource, runPreGpu, setKv, specOf, writeHeader } from './support/mutant-gguf';
import type { HeaderSpec, Outcome, PreGpuResult } from './support/mutant-gguf';

const FUZZ_LIMITS = { maxSteps: 50_000, maxChars: 200_000, maxDepth: 40 };
/** The context the engine gives a model by default (moe-transformer.ts), for the KV cache size a config implies. */
const DEFAULT_CONTEXT = 4096;

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)];
const below = (rng: Rng, n: number): number => Math.floor(rng() * n);

const BASES: TinyModelOptions[] = [
  { arch: 'llama', seed: 1 },
  { arch: 'qwen2moe', seed: 2 },
  { arch: 'qwen3moe', seed: 3 },
  { arch: 'olmoe', seed: 4 },
  { arch: 'granitemoe', seed: 5, sharedFF: 64 },
  { arch: 'gpt-oss', seed: 6 },
  { arch: 'deepseek2', seed: 7, layers: 3, qLoraRank: 32 },
  { arch: 'qwen3moe', seed: 8, type: 'q8_0' },
];

interface Base {
  name: string;
  arch: string;
  spec: HeaderSpec;
  file: GgufFile;
}

let baseFiles: Promise<Base[]> | undefined;

/** The generated files, made once for every test here. */
function loadBases(): Promise<Base[]> {
  return (baseFiles ??= Promise.all(
    BASES.map(async (opts) => {
      const file = await readGguf(sourceFromBytes(makeTinyModel({ ...opts, merges: 120 })));
      return { name: `${opts.arch}/${opts.type ?? 'f32'}`, arch: opts.arch, spec: specOf(file), file };
    }),
  ));
}

// ---------------------------------------------------------------- hyper-parameters

const HPARAM_SUFFIXES = [
  'block_count', 'embedding_length', 'context_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
  'attention.key_length', 'attention.value_length', 'attention.layer_norm_rms_epsilon', 'rope.dimension_count', 'rope.freq_base',
  'rope.scaling.type', 'rope.scaling.factor', 'rope.scaling.original_context_length', 'rope.scaling.attn_factor', 'rope.scale_linear',
  'rope.scaling.yarn_log_multiplier', 'rope.scaling.yarn_ext_factor', 'expert_count', 'expert_used_count', 'expert_feed_forward_length',
  'expert_shared_feed_forward_length', 'expert_shared_count', 'leading_dense_block_count', 'expert_weights_scale', 'expert_gating_func',
  'attention.sliding_window', 'attention.sliding_window_pattern', 'attention.q_lora_rank', 'attention.kv_lora_rank',
  'attention.key_length_mla', 'attention.value_length_mla', 'embedding_scale', 'residual_scale', 'attention.scale', 'logit_scale',
  'expert_group_count', 'attention.temperature_scale',
];

/** A hostile value for `key` whose current value (if any) is `original`. */
function hostileValue(rng: Rng, key: string, original: number | undefined): GgufKv | undefined {
  const o = original ?? 8;
  const choices: (() => GgufKv | undefined)[] = [
    () => undefined,
    () => kvU32(key, 0),
    () => kvI32(key, -1),
    () => kvI32(key, -(2 ** 31)),
    () => kvU32(key, 2 ** 32 - 1),
    () => kvU32(key, 2 ** 31),
    () => kvU64(key, 2n ** 40n),
    () => kvU64(key, 2n ** 63n),
    () => kv(key, GgufValueType.INT64, -(2n ** 40n)),
    () => kvF32(key, NaN),
    () => kvF32(key, Infinity),
    () => kvF32(key, -Infinity),
    () => kvF32(key, 1.5),
    () => kvF32(key, 1e30),
    () => kvF32(key, 1e-30),
    () => kvF32(key, -0),
    () => kv(key, GgufValueType.FLOAT64, 1e300),
    () => kvU32(key, o + 1),
    () => kvU32(key, Math.max(0, o - 1)),
    () => kvU32(key, 2 * o),
    () => kvU32(key, Math.floor(o / 2)),
    () => kvU32(key, o * 1024),
    () => kvF32(key, o + 0.5),
    () => kvString(key, String(o)),
    () => kv(key, GgufValueType.BOOL, true),
    () => kvArray(key, GgufValueType.UINT32, [o, o]),
    () => kvArray(key, GgufValueType.UINT32, [o, o + 1]),
    () => kvArray(key, GgufValueType.UINT32, []),
    () => kvArray(key, GgufValueType.FLOAT32, [NaN, NaN]),
    () => kvStringArray(key, ['1', '2']),
  ];
  return pick(rng, choices)();
}

function numericValue(kv: GgufKv | undefined): number | undefined {
  if (!kv) return undefined;
  if (typeof kv.value === 'number') return kv.value;
  if (typeof kv.value === 'bigint') return Number(kv.value);
  return undefined;
}

function mutateHparams(rng: Rng, base: Base): HeaderSpec {
  const spec = cloneSpec(base.spec);
  const changes = 1 + below(rng, 3);
  for (let i = 0; i < changes; i++) {
    const key = `${base.arch}.${pick(rng, HPARAM_SUFFIXES)}`;
    setKv(spec, key, hostileValue(rng, key, numericValue(getKv(spec, key))));
  }
  return spec;
}

// ---------------------------------------------------------------- tensor shapes

const TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q4_1, GgmlType.I32, GgmlType.IQ1_S, GgmlType.TQ1_0, 99];

function mutateShapes(rng: Rng, base: Base): HeaderSpec {
  const spec = cloneSpec(base.spec);
  const changes = 1 + below(rng, 2);
  for (let c = 0; c < changes; c++) {
    const at = below(rng, spec.tensors.length);
    const t = spec.tensors[at];
    const d = below(rng, t.dims.length);
    const edits: (() => void)[] = [
      () => (t.dims[d] += 1),
      () => (t.dims[d] = Math.max(1, t.dims[d] - 1)),
      () => (t.dims[d] *= 2),
      () => (t.dims[d] = Math.max(1, Math.floor(t.dims[d] / 2))),
      () => (t.dims[d] = 1),
      () => (t.dims[d] = 2 ** 20),
      () => t.dims.reverse(),
      () => t.dims.length > 1 && t.dims.pop(),
      () => t.dims.length < 4 && t.dims.push(2),
      () => t.dims.length < 4 && t.dims.push(1),
      () => (t.type = pick(rng, TYPES)),
      () => spec.tensors.splice(at, 1),
      () => (t.name = t.name.replace(/^blk\.\d+/, 'blk.7')),
      () => (t.name = `${t.name}.x`),
      // A file consistent with a different expert count: only the expert count key disagrees.
      () => {
        const experts = 1 + below(rng, 12);
        for (const e of spec.tensors) {
          if (/ffn_(gate|up|down)_exps|ffn_gate_inp\.|exp_probs_b/.test(e.name)) e.dims[e.dims.length - 1] = experts;
        }
      },
    ];
    pick(rng, edits)();
  }
  // Half the time the metadata follows an expert-count change, so consistent files succeed.
  if (rng() < 0.5) {
    const router = spec.tensors.find((t) => t.name === 'blk.1.ffn_gate_inp.weight');
    if (router && router.dims.length === 2) setKv(spec, `${base.arch}.expert_count`, kvU32(`${base.arch}.expert_count`, router.dims[1]));
  }
  return spec;
}

// ---------------------------------------------------------------- tokenizer

const TOKENS = 'tokenizer.ggml.tokens';
const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x9f], [0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];
const SPECIAL_ID_KEYS = ['bos_token_id', 'eos_token_id', 'eot_token_id', 'eom_token_id', 'unknown_token_id', 'padding_token_id', 'seperator_token_id'];

function tokensOf(spec: HeaderSpec): string[] {
  return [...((getKv(spec, TOKENS)!.value as GgufArray).items as string[])];
}

function mutateTokenizer(rng: Rng, base: Base): HeaderSpec {
  const spec = cloneSpec(base.spec);
  const tokens = tokensOf(spec);
  const n = tokens.length;
  const merges = [...((getKv(spec, 'tokenizer.ggml.merges')!.value as GgufArray).items as string[])];
  const key = (suffix: string) => `tokenizer.ggml.${suffix}`;
  const edits: (() => void)[] = [
    // Absurd merges: many, naming unknown tokens, malformed, duplicated, or of the wrong type.
    () => setKv(spec, key('merges'), kvStringArray(key('merges'), Array.from({ length: 10_000 + below(rng, 20_000) }, () => `${pick(rng, tokens)} ${pick(rng, tokens)}`))),
    () => setKv(spec, key('merges'), kvStringArray(key('merges'), [...merges, ...Array.from({ length: 500 }, (_, i) => `zz${i} qq${i}`)])),
    () => setKv(spec, key('merges'), kvStringArray(key('merges'), ['', ' ', 'a', ' a b', 'a  b', 'a b c', 'a ', '  ', '\u0000 \u0000', ...merges])),
    () => setKv(spec, key('merges'), kvStringArray(key('merges'), [...merges, ...merges])),
    () => setKv(spec, key('merges'), kvStringArray(key('merges'), [])),
    () => setKv(spec, key('merges'), undefined),
    () => setKv(spec, key('merges'), kvArray(key('merges'), GgufValueType.UINT32, [1, 2, 3])),
    () => setKv(spec, key('merges'), kvStringArray(key('merges'), merges.map((m) => `${'x'.repeat(5000)} ${m}`))),
    // Tokens: duplicates, empty, very long, invalid UTF-8, wrong type, missing, more or fewer than the embedding rows.
    () => {
      const copy = [...tokens];
      for (let i = 0; i < 1 + below(rng, 50); i++) copy[below(rng, n)] = copy[below(rng, n)];
      setKv(spec, TOKENS, kvStringArray(TOKENS, copy));
    },
    () => setKv(spec, TOKENS, kvStringArray(TOKENS, tokens.map((t, i) => (i % 7 === 0 ? '' : t)))),
    () => setKv(spec, TOKENS, kvStringArray(TOKENS, tokens.map((t, i) => (i === n - 1 ? '<|big|>'.repeat(20_000) : t)))),
    () => {
      const marker = `\u0001invalid-utf8-${below(rng, 1e9)}`;
      spec.rawStrings = new Map([[marker, pick(rng, INVALID_UTF8)]]);
      setKv(spec, TOKENS, kvStringArray(TOKENS, tokens.map((t, i) => (i === below(rng, n) ? marker : t))));
    },
    () => setKv(spec, TOKENS, kvArray(TOKENS, GgufValueType.UINT32, tokens.map((_, i) => i))),
    () => setKv(spec, TOKENS, undefined),
    () => setKv(spec, TOKENS, kvStringArray(TOKENS, tokens.slice(0, below(rng, n)))),
    () => setKv(spec, TOKENS, kvStringArray(TOKENS, [...tokens, 'extra'])),
    () => setKv(spec, TOKENS, kvStringArray(TOKENS, [])),
    // Token types out of range or of the wrong length or type; scores the same.
    () => setKv(spec, key('token_type'), kvArray(key('token_type'), GgufValueType.INT32, tokens.map(() => pick(rng, [-1, 0, 7, 255, 65535, 2 ** 31 - 1, -(2 ** 31)])))),
    () => setKv(spec, key('token_type'), kvArray(key('token_type'), GgufValueType.FLOAT32, tokens.map(() => pick(rng, [NaN, 1.5, Infinity, 3])))),
    () => setKv(spec, key('token_type'), kvArray(key('token_type'), GgufValueType.INT32, tokens.slice(0, below(rng, n)).map(() => 1))),
    () => setKv(spec, key('token_type'), kvArray(key('token_type'), GgufValueType.INT32, [...tokens, ...tokens].map(() => 3))),
    () => setKv(spec, key('token_type'), kvStringArray(key('token_type'), tokens)),
    () => setKv(spec, key('scores'), kvArray(key('scores'), GgufValueType.FLOAT32, tokens.slice(0, below(rng, n + 5)).map(() => pick(rng, [NaN, -Infinity, 0, 1e38])))),
    () => setKv(spec, key('scores'), kvStringArray(key('scores'), ['1'])),
    // Special ids out of range or of the wrong type.
    () => {
      const k = key(pick(rng, SPECIAL_ID_KEYS));
      setKv(spec, k, pick(rng, [kvI32(k, -1), kvU32(k, n), kvU32(k, n + 1000), kvU32(k, 2 ** 32 - 1), kvF32(k, NaN), kvF32(k, 1.5), kvString(k, '1'), kvU64(k, 2n ** 63n), kvU64(k, 3n)]));
    },
    // Tokenizer kinds: SentencePiece over a BPE vocabulary, unknown models and pre-tokenizers, flags of the wrong type.
    () => setKv(spec, key('model'), kvString(key('model'), pick(rng, ['llama', 'gemma4', 'bert', 't5', '', 'gpt2\u0000']))),
    () => setKv(spec, key('pre'), pick(rng, [kvString(key('pre'), 'no-such-pre'), kvString(key('pre'), ''), undefined, kvString(key('pre'), 'llama3'), kvU32(key('pre'), 1)])),
    () => setKv(spec, key('add_bos_token'), kvU32(key('add_bos_token'), 1)),
    () => setKv(spec, key('model'), undefined),
  ];
  const changes = 1 + below(rng, 2);
  for (let i = 0; i < changes; i++) pick(rng, edits)();
  return spec;
}

// ---------------------------------------------------------------- chat templates

const HOSTILE_TEMPLATES = [
  '{% for i in range(10**9) %}x{% endfor %}',
  '{% for a in messages %}{% for b in range(100000) %}{{ a.content }}{% endfor %}{% endfor %}',
  "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
  "{{ 'x' * 10**12 }}",
  '{{ messages[0].content * 1000000 }}',
  '{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}',
  '{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}',
  "{{ raise_exception('no conversations today') }}",
  '{% for m in messages %}',
  '{{ messages[99].content }}',
  '{{ messages.content.upper() }}',
  '{{ 1 / 0 }}',
  '{{ [1] * 10**9 }}',
  "{{ 'ab' | indent(10**9) }}",
  "{% set s = 'x' * 100000 %}{% for i in range(100000) %}{{ s.count('y') }}{% endfor %}",
  `{{ ${'('.repeat(3000)}1${')'.repeat(3000)} }}`,
  '{% if %}{% endif %}',
  '{{ messages | tojson(indent=10**9) }}',
  '{% for m in messages recursive %}{{ loop(messages) }}{% endfor %}',
  '{{ range(10**9) | list | length }}',
  '{{ "%s" | format(messages) * 10**6 }}',
];

function mutateTemplate(rng: Rng, base: Base): HeaderSpec {
  const spec = cloneSpec(base.spec);
  const key = 'tokenizer.chat_template';
  const original = getKv(spec, key)!.value as string;
  const edits: (() => GgufKv | undefined)[] = [
    () => kvString(key, pick(rng, HOSTILE_TEMPLATES)),
    () => kvString(key, original + pick(rng, HOSTILE_TEMPLATES)),
    () => {
      // Cut a random slice out of the real template, or repeat one: mostly broken syntax.
      const a = below(rng, original.length);
      const b = a + below(rng, original.length - a);
      return kvString(key, rng() < 0.5 ? original.slice(0, a) + original.slice(b) : original.slice(0, b) + original.slice(a));
    },
    () => kvString(key, `${pick(rng, HOSTILE_TEMPLATES)}${pick(rng, HOSTILE_TEMPLATES)}`),
    () => kvU32(key, 7),
    () => kvStringArray(key, [original]),
    () => undefined,
  ];
  setKv(spec, key, pick(rng, edits)());
  return spec;
}

// ---------------------------------------------------------------- what success must mean

const isCount = (v: number, min: number, max: number) => Number.isSafeInteger(v) && v >= min && v <= max;

/** A config that passed: integers in MODEL_LIMITS, shapes that are those of the file's tensors. */
function configProblems(c: ModelConfig, file: GgufFile): string[] {
  const L = MODEL_LIMITS;
  const dims = (name: string) => file.tensors.find((t) => t.name === name)?.dims;
  const problems: string[] = [];
  const check = (ok: boolean, what: string) => ok || problems.push(what);
  check(isCount(c.nLayer, 1, L.maxLayers), `nLayer ${c.nLayer}`);
  check(isCount(c.hidden, 1, L.maxWidth), `hidden ${c.hidden}`);
  check(isCount(c.nHead, 1, L.maxHeads), `nHead ${c.nHead}`);
  check(isCount(c.nHeadKv, 1, c.nHead) && c.nHead % c.nHeadKv === 0, `nHeadKv ${c.nHeadKv}`);
  check(isCount(c.headDimK, 1, L.maxHeadDim) && isCount(c.headDimV, 1, L.maxHeadDim), `head dims ${c.headDimK}/${c.headDimV}`);
  check(isCount(c.contextLength, 1, L.maxContext), `contextLength ${c.contextLength}`);
  check(isCount(c.vocabSize, 1, L.maxVocab), `vocabSize ${c.vocabSize}`);
  check(isCount(c.nExpert, 0, L.maxExperts), `nExpert ${c.nExpert}`);
  check(c.nExpert === 0 || isCount(c.nExpertUsed, 1, c.nExpert), `nExpertUsed ${c.nExpertUsed} of ${c.nExpert}`);
  check(c.routing.topK === c.nExpertUsed, `topK ${c.routing.topK}`);
  for (const [name, v] of [['expertFF', c.expertFF], ['sharedExpertFF', c.sharedExpertFF], ['denseFF', c.denseFF]] as const) {
    check(isCount(v, 0, L.maxWidth), `${name} ${v}`);
  }
  check(isCount(c.leadingDenseLayers, 0, c.nLayer), `leadingDenseLayers ${c.leadingDenseLayers}`);
  check(Number.isFinite(c.rmsEps) && c.rmsEps > 0, `rmsEps ${c.rmsEps}`);
  check(isCount(c.rope.dims, 2, c.headDimK) && c.rope.dims % 2 === 0, `rope dims ${c.rope.dims}`);
  for (const [name, v] of [['freqBase', c.rope.freqBase], ['scalingFactor', c.rope.scalingFactor], ['attnFactor', c.rope.attnFactor]] as const) {
    check(Number.isFinite(v) && v > 0, `rope ${name} ${v}`);
  }
  check(isCount(c.rope.originalContextLength, 1, L.maxContext), `rope original context ${c.rope.originalContextLength}`);
  const yarn = c.rope.yarn;
  check([yarn.attnFactor, yarn.betaFast, yarn.betaSlow, yarn.logMultiplier, yarn.extFactor ?? 0, yarn.mscale ?? 1].every(Number.isFinite), 'yarn');
  check(Object.values(c.scales).every((v) => Number.isFinite(v) && v !== 0), `scales ${JSON.stringify(c.scales)}`);
  check(Number.isFinite(c.routing.weightsScale) && c.routing.weightsScale !== 0, `weightsScale ${c.routing.weightsScale}`);
  check(c.attentionWindow.length === c.nLayer && c.attentionWindow.every((w) => isCount(w, 0, L.maxContext)), 'attention windows');
  check(c.tensors.layers.length === c.nLayer, `${c.tensors.layers.length} layers of tensors`);
  check(c.bosTokenId === undefined || isCount(c.bosTokenId, 0, c.vocabSize - 1), `bos ${c.bosTokenId}`);
  check(c.eosTokenId === undefined || isCount(c.eosTokenId, 0, c.vocabSize - 1), `eos ${c.eosTokenId}`);
  // The sizes the config implies are those of tensors in the file.
  check(dims(c.tensors.tokenEmbd)?.[0] === c.hidden && dims(c.tensors.tokenEmbd)?.[1] === c.vocabSize, 'token_embd');
  for (const [i, layer] of c.tensors.layers.entries()) {
    const a = layer.attention;
    // The width of one KV-cache row per layer, from the projections that write it.
    const kvRow = a.kind === 'standard' ? (dims(a.k)?.[1] ?? 0) + (dims(a.v)?.[1] ?? 0) : (dims(a.kvAMqa)?.[1] ?? 0) + (dims(a.kvANorm)?.[0] ?? 0);
    check(kvRow === c.nHeadKv * (c.headDimK + c.headDimV) || (a.kind === 'latent' && kvRow === c.headDimK + c.headDimV), `layer ${i} KV row ${kvRow}`);
    if (layer.ffn.kind === 'moe') {
      check(JSON.stringify(dims(layer.ffn.gateExps)) === JSON.stringify([c.hidden, c.expertFF, c.nExpert]), `layer ${i} experts`);
      check(dims(layer.ffn.router)?.[1] === c.nExpert, `layer ${i} router`);
    }
  }
  const used = new Set<string>();
  JSON.stringify(c.tensors, (_, v: unknown) => (typeof v === 'string' && used.add(v), v));
  const tensorBytes = file.tensors.filter((t) => used.has(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
  check(tensorBytes <= file.fileBytes - file.dataOffset, `${tensorBytes} tensor bytes`);
  // The KV cache at the default context: f32 keys and values per layer, bounded by the rows of the file's K/V projections.
  const kvBytes = c.nLayer * Math.min(DEFAULT_CONTEXT, c.contextLength) * c.nHeadKv * (c.headDimK + c.headDimV) * 4;
  check(Number.isSafeInteger(kvBytes) && kvBytes <= c.nLayer * DEFAULT_CONTEXT * L.maxHeads * 2 * L.maxHeadDim * 4, `KV bytes ${kvBytes}`);
  return problems;
}

function expectSaneTokenizer(t: Tokenizer, file: GgufFile, prompt: string | undefined, where: string): void {
  const n = t.vocabSize;
  expect(n, where).toBe((file.metadata.get(TOKENS)?.value as GgufArray).items.length);
  for (const id of [t.bos, t.eos, t.eot]) if (id !== undefined) expect(isCount(id, 0, n - 1), `${where}: special id ${id} of ${n}`).toBe(true);
  const text = `${prompt ?? ''} Über 12 riverbanks, 🌊\u0000 <|im_start|>`;
  const ids = t.encode(text, { addSpecial: true, parseSpecial: true });
  expect(ids.every((id) => isCount(id, 0, n - 1)), where).toBe(true);
  expect(typeof t.decode(ids, { skipSpecial: true })).toBe('string');
  // Encoding's output is bounded by its input: at most a few tokens per UTF-8 byte, plus BOS/EOS.
  expect(ids.length, where).toBeLessThanOrEqual(4 * new TextEncoder().encode(text).length + 2);
}

// ---------------------------------------------------------------- the run

type Family = 'hparams' | 'shapes' | 'tokenizer' | 'template';
const MUTATORS: Record<Family, { count: number; mutate: (rng: Rng, base: Base) => HeaderSpec }> = {
  hparams: { count: 800, mutate: mutateHparams },
  shapes: { count: 600, mutate: mutateShapes },
  tokenizer: { count: 500, mutate: mutateTokenizer },
  template: { count: 300, mutate: mutateTemplate },
};

const outcomeKey = (o: Outcome) => (['read', 'config', 'tokenizer', 'template'] as const).map((s) => `${s}:${o[s] ?? '-'}`).join(' ');

describe('hostile metadata beyond the header', () => {
  let bases: Base[];

  it('the bases pass every stage with sane values', { timeout: 60_000 }, async () => {
    bases = await loadBases();
    for (const base of bases) {
      const { header, size } = writeHeader(base.spec);
      const r = await runPreGpu(headerSource(header, size), FUZZ_LIMITS);
      expect(r.untyped, base.name).toBeUndefined();
      expect(r.outcome, base.name).toEqual({ read: 'ok', config: 'ok', tokenizer: 'ok', template: 'ok' });
      expect(configProblems(r.config!, r.file!), base.name).toEqual([]);
      expectSaneTokenizer(r.tokenizer!, r.file!, r.prompt, base.name);
    }
  });

  it.each(Object.keys(MUTATORS) as Family[])('%s: every mutant succeeds sanely or gives a typed error', { timeout: 60_000 }, async (family) => {
    const { count, mutate } = MUTATORS[family];
    const rng = mulberry32(0x5eed + family.length * 7919);
    const tally = new Map<string, number>();
    const failures: string[] = [];
    for (let i = 0; i < count; i++) {
      const base = bases[i % bases.length];
      const spec = mutate(rng, base);
      const { header, size } = writeHeader(spec);
      const source = headerSource(header, size);
      const where = `${family} #${i} on ${base.name}`;
      const r: PreGpuResult = await runPreGpu(source, FUZZ_LIMITS);
      if (r.untyped) {
        const e = r.untyped.error;
        failures.push(`${where}, ${r.untyped.stage}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        continue;
      }
      // Reading the header never reads far past it (the data is never fetched before the GPU).
      expect(source.bytesRead, where).toBeLessThanOrEqual(2 * header.length + 256 * 1024);
      for (const code of Object.values(r.outcome)) expect(code, where).not.toBe('INTERNAL');
      if (r.config) failures.push(...configProblems(r.config, r.file!).map((p) => `${where}: ${p}`));
      if (r.tokenizer) expectSaneTokenizer(r.tokenizer, r.file!, r.prompt, where);
      if (r.prompt !== undefined) expect(r.prompt.length, where).toBeLessThanOrEqual(FUZZ_LIMITS.maxChars);
      if (r.config && r.tokenizer) expect(r.tokenizer.vocabSize, where).toBe(r.config.vocabSize);
      const key = outcomeKey(r.outcome);
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    expect(failures.slice(0, 40)).toEqual([]);
    // The outcome table goes to the log: what the family reached and how it failed.
    const rows = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(5)}  ${k}`);
    console.log(`${family}: ${count} mutants\n${rows.join('\n')}`);
    // A family that never reaches the stage it targets would test nothing.
    const reached = [...tally].filter(([k]) => k.includes('read:ok')).reduce((s, [, n]) => s + n, 0);
    expect(reached).toBeGreaterThan(count / 2);
  });
});

// ---------------------------------------------------------------- before the GPU

/** Thrown by the device stub: something asked the GPU for work. */
class GpuTouched extends Error {
  override name = 'GpuTouched';
}

/** A GPUDevice whose limits can be read and whose every other member throws GpuTouched. */
function untouchableDevice(): { device: GPUDevice; touches: string[] } {
  const touches: string[] = [];
  const limits = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20, maxStorageBuffersPerShaderStage: 10, maxComputeWorkgroupStorageSize: 16384 };
  const device = new Proxy({}, {
    get(_, key) {
      if (key === 'limits') return limits;
      // Awaiting or printing the stub is not GPU work.
      if (key === 'then' || typeof key === 'symbol') return undefined;
      touches.push(String(key));
      throw new GpuTouched(`device.${String(key)}`);
    },
  }) as GPUDevice;
  return { device, touches };
}

describe('hostile files are refused before the GPU is asked for anything', () => {
  // The buffer usage flags exist in Node only once the webgpu package has installed them; a valid file gets this far.
  Object.assign(globalThis, {
    GPUBufferUsage: { MAP_READ: 1, MAP_WRITE: 2, COPY_SRC: 4, COPY_DST: 8, INDEX: 16, VERTEX: 32, UNIFORM: 64, STORAGE: 128, INDIRECT: 256, QUERY_RESOLVE: 512 },
    GPUMapMode: { READ: 1, WRITE: 2 },
    GPUShaderStage: { VERTEX: 1, FRAGMENT: 2, COMPUTE: 4 },
  });

  it('Engine.fromGguf on a device that refuses all work: mutants the pre-GPU path rejects give its typed error, the valid base reaches the device', { timeout: 60_000 }, async () => {
    const bases = await loadBases();
    const rng = mulberry32(77);
    let rejected = 0;
    for (let i = 0; i < 90; i++) {
      const base = bases[i % bases.length];
      const spec = (i % 3 === 0 ? mutateShapes : i % 3 === 1 ? mutateHparams : mutateTokenizer)(rng, base);
      const { header, size } = writeHeader(spec);
      const r = await runPreGpu(headerSource(header, size), FUZZ_LIMITS);
      if (!r.file || (r.outcome.config === 'ok' && r.outcome.tokenizer === 'ok' && r.outcome.template === 'ok')) continue;
      const { device, touches } = untouchableDevice();
      const error = await Engine.fromGguf(device, r.file, headerSource(header, size)).then(() => undefined, (e: unknown) => e);
      expect(error, `#${i} on ${base.name}`).not.toBeInstanceOf(GpuTouched);
      expect(touches, `#${i}`).toEqual([]);
      expect(toWebMoeError(error).code, `#${i}: ${String(error)}`).toMatch(/^(BAD_GGUF|UNSUPPORTED_MODEL|UNSUPPORTED_ARCH)$/);
      rejected++;
    }
    expect(rejected).toBeGreaterThan(30);
    // A valid file passes every check and only then asks the device for something.
    const { header, size } = writeHeader(bases[0].spec);
    const { device, touches } = untouchableDevice();
    const file = await readGguf(headerSource(header, size));
    await expect(Engine.fromGguf(device, file, headerSource(header, size))).rejects.toBeInstanceOf(GpuTouched);
    expect(touches.length).toBe(1);
  });
});

describe('the errors name the key and the value', () => {
  const base = (arch: string) => loadBases().then((all) => all.find((b) => b.arch === arch)!);
  const refusal = async (arch: string, edit: (spec: HeaderSpec) => void): Promise<unknown> => {
    const spec = cloneSpec((await base(arch)).spec);
    edit(spec);
    const { header, size } = writeHeader(spec);
    const file = await readGguf(headerSource(header, size));
    try {
      modelConfigFromGguf(file);
    } catch (error) {
      return error;
    }
    return undefined;
  };
  const set = (key: string, value: GgufKv) => (spec: HeaderSpec) => setKv(spec, key, value);

  it.each([
    ['olmoe', set('olmoe.block_count', kvU32('olmoe.block_count', 0)), /olmoe\.block_count = 0: must be an integer in 1\.\.1024/],
    ['olmoe', set('olmoe.block_count', kvF32('olmoe.block_count', 1.5)), /olmoe\.block_count = 1\.5/],
    ['olmoe', set('olmoe.context_length', kvF32('olmoe.context_length', NaN)), /olmoe\.context_length = NaN/],
    ['olmoe', set('olmoe.embedding_length', kvU32('olmoe.embedding_length', 2 ** 20)), /olmoe\.embedding_length = 1048576: must be an integer in 1\.\.262144/],
    ['qwen3moe', set('qwen3moe.attention.head_count_kv', kvU32('qwen3moe.attention.head_count_kv', 3)), /4 heads is not a multiple of 3 kv heads/],
    ['qwen3moe', set('qwen3moe.attention.key_length', kvI32('qwen3moe.attention.key_length', -1)), /qwen3moe\.attention\.key_length = -1/],
    ['olmoe', set('olmoe.expert_used_count', kvU32('olmoe.expert_used_count', 9)), /expert_used_count 9 must be in 1\.\.8/],
    ['olmoe', set('olmoe.expert_count', kvU64('olmoe.expert_count', 2n ** 40n)), /olmoe\.expert_count = 1099511627776/],
    ['olmoe', set('olmoe.rope.freq_base', kvF32('olmoe.rope.freq_base', 0)), /olmoe\.rope\.freq_base = 0: must be a finite number > 0/],
    ['olmoe', set('olmoe.rope.scaling.factor', kvF32('olmoe.rope.scaling.factor', -2)), /olmoe\.rope\.scaling\.factor = -2/],
    ['olmoe', set('olmoe.attention.layer_norm_rms_epsilon', kvF32('olmoe.attention.layer_norm_rms_epsilon', Infinity)), /layer_norm_rms_epsilon = Infinity/],
    ['olmoe', set('olmoe.feed_forward_length', kvU32('olmoe.feed_forward_length', 0)), /routed experts' FFN width/],
    ['gpt-oss', set('gpt-oss.attention.sliding_window', kvU32('gpt-oss.attention.sliding_window', 0)), /gpt-oss\.attention\.sliding_window = 0/],
    ['granitemoe', set('granitemoe.residual_scale', kvF32('granitemoe.residual_scale', NaN)), /granitemoe\.residual_scale = NaN/],
    ['deepseek2', set('deepseek2.attention.kv_lora_rank', kvU32('deepseek2.attention.kv_lora_rank', 2 ** 31)), /deepseek2\.attention\.kv_lora_rank = 2147483648/],
    ['deepseek2', set('deepseek2.leading_dense_block_count', kvU32('deepseek2.leading_dense_block_count', 9)), /leading_dense_block_count = 9: must be an integer in 0\.\.3/],
    ['olmoe', set('olmoe.expert_count', kvString('olmoe.expert_count', '8')), /olmoe\.expert_count: expected a number, found STRING/],
    ['olmoe', (spec: HeaderSpec) => spec.tensors.find((t) => t.name === 'blk.1.ffn_gate_exps.weight')!.dims.reverse(), /tensor blk\.1\.ffn_gate_exps\.weight has dims \[8, 64, 64\], expected \[64, 64, 8\]/],
  ] as const)('%s: %#', { timeout: 30_000 }, async (arch, edit, message) => {
    const error = await refusal(arch, edit);
    expect(error).toBeInstanceOf(Error);
    expect(toWebMoeError(error).code).toMatch(/^(UNSUPPORTED_MODEL|BAD_GGUF)$/);
    expect((error as Error).message).toMatch(message);
  });
});
