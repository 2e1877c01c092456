/**
 * The configuration of one MoE decoder as the forward passes read it: its
 * hyper-parameters, its graph choices and the names of its tensors, checked
 * against the GGUF file. Each architecture's file in archs/ builds one from a
 * file's metadata and tensor table (with the shared readers of hparams.ts and
 * tensor-table.ts); the GPU forward pass (transformer/) and the CPU reference
 * (src/ref/forward.ts) both read only this.
 *
 * One vocabulary for every notion, shared with the kernels: RoPE 'normal' or
 * 'neox', router scoring 'softmax' | 'sigmoid' | 'softmax-selected', shared
 * expert gate 'none' | 'sigmoid', activation 'silu' | 'gelu' | 'swiglu-oai'.
 */

import type { FfnActivation } from '../kernels/expert-ffn';
import type { RopeOrdering } from '../kernels/rope';
import type { RouterScoring } from '../kernels/router';

export type { FfnActivation, RopeOrdering, RouterScoring };

export type ModelConfigErrorCode =
  /** `general.architecture` names an architecture without a config reader. */
  | 'UNSUPPORTED_ARCH'
  /** A required tensor is absent. */
  | 'MISSING_TENSOR'
  /** A tensor's dims disagree with the config. */
  | 'BAD_SHAPE'
  /** Metadata that is missing, inconsistent or asks for something not implemented. */
  | 'BAD_CONFIG';

/**
 * The largest hyper-parameters a config may have: a few times the largest
 * published MoE (DeepSeek-V3: 61 layers, hidden 7168, 128 heads, 256 experts;
 * Llama 4 Scout: a 10 Mi context; Gemma: 262k tokens), so that a hostile
 * file's counts are refused before anything is sized by them.
 */
export const MODEL_LIMITS = {
  maxLayers: 1024,
  /** Hidden size and every FFN width. */
  maxWidth: 1 << 18,
  maxHeads: 1024,
  /** Width of one key or value head (and latent attention's cache row). */
  maxHeadDim: 4096,
  maxContext: 1 << 24,
  maxVocab: 1 << 21,
  maxExperts: 1024,
} as const;

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
  constructor(readonly code: ModelConfigErrorCode, message: string) {
    super(message);
  }
}

export type RopeScalingType = 'none' | 'linear' | 'yarn' | 'longrope';

/**
 * QK-norm: none; RMSNorm of each head's vector with a [headDim] weight
 * (qwen3moe); RMSNorm of the whole Q (or K) projection with a [heads*headDim]
 * weight (olmoe).
 */
export type QkNormKind = 'none' | 'per-head' | 'whole';

export interface RopeConfig {
  /** 'normal' rotates (2i, 2i+1), 'neox' rotates (i, i + dims/2). */
  kind: RopeOrdering;
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
  yarn: {
    extFactor?: number;
    attnFactor: number;
    betaFast: number;
    betaSlow: number;
    logMultiplier: number;
    /** The mscale of YaRN's magnitude numerator (1; deepseek2 uses its log multiplier, as llama.cpp special-cases it). */
    mscale?: number;
  };
}

/** How a token's router logits become expert choices and weights. */
export interface RoutingPolicy {
  /**
   * 'softmax': router logits → probabilities over all experts, then top-k.
   * 'sigmoid': each logit's sigmoid, then top-k (DeepSeek-V3 style).
   * 'softmax-selected': top-k by logit, softmax over the k selected logits (gpt-oss).
   */
  scoring: RouterScoring;
  /** Experts chosen per token (the k of top-k). */
  topK: number;
  /** Divide the k selected weights by their sum (Mixtral, Qwen3-MoE), i.e. softmax over the top-k logits. */
  normalize: boolean;
  /** Multiplier on the selected weights after normalisation (`expert_weights_scale`; 1 = none). */
  weightsScale: number;
  /** A shared expert added for every token, scaled by sigmoid(w · x) (Qwen2-MoE), or unscaled ('none'). */
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

/** A shared expert (or dense FFN): [hidden, ff] gate and up, [ff, hidden] down. */
export interface FfnTensors {
  gate: string;
  up: string;
  down: string;
}

export interface MoeFfnTensors {
  kind: 'moe';
  /** [hidden, experts]: router logits. */
  router: string;
  /** [experts]: added to the router logits (gpt-oss). */
  routerBias?: string;
  /** [experts]: added to the scores for choosing experts only, not to their weights (DeepSeek's exp_probs_b). */
  selectionBias?: string;
  /** [hidden, expertFF, experts] each for gate and up; [expertFF, hidden, experts] for down. */
  gateExps: string;
  upExps: string;
  downExps: string;
  /** [expertFF, experts] for gate and up, [hidden, experts] for down: per-expert biases (gpt-oss). */
  expertBiases?: { gate: string; up: string; down: string };
  /** Shared expert, with a [hidden] gate vector when the routing policy gates it. */
  shared?: FfnTensors & { gateInp?: string };
}

export interface DenseFfnTensors extends FfnTensors {
  kind: 'dense';
}

/** Attention with Q, K, V and output projections (optional biases, QK-norm weights and sinks). */
export interface StandardAttentionTensors {
  kind: 'standard';
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
}

/**
 * Multi-head latent attention (deepseek2), dims in ggml order with
 * L = kvLoraRank, r = ropeDim, n = nopeDim, dv = valueDim, dk = n + r.
 */
export interface LatentAttentionTensors {
  kind: 'latent';
  /** [hidden, heads dk], without a query LoRA. */
  q?: string;
  /** With one: [hidden, qLoraRank] down, its [qLoraRank] RMS norm, [qLoraRank, heads dk] up. */
  qA?: string;
  qANorm?: string;
  qB?: string;
  /** [hidden, L + r]: the compressed KV and the shared RoPE key. */
  kvAMqa: string;
  /** [L]: RMS norm of the compressed KV. */
  kvANorm: string;
  /** [n, L, heads]: per head, the query's non-rotated part absorbed into the latent space. */
  kB: string;
  /** [L, dv, heads]: per head, the latent output back to values. */
  vB: string;
  /** [heads dv, hidden]. */
  attnOut: string;
}

/** Names (as in the GGUF file) of one layer's tensors; optional ones only when present. */
export interface LayerTensors {
  attnNorm: string;
  attention: StandardAttentionTensors | LatentAttentionTensors;
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

/** The sizes of multi-head latent attention (deepseek2). */
export interface LatentAttentionConfig {
  /** L: width of the compressed KV, the latent space (`attention.kv_lora_rank`). */
  kvLoraRank: number;
  /** Width of the query's low-rank bottleneck, 0 for none (`attention.q_lora_rank`). */
  qLoraRank: number;
  /** r: rotated dimensions of each query head and of the one shared key (`rope.dimension_count`). */
  ropeDim: number;
  /** n: the query head's non-rotated dimensions. */
  nopeDim: number;
  /** dv: each head's value width after decompression (`attention.value_length_mla`). */
  valueDim: number;
}

export interface ModelConfig {
  /** `general.architecture`. */
  arch: string;
  name?: string;
  nLayer: number;
  hidden: number;
  nHead: number;
  /** KV heads; 1 for latent attention, whose one cache row all heads share. */
  nHeadKv: number;
  /** Width of a key (a cache row: L + r for latent attention). */
  headDimK: number;
  /** Width of a value (L for latent attention: the first L of a cache row). */
  headDimV: number;
  /** Latent attention's sizes, present exactly when the layers' attention is latent. */
  latent?: LatentAttentionConfig;
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
  /** The FFN activation of routed experts (shared experts and dense FFNs use SiLU). */
  activation: FfnActivation;
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
