/**
 * The hyper-parameters and tensor table of a Mixture-of-Experts decoder, read
 * from GGUF metadata and tensor infos, never assumed.
 *
 * What differs between architectures (RoPE layout, routing policy, QK-norm,
 * which key holds the expert width, which tensors are optional) is described
 * by an `ArchTraits` record (see registry.ts); everything else is read the way
 * llama.cpp's loader reads it, with the same defaults. Every tensor the graph
 * uses is checked against the shape the config implies, so a wrong config
 * fails here, with the tensor named, rather than as garbage logits later.
 */

import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import { optBool, optNumber, optNumberArray, optString, optStringArray, getNumber, getString, ARCHITECTURE_KEY } from '../gguf/metadata';

export type ModelConfigErrorCode =
  /** `general.architecture` names an architecture without a config reader. */
  | 'UNSUPPORTED_ARCH'
  /** A required tensor is absent. */
  | 'MISSING_TENSOR'
  /** A tensor's dims disagree with the config. */
  | 'BAD_SHAPE'
  /** Metadata that is missing, inconsistent or asks for something not implemented. */
  | 'BAD_CONFIG';

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
  constructor(readonly code: ModelConfigErrorCode, message: string) {
    super(message);
  }
}

/** How RoPE pairs dimensions: NORM rotates (2i, 2i+1), NEOX rotates (i, i + dims/2). */
export type RopeKind = 'norm' | 'neox';
export type RopeScalingType = 'none' | 'linear' | 'yarn' | 'longrope';

/**
 * QK-norm: none; RMSNorm of each head's vector with a [headDim] weight
 * (qwen3moe); RMSNorm of the whole Q (or K) projection with a [heads*headDim]
 * weight (olmoe).
 */
export type QkNormKind = 'none' | 'per-head' | 'whole';

export interface RopeConfig {
  kind: RopeKind;
  /** Leading dimensions of each head that are rotated (`rope.dimension_count`). */
  dims: number;
  freqBase: number;
  scalingType: RopeScalingType;
  /** `rope.scaling.factor` (1 when absent); positions are multiplied by 1/factor. */
  scalingFactor: number;
  /** `rope.scaling.original_context_length` (the training context when absent). */
  originalContextLength: number;
  /** `rope.scaling.attn_factor`, a multiplier on the rotation magnitude (1 when absent). */
  attnFactor: number;
  /**
   * YaRN parameters; only some architectures read them from the file
   * (llama.cpp's defaults otherwise). extFactor undefined: 1 for yarn
   * scaling, else 0, as llama.cpp decides.
   */
  yarn: { extFactor?: number; attnFactor: number; betaFast: number; betaSlow: number; logMultiplier: number };
}

/** How a token's router logits become expert choices and weights. */
export interface RoutingPolicy {
  /**
   * 'softmax': router logits → probabilities over all experts, then top-k.
   * 'softmax-selected': top-k by logit, softmax over the k selected logits (gpt-oss).
   */
  gating: 'softmax' | 'softmax-selected';
  /** Experts chosen per token (the k of top-k). */
  topK: number;
  /** Divide the k selected probabilities by their sum (Mixtral, Qwen3-MoE), i.e. softmax over the top-k logits. */
  normalizeSelected: boolean;
  /** Multiplier on the selected weights after normalisation (1 = none). */
  weightsScale: number;
  /** A shared expert added for every token, scaled by sigmoid(w · x) (Qwen2-MoE). */
  sharedExpertGate: 'none' | 'sigmoid';
}

/** Granite's multipliers; the values that change nothing for other architectures. */
export interface ScaleConfig {
  /** `embedding_scale`: multiplies the token embedding (1 = none). */
  embedding: number;
  /** `residual_scale`: multiplies each attention and FFN output before the residual add (1 = none). */
  residual: number;
  /** `attention.scale`: multiplies q · k (1/sqrt(headDim) when absent or 0). */
  attention: number;
  /** `logit_scale`: the logits are multiplied by 1 / logit (1 = none). */
  logit: number;
}

