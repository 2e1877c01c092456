/**
 * The expert scheduler: what the forward pass asks of the routed experts,
 * behind one interface with two implementations.
 *
 * - ResidentExperts (resident-scheduler.ts): every routed expert in GPU
 *   slots; the FFN reads them through a slot table indexed by the router's
 *   ids on the GPU, so no routing is read back. Counts accesses (all hits)
 *   and captures routing traces.
 * - StreamingExperts (streaming-scheduler.ts): an expert cache under a byte
 *   budget; each MoE layer submits up to its router, reads the ids back,
 *   makes those experts resident (loading misses, prefetching predictions)
 *   and then runs the FFN, in pieces of tokens when they do not fit at once.
 *
 * Either way, the forward pass calls `runLayer` with a function that
 * encodes the layer's expert FFN, and the outputs are the same bits.
 */

import type { Recording } from '../gpu/recording';
import type { ExpertSlotLayout } from '../kernels/expert-slots';
import type { ExpertCacheStats } from './cache-stats';
import type { ExpertSource } from './expert-source';
import type { PolicyName } from './policies';
import type { ExpertCachePolicy } from './policy';
import type { RoutingTrace, TokenRouting } from './trace';

/** How experts are guessed ahead of their layer ('none': no prefetch). */
export type PrefetchPredictorName = 'pregate' | 'affinity' | 'none';

export interface PrefetchOptions {
  /**
   * 'pregate': layer l+d's router applied to layer l's FFN input on the GPU
   * (only the ids come back); 'affinity': P(experts at l+d | experts at l),
   * learned online from the routing seen so far (reaches into the next token);
   * 'none': load only what is routed.
   */
  predictor: PrefetchPredictorName;
  /** MoE layers ahead to prefetch, 1..4 (default 1). */
  lookahead?: number;
  /** Experts guessed per layer (default the model's k). */
  width?: number;
  /**
   * Smallest confidence (the predictor's probability that the guess is routed) worth a load,
   * 0..1 (default DEFAULT_MIN_CONFIDENCE); pre-gate guesses count as sure.
   */
  minConfidence?: number;
}

/**
 * Affinity guesses below this probability of being routed are not loaded.
 * Chosen on the first half of each shared trace (gpt-oss-20b, Mixtral-8x7B)
 * as the lowest threshold whose loads stay within 1.2x on-demand LRU's;
 * the second halves confirm it (bench/results/experts-real-traces.md).
 */
export const DEFAULT_MIN_CONFIDENCE = 0.45;

/**
 * What streaming does when the caller chooses nothing: the next-use policy
 * with confidence-gated affinity prefetch of the next layer. Of the policies
 * and predictors that need no pre-gate it came closest to Belady's optimum
 * at the lowest loads on the shared traces (bench/results/experts-real-traces.md).
 */
export const DEFAULT_EXPERT_POLICY: PolicyName = 'next-use';
export const DEFAULT_PREFETCH: Readonly<PrefetchOptions> = { predictor: 'affinity', lookahead: 1, minConfidence: DEFAULT_MIN_CONFIDENCE };

export const MAX_PREFETCH_LOOKAHEAD = 4;

/** What a caller chooses about routed experts (declared once; the engine and the API pass it down). */
export interface ExpertSchedulerOptions {
  /**
   * GPU bytes for routed experts (fixed-size slots). Default, or at least
   * what they all take: all resident. Less: an expert cache streams them from
   * `expertSource`; at least top-k experts (plus pinned ones) must fit.
   */
  expertBudgetBytes?: number;
  /** Where missing experts are read (default: the model's GGUF); e.g. `storedExpertSource` over the WeightStore. */
  expertSource?: ExpertSource;
  /** Replacement policy of the expert cache: a name or a factory (default DEFAULT_EXPERT_POLICY, 'next-use'). */
  expertPolicy?: PolicyName | ((capacity: number) => ExpertCachePolicy);
  /** Experts kept resident for good when streaming (hot experts). */
  pinnedExperts?: readonly { layer: number; expert: number }[];
  /** Prefetch of predicted experts when streaming (default DEFAULT_PREFETCH: affinity, next layer, gated; `{ predictor: 'none' }` turns it off). */
  prefetch?: PrefetchOptions;
  /** Expert reads in flight at once when streaming (default 4). */
  expertLoadConcurrency?: number;
}

