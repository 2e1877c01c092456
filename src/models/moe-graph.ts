/**
 * What an architecture's forward graph does differently, as data the shared
 * MoE transformer (moe-transformer.ts) reads: one short file per architecture
 * (llama.ts, qwen2moe.ts, ...) says how RoPE pairs dimensions, how the router
 * turns logits into expert weights, whether a gated shared expert runs beside
 * the routed ones, where QK-norm applies and which FFN activation is used.
 * Shapes, tensor names and optional tensors (biases, rope factors) come from
 * the ModelConfig read from the GGUF file.
 */

import type { FfnActivation } from '../kernels/expert-ffn';
import type { RopeOrdering } from '../kernels/rope';
import type { RouterScoring } from '../kernels/router';
import type { ModelConfig, QkNormKind } from './config';

export interface MoeGraphSpec {
  ropeOrdering: RopeOrdering;
  router: {
    scoring: RouterScoring;
    /** Divide the k selected weights by their sum. */
    normalize: boolean;
  };
  /** 'sigmoid-gated': a shared expert for every token, scaled by sigmoid(w . x) (Qwen2-MoE). */
  sharedExpert: 'none' | 'sigmoid-gated';
  qkNorm: QkNormKind;
  activation: FfnActivation;
}

/** One architecture: its GGUF `general.architecture` and its graph for a config. */
export interface MoeArchitecture {
  readonly arch: string;
  graph(config: ModelConfig): MoeGraphSpec;
}
