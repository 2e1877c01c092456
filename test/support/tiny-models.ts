/**
 * The generated models the parity and streaming tests cover: one per
 * supported architecture, plus variants whose graph differs in a way the
 * architecture allows: a Granite MoE Shared model (granitemoe with an
 * ungated shared expert beside the routed ones), and deepseek2 with a query
 * LoRA (DeepSeek-V2's attn_q_a/attn_q_b) and with DeepSeek-V3-style routing
 * (sigmoid scores, a selection bias, renormalised and scaled weights, as
 * Moonlight's files have).
 */

import { TINY_ARCHS } from '../../src/tiny/archs';
import type { TinyArch } from '../../src/tiny/archs';
import { tinyWeightTypesFor } from '../../src/tiny/make-tiny';
import type { TinyModelOptions, TinyWeightType } from '../../src/tiny/make-tiny';

export interface TinyModelKind {
  /** The architecture, or the variant's name. */
  name: string;
  arch: TinyArch;
  /** Shape options beyond the architecture's defaults, per weight type. */
  shape?: (type: TinyWeightType) => Partial<TinyModelOptions>;
  /** False for files the llama.cpp build the tests use cannot evaluate (they are held to the CPU reference only). */
  llamaCpp?: boolean;
}

const superBlock = (type: TinyWeightType): boolean => type === 'q4_k' || type === 'q6_k';

export const TINY_MODELS: readonly TinyModelKind[] = [
  ...TINY_ARCHS.map((arch) => ({ name: arch, arch })),
  { name: 'granitemoe-shared', arch: 'granitemoe', shape: (type) => ({ sharedFF: superBlock(type) ? 256 : 128 }) },
  { name: 'deepseek2-qlora', arch: 'deepseek2', shape: (type) => ({ qLoraRank: superBlock(type) ? 256 : 64 }) },
  { name: 'deepseek2-v3', arch: 'deepseek2', shape: () => ({ gating: 'sigmoid', selectionBias: true, normalizeWeights: true, weightsScale: 2.5 }) },
  // attn_k_b and attn_v_b in the file's type, as llama-quantize writes them; llama.cpp's CPU backend here fails on them (deepseek2.ts).
  { name: 'deepseek2-quantized-absorption', arch: 'deepseek2', shape: () => ({ quantizedAbsorption: true }), llamaCpp: false },
];

/** The kinds llama.cpp can evaluate, for the comparisons with it. */
export const LLAMA_CPP_TINY_MODELS: readonly TinyModelKind[] = TINY_MODELS.filter((kind) => kind.llamaCpp !== false);

/** A variant of an architecture rather than its plain generated model. */
export function isVariant(kind: TinyModelKind): boolean {
  return kind.name !== kind.arch;
}

/**
 * The weight types a kind is tested in: all of its architecture's, or, where
 * `quantizedCount` is given (SwiftShader, the slow adapter), F32 plus that
 * many of the quantized ones, rotated over the kinds so that together they
 * still cover every type.
 */
export function weightTypesOf(kind: TinyModelKind, quantizedCount?: number): readonly TinyWeightType[] {
  const all = tinyWeightTypesFor(kind.arch);
  if (quantizedCount === undefined) return all;
  const quantized = all.filter((t) => t !== 'f32');
  const start = TINY_MODELS.findIndex((k) => k.name === kind.name) * quantizedCount;
  const picked = new Set(Array.from({ length: Math.min(quantizedCount, quantized.length) }, (_, i) => quantized[(start + i) % quantized.length]!));
  return all.filter((t) => t === 'f32' || picked.has(t));
}

/** The options of `kind` in `type` (callers add seed, layers...). */
export function tinyOptions(kind: TinyModelKind, type: TinyWeightType): TinyModelOptions {
  return { arch: kind.arch, type, ...kind.shape?.(type) };
}
