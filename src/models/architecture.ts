/**
 * One supported architecture, keyed by GGUF `general.architecture`: how its
 * hyper-parameters and tensors are read from a file (the ModelConfig every
 * forward pass reads), its graph choices, and what the test-model generator
 * (src/tiny) needs to write a model of it. Each lives in its own file in
 * archs/, as llama.cpp keeps one file per architecture; registry.ts maps the
 * names to them.
 */

import type { GgufFile, GgufKv } from '../gguf/types';
import type { FfnActivation, ModelConfig, QkNormKind, RopeOrdering, RoutingPolicy } from './config';

/** What an architecture's forward graph does differently, in the vocabulary the kernels use. */
export interface GraphChoices {
  rope: RopeOrdering;
  routing: Pick<RoutingPolicy, 'scoring' | 'normalize' | 'sharedExpertGate'>;
  qkNorm: QkNormKind;
  activation: FfnActivation;
}

export interface Architecture {
  readonly name: string;
  readonly graph: GraphChoices;
  /** The config of a file of this architecture; ModelConfigError names what is missing or unsupported. */
  readConfig(file: GgufFile): ModelConfig;
  readonly tiny: TinyRecipe;
}

/** Weight types the generator writes (llama.cpp's names, lower case). */
export type TinyWeightType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k' | 'mxfp4';

/** The sizes of a generated model. */
export interface TinyShape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  topK: number;
  expertFF: number;
  /** Shared-expert FFN width (for architectures whose tiny models have one). */
  sharedFF: number;
  vocab: number;
  contextLength: number;
  ropeTheta: number;
  rmsEps: number;
  /** Latent attention (deepseek2): the query's low-rank bottleneck (0: none). */
  qLoraRank?: number;
  /** Routing knobs some architectures take from their metadata (deepseek2's expert_gating_func, exp_probs_b, ...). */
  gating?: 'softmax' | 'sigmoid';
  selectionBias?: boolean;
  normalizeWeights?: boolean;
  weightsScale?: number;
  /** Leading layers with a dense FFN (of width 2 expertFF). */
  leadingDense?: number;
  /** Latent attention: attn_k_b and attn_v_b in the file's weight type (default F32; see deepseek2.ts). */
  quantizedAbsorption?: boolean;
}

/** How a tensor is stored: norms, biases, routers and attention sinks stay F32, as llama.cpp keeps them. */
export type TensorRole = 'norm' | 'bias' | 'router' | 'sink' | 'matrix' | 'embedding' | 'expert';

export interface TensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  role: TensorRole;
  /**
   * When the row length is not a multiple of the weight type's block, use
   * the type llama-quantize falls back to (deepseek2's attn_k_b has rows of
   * its non-rotated head width) instead of refusing the shape.
   */
  fallback?: boolean;
  /** Stored in F32 whatever the file's weight type (as llama.cpp keeps some tensors). */
  f32?: boolean;
}

/** What the generator needs to write a model of an architecture, as llama.cpp loads it. */
export interface TinyRecipe {
  /** Weight types it is generated in (default: all). */
  weightTypes?: readonly TinyWeightType[];
  /** Defaults that depend on the architecture, given the requested hidden size and heads. */
  defaults?(s: { hidden: number; heads: number }): Partial<TinyShape>;
  /** A constraint of llama.cpp's loader that the shape breaks, or undefined. */
  problem?(s: TinyShape): string | undefined;
  tensors(s: TinyShape): TensorSpec[];
  /** Keys beyond the ones every generated model has (sizes, heads, experts, RoPE base, norm eps); a key given here replaces the common one. */
  metadata(s: TinyShape): GgufKv[];
}
