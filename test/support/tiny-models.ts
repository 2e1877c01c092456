/**
 * The generated models the parity and streaming tests cover: one per
 * supported architecture, plus variants whose graph differs in a way the
 * architecture allows (a Granite MoE Shared model: granitemoe with an
 * ungated shared expert beside the routed ones).
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
}

const superBlock = (type: TinyWeightType): boolean => type === 'q4_k' || type === 'q6_k';

export const TINY_MODELS: readonly TinyModelKind[] = [
  ...TINY_ARCHS.map((arch) => ({ name: arch, arch })),
  { name: 'granitemoe-shared', arch: 'granitemoe', shape: (type) => ({ sharedFF: superBlock(type) ? 256 : 128 }) },
];

export function weightTypesOf(kind: TinyModelKind): readonly TinyWeightType[] {
  return tinyWeightTypesFor(kind.arch);
}

/** The options of `kind` in `type` (callers add seed, layers...). */
export function tinyOptions(kind: TinyModelKind, type: TinyWeightType): TinyModelOptions {
  return { arch: kind.arch, type, ...kind.shape?.(type) };
}
