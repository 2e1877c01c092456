/**
 * The public shapes of a MoeTransformer: load options, the memory report and
 * what a forward call reads back.
 */

import type { TopKCandidates } from '../kernels/sampling';
import type { ExpertSource } from '../experts/expert-source';
import type { PolicyName } from '../experts/policies';
import type { ExpertCachePolicy } from '../experts/policy';
import type { PrefetchOptions } from './moe-transformer-experts';

export interface MoeTransformerOptions {
  /** Positions the KV cache holds; default min(model context, 4096). */
  maxContext?: number;
  /** Most tokens per forward submission (prefill is cut into batches of this); default 32. */
  maxBatchTokens?: number;
  /** Largest expert slab buffer; default min(128 MiB, device limits). */
  maxSlabBytes?: number;
  /**
   * GPU bytes for routed experts (fixed-size slots). Default, or at least
   * what they all take: all resident. Less: an expert cache streams them from
   * `expertSource`; at least top-k experts (plus pinned ones) must fit.
   */
  expertBudgetBytes?: number;
  /** Where missing experts are read (default: the GGUF source given to `load`); e.g. `storedExpertSource` over the WeightStore. */
  expertSource?: ExpertSource;
  /** Replacement policy of the expert cache: a name or a factory (default 'lru'). */
  expertPolicy?: PolicyName | ((capacity: number) => ExpertCachePolicy);
  /** Experts kept resident for good when streaming (hot experts). */
  pinnedExperts?: readonly { layer: number; expert: number }[];
  /** Prefetch of predicted experts when streaming (default none). */
  prefetch?: PrefetchOptions;
  /** Expert reads in flight at once when streaming (default 4). */
  expertLoadConcurrency?: number;
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