export interface MoeFfnTensors {
  kind: 'moe';
  /** [hidden, experts]: router logits. */
  router: string;
  /** [experts]: added to the router logits (gpt-oss). */
  routerBias?: string;
  /** [hidden, expertFF, experts] each for gate and up; [expertFF, hidden, experts] for down. */
  gateExps: string;
  upExps: string;
  downExps: string;
  /** [expertFF, experts] for gate and up, [hidden, experts] for down: per-expert biases (gpt-oss). */
  expertBiases?: { gate: string; up: string; down: string };
  /** Shared expert: [hidden] gate vector, [hidden, sharedFF] gate and up, [sharedFF, hidden] down. */
  shared?: { gateInp: string; gate: string; up: string; down: string };
}

export interface DenseFfnTensors {
  kind: 'dense';
  /** [hidden, denseFF] gate and up, [denseFF, hidden] down. */
  gate: string;
  up: string;
  down: string;
}

/** Names (as in the GGUF file) of one layer's tensors; optional ones only when present. */
export interface LayerTensors {
  attnNorm: string;
  q: string;
  k: string;
  v: string;
  qBias?: string;
  kBias?: string;
  vBias?: string;
  qNorm?: string;
  kNorm?: string;
  attnOut: string;
  attnOutBias?: string;
  /** [nHead]: one logit per head that joins each softmax denominator (gpt-oss). */
  attnSinks?: string;
  /** Norm before the FFN: `ffn_norm`, or gpt-oss's `post_attention_norm`. */
  ffnNorm: string;
  ffn: MoeFfnTensors | DenseFfnTensors;
}

export interface TensorTable {
  tokenEmbd: string;
  outputNorm: string;
  /** `output.weight`, or `token_embd.weight` when the output projection is tied. */
  output: string;
  /** Per-dimension-pair RoPE frequency divisors (Llama 3 style), when present. */
  ropeFreqs?: string;
  layers: LayerTensors[];
}

export interface ModelConfig {
  /** `general.architecture`. */
  arch: string;
  name?: string;
  nLayer: number;
  hidden: number;
  nHead: number;
  nHeadKv: number;
  headDimK: number;
  headDimV: number;
  rope: RopeConfig;
  rmsEps: number;
  contextLength: number;
  vocabSize: number;
  nExpert: number;
  nExpertUsed: number;
  /** Width of one routed expert's FFN. */
  expertFF: number;
  /** Width of the shared expert's FFN (0 when there is none). */
  sharedExpertFF: number;
  /** Width of a dense layer's FFN (`feed_forward_length`). */
  denseFF: number;
  /** Layers before the first MoE layer that use a dense FFN. */
  leadingDenseLayers: number;
  routing: RoutingPolicy;
  scales: ScaleConfig;
  qkNorm: QkNormKind;
  /**
   * Per layer: how many positions attention sees, the query's own included
   * (llama.cpp's standard sliding window); 0 for full causal attention.
   */
  attentionWindow: number[];
  /** Whether any layer adds biases to its Q, K, V projections. */
  qkvBias: boolean;
  /** The output projection reuses the token embedding (no `output.weight`). */
  tiedOutput: boolean;
  bosTokenId?: number;
  eosTokenId?: number;
  tensors: TensorTable;
}

/** What one architecture's llama.cpp loader and graph do differently from the others. */
export interface ArchTraits {
  rope: RopeKind;
  routing: Pick<RoutingPolicy, 'normalizeSelected' | 'sharedExpertGate'>;
  qkNorm: QkNormKind;
  /** Key holding the routed expert width; `feed_forward_length / topK` is the fallback for expert_feed_forward_length. */
  expertWidthKey: 'expert_feed_forward_length' | 'feed_forward_length';
  /** Whether `output.weight` may be absent (tied to the token embedding). */
  outputOptional: boolean;
  /** Whether Q and K span heads*headDim (false: they span the hidden size, so heads*headDim must equal it). */
  ownHeadDim: boolean;
  /** Whether `expert_count` 0 is allowed (dense layers throughout). */
  allowsDense: boolean;
  /** Whether the loader reads the `rope.scaling.yarn_*` keys (deepseek2 does; none of the first four architectures). */
  readsYarnKeys: boolean;
  /** How router logits become weights (default 'softmax'). */
  gating?: RoutingPolicy['gating'];
  /**
   * Sliding-window attention (gpt-oss): `attention.sliding_window` is
   * required, and of every `attention.sliding_window_pattern` layers (default
   * `period`) all but the last use the window, as llama.cpp's set_swa_pattern.
   */
  slidingWindow?: { period: number };
  /** Whether each layer has `attn_sinks` (required). */
  attentionSinks?: boolean;
  /** The FFN input norm's tensor (default 'ffn_norm'). */
  ffnNormTensor?: 'ffn_norm' | 'post_attention_norm';
  /** Whether the loader reads granite's embedding, residual, attention and logit scales. */
  readsGraniteScales?: boolean;
}

