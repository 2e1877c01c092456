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

/**
 * How prefetch warms the host tier (src/experts/host-tier.ts): guesses of the
 * affinity predictor further ahead than the GPU's prefetch (or, with a lower
 * threshold, less sure than a GPU slot is worth) are read from the store
 * into host memory, where a later GPU miss finds them. It takes no GPU slot.
 */
export interface HostWarmOptions {
  /** MoE layers ahead to warm, 0..MAX_HOST_WARM_LOOKAHEAD (0: no warming; default 2). */
  lookahead?: number;
  /** Smallest confidence warmed, 0..1 (default DEFAULT_MIN_CONFIDENCE, as for a GPU slot). */
  minConfidence?: number;
  /** Guesses per layer (default the model's k). */
  width?: number;
}

/**
 * One layer further than the GPU's prefetch, at the same confidence. On the
 * shared traces at a 25% GPU and 50% host budget (webmoe simulate
 * --host-budget 50%), this raised the host's share of GPU loads from 0.61 to
 * 0.67 (Mixtral-8x7B) and 0.81 to 0.83 (gpt-oss-20b) for 6% and 1% more
 * store reads; lower thresholds (0.2) or twice as many guesses bought a few
 * more host hits for far more reads (up to 2.9x on Mixtral).
 */
export const DEFAULT_HOST_WARM: Readonly<Required<Omit<HostWarmOptions, 'width'>>> = { lookahead: 2, minConfidence: DEFAULT_MIN_CONFIDENCE };
export const MAX_HOST_WARM_LOOKAHEAD = 8;

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
  /**
   * Host memory for expert records when streaming (src/experts/host-tier.ts):
   * a GPU miss is served from there before the store. Default
   * defaultHostBudgetBytes (a quarter of the device's memory, at most every
   * expert); 0: none.
   */
  hostBudgetBytes?: number;
  /** Warming of the host tier by prefetch guesses (default DEFAULT_HOST_WARM; needs the affinity predictor). */
  hostWarm?: HostWarmOptions;
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

/** Records a layer's expert FFN for `liveTokens` unmasked tokens (their routed ids when known on the CPU). */
export type EncodeExpertFfn = (pass: GPUComputePassEncoder, liveTokens: number, liveIds?: readonly number[]) => void;

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
   * `liveTokens` is how many of the batch's tokens that piece routes (the others are masked), and `liveIds` their
   * routed ids where the scheduler read them back (streaming), so the FFN can size its work exactly.
   */
  runLayer(rec: Recording, layer: number, tokens: number, encodeFfn: EncodeExpertFfn): Promise<void>;
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
  /** Waits for loads still in flight (prefetches, and host tier warm reads). */
  settle(): Promise<void>;
  destroy(): void;
}
