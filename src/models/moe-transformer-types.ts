/**
 * The public shapes of a MoeTransformer: load options, the memory report and
 * what a forward call reads back.
 */

import type { RoutingKnobs } from '../kernels/router';
import type { TopKCandidates } from '../kernels/sampling';
import type { ExpertSchedulerOptions } from '../experts/scheduler';

export interface MoeTransformerOptions extends ExpertSchedulerOptions {
  /** Positions the KV cache holds; default min(model context, 4096). */
  maxContext?: number;
  /** Most tokens per forward submission (prefill is cut into batches of this); default 128. */
  maxBatchTokens?: number;
  /**
   * Batches of several tokens run the routed experts grouped by expert, each
   * expert's weights read once per tile of its tokens (default true); false
   * runs them token by token as decode does. The outputs are the same bits
   * either way: this exists to measure what grouping buys.
   */
  groupedPrefill?: boolean;
  /** Largest expert slab buffer; default min(128 MiB, device limits). */
  maxSlabBytes?: number;
  /**
   * Largest buffer (one storage binding) for a shared weight tensor; default
   * and at most the device's maxStorageBufferBindingSize and maxBufferSize.
   * The token embedding and output matrices are split by rows into buffers
   * within it (one lookup or product per piece); any other tensor past it
   * fails the load with a TensorBindingError. Lower it to exercise the split
   * on small models (tests); it does not bound expert slabs (maxSlabBytes),
   * the KV cache or the logits.
   */
  maxWeightBindingBytes?: number;
  /**
   * Routing speed knobs (skip low-weight experts, top-p routing), applied by
   * every MoE layer's router and by pre-gating, so a prediction names the
   * experts the router will use; default off (then the output is unchanged).
   */
  routing?: RoutingKnobs;
}

/** Where GPU memory goes: shared weights, routed experts, KV cache (bytes). */
export interface MemoryReport {
  /** Non-expert weights, shared experts and dense FFNs. */
  sharedWeightBytes: number;
  /** Routed experts: all of them, or the expert cache's slots. */
  expertBytes: number;
  kvCacheBytes: number;
  /** Routed experts resident at once / in the model. */
  expertSlots: number;
  totalExperts: number;
  /** Routed experts resident now, per layer (0 for a dense layer). */
  residentPerLayer: number[];
  /** The model layer index of each MoE layer: the rows of `residentExperts` and of routing records. */
  moeLayers: number[];
  /** Routed experts per MoE layer (n_expert). */
  expertsPerLayer: number;
  /** Routed experts each token uses per MoE layer (top-k). */
  expertsPerToken: number;
  /** Routed experts resident now: per MoE layer, ascending ids. */
  residentExperts: number[][];
  /** Whether experts stream through a cache (false: all resident). */
  streaming: boolean;
}

/**
 * What a forward call reads back: nothing, the last token's logits, every
 * token's logits, the last token's argmax, or its `topK` best candidates
 * (logits / temperature, with the log-sum-exp) for sampling.
 */
export type ForwardOutput = 'none' | 'last-logits' | 'all-logits' | 'argmax' | TopKOutput;

export interface TopKOutput {
  /** 1..maxTopK candidates. */
  topK: number;
  /** > 0. */
  temperature: number;
}

export interface ForwardResult {
  /** [rows][vocab]: one row ('last-logits') or one per token ('all-logits'). */
  logits?: Float32Array[];
  /** Id of the largest logit of the last token ('argmax'). */
  argmax?: number;
  /** The last token's best candidates (a TopKOutput). */
  candidates?: TopKCandidates;
}
