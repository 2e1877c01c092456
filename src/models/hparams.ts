/**
 * Readers of the hyper-parameters every decoder architecture shares, as
 * llama.cpp's loader reads them (llama_model::load_hparams before its
 * per-architecture switch), with the same keys and defaults. What only one
 * architecture reads lives in its own file in archs/.
 */

import { ARCHITECTURE_KEY, getNumber, getString, optNumber, optNumberArray, optString } from '../gguf/metadata';
import type { GgufFile } from '../gguf/types';
import { ModelConfigError } from './config';
import type { RopeConfig, RopeOrdering, RopeScalingType } from './config';

/** The keys of one file under its architecture's prefix (`<arch>.<suffix>`). */
export class ArchMetadata {
  readonly arch: string;

  constructor(readonly file: GgufFile) {
    this.arch = getString(file, ARCHITECTURE_KEY);
  }

  key(suffix: string): string {
    return `${this.arch}.${suffix}`;
  }

  /** A scalar, or a per-layer array whose entries are all equal (llama.cpp's get_key_or_arr). */
  uniform(suffix: string): number | undefined {
    const key = this.key(suffix);
    const kv = this.file.metadata.get(key);
    if (!kv) return undefined;
    if (typeof kv.value !== 'object') return optNumber(this.file, key);
    const values = optNumberArray(this.file, key) ?? [];
    if (values.length === 0 || values.some((v) => v !== values[0])) {
      throw new ModelConfigError('BAD_CONFIG', `${key}: per-layer values that differ (${values.join(', ')}) are not supported`);
    }
    return values[0];
  }

  required(suffix: string): number {
    const value = this.uniform(suffix);
    if (value === undefined) throw this.error(`required metadata key ${this.key(suffix)} is missing`);
    return value;
  }

  /** A scalar key (getNumber's errors when absent). */
  number(suffix: string): number {
    return getNumber(this.file, this.key(suffix));
  }

  optNumber(suffix: string): number | undefined {
    return optNumber(this.file, this.key(suffix));
  }

  optString(suffix: string): string | undefined {
    return optString(this.file, this.key(suffix));
  }

  error(message: string, code: 'BAD_CONFIG' | 'BAD_SHAPE' = 'BAD_CONFIG'): ModelConfigError {
    return new ModelConfigError(code, `${this.arch}: ${message}`);
  }
}

/** The sizes every decoder has. */
export interface CommonHparams {
  nLayer: number;
  hidden: number;
  nHead: number;
  nHeadKv: number;
  headDimK: number;
  headDimV: number;
  contextLength: number;
  rmsEps: number;
  nExpert: number;
  nExpertUsed: number;
  /** `feed_forward_length` (0 when absent). */
  denseFF: number;
}

/**
 * Layer, head, context and expert counts with llama.cpp's defaults and
 * checks (head_count_kv defaults to head_count, key/value length to
 * hidden / heads). `allowsDense`: whether expert_count 0 (a dense model) is
 * accepted.
 */
export function readCommonHparams(m: ArchMetadata, opts: { allowsDense: boolean }): CommonHparams {
  const nLayer = m.number('block_count');
  const hidden = m.number('embedding_length');
  const nHead = m.required('attention.head_count');
  const nHeadKv = m.uniform('attention.head_count_kv') ?? nHead;
  const headDimK = m.uniform('attention.key_length') ?? hidden / nHead;
  const headDimV = m.uniform('attention.value_length') ?? hidden / nHead;
  const nExpert = m.optNumber('expert_count') ?? 0;
  const nExpertUsed = m.uniform('expert_used_count') ?? 0;
  if (!Number.isInteger(headDimK) || !Number.isInteger(headDimV)) throw m.error(`hidden ${hidden} is not a multiple of ${nHead} heads`);
  if (nHeadKv < 1 || nHead % nHeadKv !== 0) throw m.error(`${nHead} heads is not a multiple of ${nHeadKv} kv heads`);
  if (nExpert === 0 && !opts.allowsDense) throw m.error('expert_count must be > 0');
  if (nExpert > 0 && (nExpertUsed < 1 || nExpertUsed > nExpert)) throw m.error(`expert_used_count ${nExpertUsed} must be in 1..${nExpert}`);
  return {
    nLayer,
    hidden,
    nHead,
    nHeadKv,
    headDimK,
    headDimV,
    contextLength: m.number('context_length'),
    rmsEps: m.number('attention.layer_norm_rms_epsilon'),
    nExpert,
    nExpertUsed,
    denseFF: m.uniform('feed_forward_length') ?? 0,
  };
}