const LLAMA_SCALING_TYPES: readonly RopeScalingType[] = ['none', 'linear', 'yarn', 'longrope'];

/** Reads the config of a file whose architecture has the given traits. */
export function readModelConfig(file: GgufFile, traits: ArchTraits): ModelConfig {
  const arch = getString(file, ARCHITECTURE_KEY);
  const key = (suffix: string): string => `${arch}.${suffix}`;
  const uniform = (suffix: string): number | undefined => uniformNumber(file, key(suffix));
  const required = (suffix: string): number => {
    const value = uniform(suffix);
    if (value === undefined) throw new ModelConfigError('BAD_CONFIG', `${arch}: required metadata key ${key(suffix)} is missing`);
    return value;
  };

  const nLayer = getNumber(file, key('block_count'));
  const hidden = getNumber(file, key('embedding_length'));
  const nHead = required('attention.head_count');
  const nHeadKv = uniform('attention.head_count_kv') ?? nHead;
  const headDimK = uniform('attention.key_length') ?? hidden / nHead;
  const headDimV = uniform('attention.value_length') ?? hidden / nHead;
  const contextLength = getNumber(file, key('context_length'));
  const nExpert = optNumber(file, key('expert_count')) ?? 0;
  const nExpertUsed = uniform('expert_used_count') ?? 0;
  const denseFF = uniform('feed_forward_length') ?? 0;
  const expertFF =
    traits.expertWidthKey === 'feed_forward_length'
      ? denseFF
      : uniform('expert_feed_forward_length') ?? (nExpertUsed > 0 ? Math.floor(denseFF / nExpertUsed) : 0);
  const sharedExpertFF = traits.routing.sharedExpertGate === 'none' ? 0 : uniform('expert_shared_feed_forward_length') ?? denseFF;

  if (!Number.isInteger(headDimK) || !Number.isInteger(headDimV)) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: hidden ${hidden} is not a multiple of ${nHead} heads`);
  }
  if (nHeadKv < 1 || nHead % nHeadKv !== 0) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: ${nHead} heads is not a multiple of ${nHeadKv} kv heads`);
  }
  if (headDimK !== headDimV) throw new ModelConfigError('BAD_CONFIG', `${arch}: key length ${headDimK} != value length ${headDimV}`);
  if (!traits.ownHeadDim && nHead * headDimK !== hidden) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: heads * head dim (${nHead * headDimK}) must equal hidden (${hidden})`);
  }
  if (nExpert === 0 && !traits.allowsDense) throw new ModelConfigError('BAD_CONFIG', `${arch}: expert_count must be > 0`);
  if (nExpert > 0 && (nExpertUsed < 1 || nExpertUsed > nExpert)) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: expert_used_count ${nExpertUsed} must be in 1..${nExpert}`);
  }

  const rope = readRope(file, arch, traits, headDimK, contextLength);
  const attentionWindow = readAttentionWindows(file, arch, traits, nLayer, rope);
  const leadingDenseLayers = nExpert === 0 ? nLayer : optNumber(file, key('leading_dense_block_count')) ?? 0;
  const base = {
    arch, nLayer, hidden, nHead, nHeadKv, headDimK, headDimV, nExpert, expertFF, sharedExpertFF, denseFF, leadingDenseLayers,
  };
  const tensors = readTensorTable(file, base, traits);
  const config: ModelConfig = {
    ...base,
    name: optString(file, 'general.name'),
    nExpertUsed,
    rope,
    attentionWindow,
    rmsEps: getNumber(file, key('attention.layer_norm_rms_epsilon')),
    contextLength,
    // The table has checked that token_embd exists and is [hidden, vocab].
    vocabSize: file.tensors.find((t) => t.name === tensors.tokenEmbd)?.dims[1] ?? 0,
    routing: {
      gating: traits.gating ?? 'softmax',
      topK: nExpertUsed,
      normalizeSelected: traits.routing.normalizeSelected,
      // None of the supported architectures' loaders reads expert_weights_scale: llama.cpp never scales them.
      weightsScale: 1,
      sharedExpertGate: traits.routing.sharedExpertGate,
    },
    scales: traits.readsGraniteScales ? readGraniteScales(file, arch, headDimK) : { embedding: 1, residual: 1, attention: 1 / Math.sqrt(headDimK), logit: 1 },
    qkNorm: traits.qkNorm,
    qkvBias: tensors.layers.some((l) => l.qBias !== undefined || l.kBias !== undefined || l.vBias !== undefined),
    tiedOutput: tensors.output === tensors.tokenEmbd,
    bosTokenId: optNumber(file, 'tokenizer.ggml.bos_token_id'),
    eosTokenId: optNumber(file, 'tokenizer.ggml.eos_token_id'),
    tensors,
  };
  const tokens = optStringArray(file, 'tokenizer.ggml.tokens');
  if (tokens && tokens.length !== config.vocabSize) {
    throw new ModelConfigError('BAD_SHAPE', `${arch}: ${tokens.length} tokens but token_embd has ${config.vocabSize} rows`);
  }
  return config;
}