/** What a scheduler knows of the model it serves. */
export interface SchedulerModel {
  nLayer: number;
  nExpert: number;
  topK: number;
  /** Layers with routed experts, ascending. */
  moeLayers: number[];
  /** Each layer's routed-expert slot layout (undefined for a dense layer). */
  layouts: (ExpertSlotLayout | undefined)[];
  /** The routing the router writes, [tokens, 2 topK] words (ids, then f32 weights). */
  routing: GPUBuffer;
  /** The model's own experts (its GGUF), read to place resident experts and, by default, on misses. */
  fileSource: ExpertSource;
  slabLimitBytes: number;
  maxSlabBindings: number;
  /** Pre-gating: encodes MoE layer `target`'s router on the current FFN input, writing one token's routing into `out`. */
  encodeRouter(pass: GPUComputePassEncoder, target: number, out: GPUBuffer): void;
}

/** Where the routed experts' memory goes. */
export interface ExpertMemory {
  /** GPU bytes of routed-expert slots. */
  expertBytes: number;
  /** Routed experts resident at once / in the model. */
  expertSlots: number;
  totalExperts: number;
  /** Routed experts resident now, per layer (0 for a dense layer). */
  residentPerLayer: number[];
  /** Routed experts resident now: per MoE layer, ascending ids. */
  residentExperts: number[][];
}

export interface ExpertScheduler {
  /** Whether experts stream through a cache (false: all resident). */
  readonly streaming: boolean;
  /** [layers, nExperts] slot refs the FFN reads with the router's ids. */
  readonly table: GPUBuffer;
  /** The slabs layer `layer`'s FFN binds (a fixed list: the kernel is built for its length). */
  slabsOf(layer: number): GPUBuffer[];
  /** A batch of `tokens` starts at `startPosition` (0: a new sequence). */
  beginBatch(tokens: number, startPosition: number): void;
  /**
   * Layer `layer`'s routed experts for the batch: `encodeFfn` records the FFN into the open pass, once or per piece;
   * `liveTokens` is how many of the batch's tokens that piece routes (the others are masked).
   */
  runLayer(rec: Recording, layer: number, tokens: number, encodeFfn: (pass: GPUComputePassEncoder, liveTokens: number) => void): Promise<void>;
  /** Before the batch's last submission: records what must be read back with it. */
  encodeBatchEnd(encoder: GPUCommandEncoder): void;
  /** After that submission. */
  finishBatch(): Promise<void>;
  /** Telemetry since the last reset: hits, misses, prefetch, bytes, stalls per layer and summed. */
  stats(): ExpertCacheStats;
  resetStats(): void;
  memory(): ExpertMemory;
  /** Starts recording the routing of every token (MoE layers in order). */
  startTrace(name: string): void;
  /** The routing recorded since `startTrace` (recording stops), or undefined when none was started. */
  takeTrace(): RoutingTrace | undefined;
  /** Starts a live record of the routing of every token (MoE layers in order), independent of any trace. */
  startRoutingStream(): void;
  /** The tokens of the batches finished since the last drain (or the start), in order; [] when no stream is on. */
  drainRoutingStream(): TokenRouting[];
  stopRoutingStream(): void;
  /** Routed experts resident in GPU memory now: per MoE layer, ascending ids. */
  residentExperts(): number[][];
  /** Waits for loads still in flight (prefetches). */
  settle(): Promise<void>;
  destroy(): void;
}
