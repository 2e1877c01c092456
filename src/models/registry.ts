/**
 * The supported architectures, keyed by GGUF `general.architecture`, with what
 * each one's llama.cpp loader and graph (src/models/<arch>.cpp there) do
 * differently:
 *
 *   arch      rope  routing (build_moe_ffn norm_w)            QK-norm   expert width key
 *   llama     norm  softmax, top-k, renormalise (Mixtral)     none      feed_forward_length
 *   qwen2moe  neox  softmax, top-k, + sigmoid-gated shared    none      expert_feed_forward_length
 *   qwen3moe  neox  softmax, top-k, renormalise               per head  expert_feed_forward_length
 *   olmoe     neox  softmax, top-k                            whole     feed_forward_length
 *   granitemoe norm softmax, top-k, renormalise (+ scales)     none      feed_forward_length
 *
 *   gpt-oss   neox  top-k logits (+ bias), softmax over them   none      expert_feed_forward_length
 *             (+ attention sinks, sliding window on even layers, expert biases, clamped SwiGLU)
 *
 * Renormalising the top-k of a softmax is the softmax over the top-k logits.
 */

import { ARCHITECTURE_KEY, getString } from '../gguf/metadata';
import type { GgufFile } from '../gguf/types';
import { type ArchTraits, type ModelConfig, ModelConfigError, readModelConfig } from './config';
import { granitemoe } from './granitemoe';
import { gptOss } from './gpt-oss';
import { llama } from './llama';
import type { MoeArchitecture } from './moe-graph';
import { olmoe } from './olmoe';
import { qwen2moe } from './qwen2moe';
import { qwen3moe } from './qwen3moe';

export const ARCH_TRAITS: Readonly<Record<string, ArchTraits>> = {
  llama: {
    rope: 'norm',
    routing: { normalizeSelected: true, sharedExpertGate: 'none' },
    qkNorm: 'none',
    expertWidthKey: 'feed_forward_length',
    outputOptional: true,
    ownHeadDim: true,
    allowsDense: true,
    readsYarnKeys: false,
  },
  qwen2moe: {
    rope: 'neox',
    routing: { normalizeSelected: false, sharedExpertGate: 'sigmoid' },
    qkNorm: 'none',
    expertWidthKey: 'expert_feed_forward_length',
    outputOptional: false,
    ownHeadDim: false,
    allowsDense: false,
    readsYarnKeys: false,
  },
  qwen3moe: {
    rope: 'neox',
    routing: { normalizeSelected: true, sharedExpertGate: 'none' },
    qkNorm: 'per-head',
    expertWidthKey: 'expert_feed_forward_length',
    outputOptional: true,
    ownHeadDim: true,
    allowsDense: false,
    readsYarnKeys: false,
  },
  olmoe: {
    rope: 'neox',
    routing: { normalizeSelected: false, sharedExpertGate: 'none' },
    qkNorm: 'whole',
    expertWidthKey: 'feed_forward_length',
    outputOptional: false,
    ownHeadDim: false,
    allowsDense: false,
    readsYarnKeys: false,
  },
  granitemoe: {
    rope: 'norm',
    routing: { normalizeSelected: true, sharedExpertGate: 'none' },
    qkNorm: 'none',
    expertWidthKey: 'feed_forward_length',
    outputOptional: true,
    ownHeadDim: true,
    allowsDense: false,
    readsYarnKeys: false,
    readsGraniteScales: true,
  },
  'gpt-oss': {
    rope: 'neox',
    routing: { normalizeSelected: false, sharedExpertGate: 'none' },
    qkNorm: 'none',
    expertWidthKey: 'expert_feed_forward_length',
    outputOptional: false,
    ownHeadDim: true,
    allowsDense: false,
    readsYarnKeys: false,
    gating: 'softmax-selected',
    slidingWindow: { period: 2 },
    attentionSinks: true,
    ffnNormTensor: 'post_attention_norm',
  },
};

export const SUPPORTED_ARCHITECTURES: readonly string[] = Object.keys(ARCH_TRAITS);

/** Thrown for a GGUF whose `general.architecture` has no config reader. */
export class UnsupportedArchitectureError extends ModelConfigError {
  override name = 'UnsupportedArchitectureError';
  declare readonly code: 'UNSUPPORTED_ARCH';

  constructor(readonly architecture: string) {
    super(
      'UNSUPPORTED_ARCH',
      `architecture '${architecture}' is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  }
}

export function isSupportedArchitecture(arch: string): boolean {
  return Object.hasOwn(ARCH_TRAITS, arch);
}

/** The config of a parsed GGUF file; UnsupportedArchitectureError for an unknown architecture. */
export function modelConfigFromGguf(file: GgufFile): ModelConfig {
  const arch = getString(file, ARCHITECTURE_KEY);
  if (!isSupportedArchitecture(arch)) throw new UnsupportedArchitectureError(arch);
  return readModelConfig(file, ARCH_TRAITS[arch]);
}

/** The forward graph of each supported architecture (src/models/<arch>.ts). */
export const MOE_ARCHITECTURES: Readonly<Record<string, MoeArchitecture>> = { llama, qwen2moe, qwen3moe, olmoe, granitemoe, 'gpt-oss': gptOss };

/** The graph description of `arch`; UnsupportedArchitectureError for an unknown one. */
export function moeArchitectureFor(arch: string): MoeArchitecture {
  if (!Object.hasOwn(MOE_ARCHITECTURES, arch)) throw new UnsupportedArchitectureError(arch);
  return MOE_ARCHITECTURES[arch];
}