/**
 * llama.cpp's granite loader: logit_scale is required; the others are
 * optional and 0 (their default) means "not applied". Granite reads
 * `rope.scaling.finetuned` as a switch for RoPE (default on), and a shared
 * expert (`expert_shared_feed_forward_length`) is added unscaled: neither
 * is implemented here.
 */
function readGraniteScales(file: GgufFile, arch: string, headDim: number): ScaleConfig {
  const key = (suffix: string): string => `${arch}.${suffix}`;
  const logit = optNumber(file, key('logit_scale'));
  if (logit === undefined) throw new ModelConfigError('BAD_CONFIG', `${arch}: required metadata key ${key('logit_scale')} is missing`);
  if (optBool(file, key('rope.scaling.finetuned')) === false) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: models without RoPE (rope.scaling.finetuned = false) are not supported`);
  }
  if ((optNumber(file, key('expert_shared_feed_forward_length')) ?? 0) > 0) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: shared experts (expert_shared_feed_forward_length) are not supported`);
  }
  const orOne = (v: number | undefined): number => (v === undefined || v === 0 ? 1 : v);
  const attention = optNumber(file, key('attention.scale')) ?? 0;
  return {
    embedding: orOne(optNumber(file, key('embedding_scale'))),
    residual: orOne(optNumber(file, key('residual_scale'))),
    attention: attention === 0 ? 1 / Math.sqrt(headDim) : attention,
    logit,
  };
}