/** Checks the standard attention's head geometry: K and V heads of one size, and (ownHeadDim false) heads spanning the hidden size. */
export function checkStandardHeads(m: ArchMetadata, h: CommonHparams, opts: { ownHeadDim: boolean }): void {
  if (h.headDimK !== h.headDimV) throw m.error(`key length ${h.headDimK} != value length ${h.headDimV}`);
  if (!opts.ownHeadDim && h.nHead * h.headDimK !== h.hidden) {
    throw m.error(`heads * head dim (${h.nHead * h.headDimK}) must equal hidden (${h.hidden})`);
  }
}

/** `expert_feed_forward_length`, or llama.cpp's fallback of feed_forward_length / experts used. */
export function expertWidthOrShare(m: ArchMetadata, h: CommonHparams): number {
  return m.uniform('expert_feed_forward_length') ?? (h.nExpertUsed > 0 ? Math.floor(h.denseFF / h.nExpertUsed) : 0);
}

const SCALING_TYPES: readonly RopeScalingType[] = ['none', 'linear', 'yarn', 'longrope'];

/** llama.cpp's YaRN defaults, which apply to every architecture whose loader does not read the keys. */
export const YARN_DEFAULTS: RopeConfig['yarn'] = { attnFactor: 1, betaFast: 32, betaSlow: 1, logMultiplier: 0 };

/**
 * RoPE metadata: base, scaling type and factor, original context; the
 * `rope.scaling.yarn_*` keys only with `readsYarnKeys` (llama.cpp reads them
 * for some architectures only). `dims` is the rotated width the graph
 * expects (`rope.dimension_count` must equal it).
 */
export function readRope(m: ArchMetadata, opts: { kind: RopeOrdering; dims: number; contextLength: number; readsYarnKeys?: boolean }): RopeConfig {
  const dims = m.optNumber('rope.dimension_count') ?? opts.dims;
  if (dims !== opts.dims) throw m.error(`rope dimension count ${dims} != head dim ${opts.dims}`);
  // llama.cpp's default scaling type is "linear", which with no factor is no scaling.
  const scalingName = m.optString('rope.scaling.type') ?? 'linear';
  const scalingType = SCALING_TYPES.find((t) => t === scalingName);
  if (!scalingType) throw new ModelConfigError('BAD_CONFIG', `${m.key('rope.scaling.type')}: unknown rope scaling '${scalingName}'`);
  const factor = m.optNumber('rope.scaling.factor') ?? m.optNumber('rope.scale_linear') ?? 0;
  return {
    kind: opts.kind,
    dims,
    freqBase: m.optNumber('rope.freq_base') ?? 10000,
    scalingType,
    scalingFactor: factor === 0 ? 1 : factor,
    originalContextLength: m.optNumber('rope.scaling.original_context_length') ?? opts.contextLength,
    attnFactor: m.optNumber('rope.scaling.attn_factor') ?? 1,
    yarn: opts.readsYarnKeys ? readYarn(m) : { ...YARN_DEFAULTS },
  };
}

function readYarn(m: ArchMetadata): RopeConfig['yarn'] {
  const yarnKey = (suffix: string): number | undefined => m.optNumber(`rope.scaling.yarn_${suffix}`);
  return {
    extFactor: yarnKey('ext_factor'),
    attnFactor: yarnKey('attn_factor') ?? YARN_DEFAULTS.attnFactor,
    betaFast: yarnKey('beta_fast') ?? YARN_DEFAULTS.betaFast,
    betaSlow: yarnKey('beta_slow') ?? YARN_DEFAULTS.betaSlow,
    logMultiplier: yarnKey('log_multiplier') ?? YARN_DEFAULTS.logMultiplier,
  };
}

/** Full causal attention on every layer. */
export function fullAttention(nLayer: number): number[] {
  return new Array<number>(nLayer).fill(0);
}
