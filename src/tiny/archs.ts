/**
 * The architectures generated test models come in: every supported one,
 * each written from its recipe in src/models/archs/<arch>.ts (tensor names
 * and shapes exactly as llama.cpp loads them), plus the loader constraints
 * all of them share.
 */

import type { TensorSpec, TinyShape } from '../models/architecture';
import { ARCHITECTURES, SUPPORTED_ARCHITECTURES, type ArchName } from '../models/registry';

export type { TensorRole, TensorSpec, TinyShape } from '../models/architecture';

export type TinyArch = ArchName;
export const TINY_ARCHS: readonly TinyArch[] = SUPPORTED_ARCHITECTURES;

export function tensorSpecs(arch: TinyArch, s: TinyShape): TensorSpec[] {
  return ARCHITECTURES[arch].tiny.tensors(s);
}

/** Architecture constraints llama.cpp's loader imposes; returns the first broken one. */
export function shapeProblem(arch: TinyArch, s: TinyShape): string | undefined {
  if (s.topK < 1 || s.topK > s.experts) return `top-k ${s.topK} must be in 1..experts (${s.experts})`;
  if (s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kv heads (${s.kvHeads})`;
  if (s.headDim % 2 !== 0) return `head dim (${s.headDim}) must be even for RoPE`;
  return ARCHITECTURES[arch].tiny.problem?.(s);
}
