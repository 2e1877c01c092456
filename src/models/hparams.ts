/**
 * Readers of the hyper-parameters every decoder architecture shares, as
 * llama.cpp's loader reads them (llama_model::load_hparams before its
 * per-architecture switch), with the same keys and defaults. What only one
 * architecture reads lives in its own file in archs/.
 */

import { ARCHITECTURE_KEY, getNumber, getString, optNumber, optNumberArray, optString } from '../gguf/metadata';
import type { GgufFile } from '../gguf/types';
import { MODEL_LIMITS, ModelConfigError } from './config';
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

  /**
   * `value` (read from `suffix`, or derived from other keys when it is absent)
   * if it is an integer in min..max; else BAD_CONFIG naming the key and the
   * value, before anything is sized or looped over by it.
   */
  count(suffix: string, value: number, min: number, max: number): number {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ModelConfigError('BAD_CONFIG', `${this.key(suffix)} = ${value}: must be an integer in ${min}..${max}`);
    }
    return value;
  }

  /** `value` if it is a finite number (and > 0 with `positive`); else BAD_CONFIG naming the key. */
  real(suffix: string, value: number, opts: { positive?: boolean } = {}): number {
    if (!Number.isFinite(value) || (opts.positive && !(value > 0))) {
      throw new ModelConfigError('BAD_CONFIG', `${this.key(suffix)} = ${value}: must be a finite number${opts.positive ? ' > 0' : ''}`);
    }
    return value;
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
  const L = MODEL_LIMITS;
  const nLayer = m.count('block_count', m.number('block_count'), 1, L.maxLayers);
  const hidden = m.count('embedding_length', m.number('embedding_length'), 1, L.maxWidth);
  const nHead = m.count('attention.head_count', m.required('attention.head_count'), 1, L.maxHeads);
  const nHeadKv = m.count('attention.head_count_kv', m.uniform('attention.head_count_kv') ?? nHead, 1, L.maxHeads);
  const keyLength = m.uniform('attention.key_length');
  const valueLength = m.uniform('attention.value_length');
  if ((keyLength === undefined || valueLength === undefined) && hidden % nHead !== 0) throw m.error(`hidden ${hidden} is not a multiple of ${nHead} heads`);
  const headDimK = m.count('attention.key_length', keyLength ?? hidden / nHead, 1, L.maxHeadDim);
  const headDimV = m.count('attention.value_length', valueLength ?? hidden / nHead, 1, L.maxHeadDim);
  const nExpert = m.count('expert_count', m.optNumber('expert_count') ?? 0, 0, L.maxExperts);
  const nExpertUsed = m.count('expert_used_count', m.uniform('expert_used_count') ?? 0, 0, L.maxExperts);
  if (nHead % nHeadKv !== 0) throw m.error(`${nHead} heads is not a multiple of ${nHeadKv} kv heads`);
  if (nExpert === 0 && !opts.allowsDense) throw m.error('expert_count must be > 0');
  if (nExpert > 0 && (nExpertUsed < 1 || nExpertUsed > nExpert)) throw m.error(`expert_used_count ${nExpertUsed} must be in 1..${nExpert}`);
  return {
    nLayer,
    hidden,
    nHead,
    nHeadKv,
    headDimK,
    headDimV,
    contextLength: m.count('context_length', m.number('context_length'), 1, L.maxContext),
    rmsEps: m.real('attention.layer_norm_rms_epsilon', m.number('attention.layer_norm_rms_epsilon'), { positive: true }),
    nExpert,
    nExpertUsed,
    denseFF: m.count('feed_forward_length', m.uniform('feed_forward_length') ?? 0, 0, L.maxWidth),
  };
}

/** Checks the standard attention's head geometry: K and V heads of one size, and (ownHeadDim false) heads spanning the hidden size. */
export function checkStandardHeads(m: ArchMetadata, h: CommonHparams, opts: { ownHeadDim: boolean }): void {
  if (h.headDimK !== h.headDimV) throw m.error(`key length ${h.headDimK} != value length ${h.headDimV}`);
  if (!opts.ownHeadDim && h.nHead * h.headDimK !== h.hidden) {
    throw m.error(`heads * head dim (${h.nHead * h.headDimK}) must equal hidden (${h.hidden})`);
  }
}

/**
 * Widths the layers use must not be 0: the routed experts' (with experts)
 * and the dense FFN's (with dense layers); `expertFF` comes from
 * expert_feed_forward_length or feed_forward_length, as the architecture reads it.
 */
export function checkFfnWidths(m: ArchMetadata, h: Pick<CommonHparams, 'nExpert' | 'nLayer' | 'denseFF'> & { expertFF: number; leadingDenseLayers: number }): void {
  m.count('expert_feed_forward_length', h.expertFF, 0, MODEL_LIMITS.maxWidth);
  if (h.nExpert > 0 && h.leadingDenseLayers < h.nLayer && h.expertFF < 1) throw m.error('the routed experts\' FFN width (expert_feed_forward_length or feed_forward_length) must be > 0');
  if (h.leadingDenseLayers > 0 && h.denseFF < 1) throw m.error(`${m.key('feed_forward_length')} must be > 0 for the ${h.leadingDenseLayers} dense layer(s)`);
}

/** `expert_feed_forward_length`, or llama.cpp's fallback of feed_forward_length / experts used. */
export function expertWidthOrShare(m: ArchMetadata, h: CommonHparams): number {
  const width = m.uniform('expert_feed_forward_length') ?? (h.nExpertUsed > 0 ? Math.floor(h.denseFF / h.nExpertUsed) : 0);
  return m.count('expert_feed_forward_length', width, 0, MODEL_LIMITS.maxWidth);
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
  // Both orderings rotate pairs of dimensions.
  if (m.count('rope.dimension_count', dims, 2, MODEL_LIMITS.maxHeadDim) % 2 !== 0) throw m.error(`rope dimension count ${dims} must be even`);
  // llama.cpp's default scaling type is "linear", which with no factor is no scaling.
  const scalingName = m.optString('rope.scaling.type') ?? 'linear';
  const scalingType = SCALING_TYPES.find((t) => t === scalingName);
  if (!scalingType) throw new ModelConfigError('BAD_CONFIG', `${m.key('rope.scaling.type')}: unknown rope scaling '${scalingName}'`);
  const factorKey = m.optNumber('rope.scaling.factor') === undefined && m.optNumber('rope.scale_linear') !== undefined ? 'rope.scale_linear' : 'rope.scaling.factor';
  const factor = m.optNumber(factorKey) ?? 0;
  if (factor !== 0) m.real(factorKey, factor, { positive: true });
  return {
    kind: opts.kind,
    dims,
    freqBase: m.real('rope.freq_base', m.optNumber('rope.freq_base') ?? 10000, { positive: true }),
    scalingType,
    scalingFactor: factor === 0 ? 1 : factor,
    originalContextLength: m.count('rope.scaling.original_context_length', m.optNumber('rope.scaling.original_context_length') ?? opts.contextLength, 1, MODEL_LIMITS.maxContext),
    attnFactor: m.real('rope.scaling.attn_factor', m.optNumber('rope.scaling.attn_factor') ?? 1, { positive: true }),
    yarn: opts.readsYarnKeys ? readYarn(m) : { ...YARN_DEFAULTS },
  };
}

function readYarn(m: ArchMetadata): RopeConfig['yarn'] {
  const yarnKey = (suffix: string): number | undefined => {
    const value = m.optNumber(`rope.scaling.yarn_${suffix}`);
    return value === undefined ? undefined : m.real(`rope.scaling.yarn_${suffix}`, value);
  };
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