/** Each layer's attention window (0: full), per the architecture's sliding-window pattern. */
function readAttentionWindows(file: GgufFile, arch: string, traits: ArchTraits, nLayer: number, rope: RopeConfig): number[] {
  if (!traits.slidingWindow) return new Array<number>(nLayer).fill(0);
  const window = optNumber(file, `${arch}.attention.sliding_window`);
  if (window === undefined || !Number.isInteger(window) || window < 1) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: ${arch}.attention.sliding_window must be a positive integer`);
  }
  const period = uniformNumber(file, `${arch}.attention.sliding_window_pattern`) ?? traits.slidingWindow.period;
  const swaFreqBase = optNumber(file, `${arch}.rope.freq_base_swa`);
  if (swaFreqBase !== undefined && swaFreqBase !== rope.freqBase) {
    throw new ModelConfigError('BAD_CONFIG', `${arch}: a separate RoPE base for sliding-window layers (${swaFreqBase}) is not supported`);
  }
  // llama.cpp's set_swa_pattern: layer l slides unless it is the last of its period (period 0: every layer slides).
  return Array.from({ length: nLayer }, (_, l) => (period === 0 || l % period < period - 1 ? window : 0));
}

/** A scalar, or a per-layer array whose entries are all equal (llama.cpp's get_key_or_arr). */
function uniformNumber(file: GgufFile, key: string): number | undefined {
  const kv = file.metadata.get(key);
  if (!kv) return undefined;
  if (typeof kv.value !== 'object') return optNumber(file, key);
  const values = optNumberArray(file, key) ?? [];
  if (values.length === 0 || values.some((v) => v !== values[0])) {
    throw new ModelConfigError('BAD_CONFIG', `${key}: per-layer values that differ (${values.join(', ')}) are not supported`);
  }
  return values[0];
}

function readRope(file: GgufFile, arch: string, traits: ArchTraits, headDim: number, contextLength: number): RopeConfig {
  const key = (suffix: string): string => `${arch}.rope.${suffix}`;
  const dims = optNumber(file, key('dimension_count')) ?? headDim;
  // All supported graphs assert that the whole head is rotated.
  if (dims !== headDim) throw new ModelConfigError('BAD_CONFIG', `${arch}: rope dimension count ${dims} != head dim ${headDim}`);
  // llama.cpp's default scaling type is "linear", which with no factor is no scaling.
  const scalingName = optString(file, key('scaling.type')) ?? 'linear';
  const scalingType = LLAMA_SCALING_TYPES.find((t) => t === scalingName);
  if (!scalingType) throw new ModelConfigError('BAD_CONFIG', `${key('scaling.type')}: unknown rope scaling '${scalingName}'`);
  const factor = optNumber(file, key('scaling.factor')) ?? optNumber(file, key('scale_linear')) ?? 0;
  return {
    kind: traits.rope,
    dims,
    freqBase: optNumber(file, key('freq_base')) ?? 10000,
    scalingType,
    scalingFactor: factor === 0 ? 1 : factor,
    originalContextLength: optNumber(file, key('scaling.original_context_length')) ?? contextLength,
    attnFactor: optNumber(file, key('scaling.attn_factor')) ?? 1,
    yarn: traits.readsYarnKeys ? readYarn(file, arch) : { ...YARN_DEFAULTS },
  };
}

/** llama.cpp's YaRN defaults, which apply to every architecture whose loader does not read the keys. */
const YARN_DEFAULTS: RopeConfig['yarn'] = { attnFactor: 1, betaFast: 32, betaSlow: 1, logMultiplier: 0 };

function readYarn(file: GgufFile, arch: string): RopeConfig['yarn'] {
  const yarnKey = (suffix: string): number | undefined => optNumber(file, `${arch}.rope.scaling.yarn_${suffix}`);
  return {
    extFactor: yarnKey('ext_factor'),
    attnFactor: yarnKey('attn_factor') ?? YARN_DEFAULTS.attnFactor,
    betaFast: yarnKey('beta_fast') ?? YARN_DEFAULTS.betaFast,
    betaSlow: yarnKey('beta_slow') ?? YARN_DEFAULTS.betaSlow,
    logMultiplier: yarnKey('log_multiplier') ?? YARN_DEFAULTS.logMultiplier,
  };
}

type ShapeBase = Pick<
  ModelConfig,
  'arch' | 'nLayer' | 'hidden' | 'nHead' | 'nHeadKv' | 'headDimK' | 'nExpert' | 'expertFF' | 'sharedExpertFF' | 'denseFF' | 'leadingDenseLayers'
>;

/** Finds every tensor the graph uses and checks its dims (ggml order: dims[0] is the row length). */
function readTensorTable(file: GgufFile, c: ShapeBase, traits: ArchTraits): TensorTable {
  const byName = new Map<string, GgufTensorInfo>(file.tensors.map((t) => [t.name, t]));
  const need = (name: string, dims: number[]): string => {
    const t = byName.get(name);
    if (!t) {
      const fused = name.endsWith('attn_q.weight') && byName.has(name.replace('attn_q', 'attn_qkv'));
      const hint = fused ? ' (fused attn_qkv tensors are not supported)' : '';
      throw new ModelConfigError('MISSING_TENSOR', `${c.arch}: tensor ${name} is missing${hint}`);
    }
    checkDims(c.arch, t, dims);
    return name;
  };
  const maybe = (name: string, dims: number[]): string | undefined => (byName.has(name) ? need(name, dims) : undefined);

  const H = c.hidden;
  const q = c.nHead * c.headDimK;
  const kv = c.nHeadKv * c.headDimK;
  const vocab = byName.get('token_embd.weight')?.dims[1] ?? 0;
  const tokenEmbd = need('token_embd.weight', [H, vocab]);
  const output = traits.outputOptional ? maybe('output.weight', [H, vocab]) ?? tokenEmbd : need('output.weight', [H, vocab]);
  const layers: LayerTensors[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const b = `blk.${i}.`;
    const normDims = traits.qkNorm === 'per-head' ? [[c.headDimK], [c.headDimK]] : [[q], [kv]];
    layers.push({
      attnNorm: need(b + 'attn_norm.weight', [H]),
      q: need(b + 'attn_q.weight', [H, q]),
      k: need(b + 'attn_k.weight', [H, kv]),
      v: need(b + 'attn_v.weight', [H, kv]),
      qBias: maybe(b + 'attn_q.bias', [q]),
      kBias: maybe(b + 'attn_k.bias', [kv]),
      vBias: maybe(b + 'attn_v.bias', [kv]),
      qNorm: traits.qkNorm === 'none' ? undefined : need(b + 'attn_q_norm.weight', normDims[0]),
      kNorm: traits.qkNorm === 'none' ? undefined : need(b + 'attn_k_norm.weight', normDims[1]),
      attnOut: need(b + 'attn_output.weight', [q, H]),
      attnOutBias: maybe(b + 'attn_output.bias', [H]),
      attnSinks: traits.attentionSinks ? need(b + 'attn_sinks.weight', [c.nHead]) : undefined,
      ffnNorm: need(b + (traits.ffnNormTensor ?? 'ffn_norm') + '.weight', [H]),
      ffn: i < c.leadingDenseLayers ? denseFfn(b, c, need) : moeFfn(b, c, need, maybe),
    });
  }
  return {
    tokenEmbd,
    outputNorm: need('output_norm.weight', [H]),
    output,
    ropeFreqs: maybe('rope_freqs.weight', [c.headDimK / 2]),
    layers,
  };
}

type Need = (name: string, dims: number[]) => string;
type Maybe = (name: string, dims: number[]) => string | undefined;

function denseFfn(b: string, c: ShapeBase, need: Need): DenseFfnTensors {
  const { hidden: H, denseFF: F } = c;
  return {
    kind: 'dense',
    gate: need(b + 'ffn_gate.weight', [H, F]),
    up: need(b + 'ffn_up.weight', [H, F]),
    down: need(b + 'ffn_down.weight', [F, H]),
  };
}

function moeFfn(b: string, c: ShapeBase, need: Need, maybe: Maybe): MoeFfnTensors {
  const { hidden: H, expertFF: F, nExpert: E, sharedExpertFF: S } = c;
  return {
    kind: 'moe',
    router: need(b + 'ffn_gate_inp.weight', [H, E]),
    routerBias: maybe(b + 'ffn_gate_inp.bias', [E]),
    gateExps: need(b + 'ffn_gate_exps.weight', [H, F, E]),
    upExps: need(b + 'ffn_up_exps.weight', [H, F, E]),
    downExps: need(b + 'ffn_down_exps.weight', [F, H, E]),
    expertBiases:
      maybe(b + 'ffn_gate_exps.bias', [F, E]) === undefined
        ? undefined
        : { gate: b + 'ffn_gate_exps.bias', up: need(b + 'ffn_up_exps.bias', [F, E]), down: need(b + 'ffn_down_exps.bias', [H, E]) },
    shared:
      S > 0
        ? {
            gateInp: need(b + 'ffn_gate_inp_shexp.weight', [H]),
            gate: need(b + 'ffn_gate_shexp.weight', [H, S]),
            up: need(b + 'ffn_up_shexp.weight', [H, S]),
            down: need(b + 'ffn_down_shexp.weight', [S, H]),
          }
        : undefined,
  };
}

function checkDims(arch: string, t: GgufTensorInfo, expected: number[]): void {
  // Trailing 1s are not stored in GGUF, so [H, 1] and [H] are the same shape.
  const trim = (d: readonly number[]): number[] => {
    const out = [...d];
    while (out.length > 1 && out[out.length - 1] === 1) out.pop();
    return out;
  };
  const got = trim(t.dims);
  const want = trim(expected);
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new ModelConfigError('BAD_SHAPE', `${arch}: tensor ${t.name} has dims [${t.dims.join(', ')}], expected [${expected.join(', ')}]`);
  }
}
