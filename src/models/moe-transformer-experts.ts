/**
 * Routed experts of a MoeTransformer when they do not all fit the GPU budget:
 * the expert cache (src/experts/expert-cache.ts), the predictor that drives
 * prefetch, and the pure helpers the streaming forward pass uses (cutting a
 * batch into pieces whose experts fit at once, masking routing to a piece).
 */

import { ExpertBudgetError, ExpertCache } from '../experts/expert-cache';
import type { ExpertSource } from '../experts/expert-source';
import { createPolicy, isPolicyName } from '../experts/policies';
import type { PolicyName } from '../experts/policies';
import type { ExpertCachePolicy } from '../experts/policy';
import { AffinityPredictor } from '../experts/predictors';
import type { ExpertSlotLayout } from '../kernels/expert-slots';

/** How experts are guessed ahead of their layer. */
export type PrefetchPredictorName = 'pregate' | 'affinity';

export interface PrefetchOptions {
  /**
   * 'pregate': layer l+d's router applied to layer l's FFN input on the GPU
   * (only the ids come back); 'affinity': P(experts at l+d | experts at l),
   * learned online from the routing seen so far (reaches into the next token).
   */
  predictor: PrefetchPredictorName;
  /** MoE layers ahead to prefetch, 1..4 (default 1). */
  lookahead?: number;
  /** Experts guessed per layer (default the model's k). */
  width?: number;
}

export interface ExpertStreamingConfig {
  layout: ExpertSlotLayout;
  nLayers: number;
  nExperts: number;
  topK: number;
  /** Layers with routed experts, ascending. */
  moeLayers: number[];
  budgetBytes: number;
  policy: PolicyName | ((capacity: number) => ExpertCachePolicy);
  source: ExpertSource;
  slabLimitBytes: number;
  maxSlabBindings: number;
  pinned: readonly { layer: number; expert: number }[];
  prefetch?: PrefetchOptions;
  loadConcurrency?: number;
}

export const MAX_PREFETCH_LOOKAHEAD = 4;

/** Id that marks a masked routed pair: past every real expert, so it contributes nothing. */
const MASKED_ID = 0xffffffff;

export class ExpertStreaming {
  readonly cache: ExpertCache;
  /** moeIndex[layer]: the layer's place among MoE layers, or -1. */
  readonly moeIndex: number[];
  readonly predictor?: AffinityPredictor;
  readonly lookahead: number;
  readonly width: number;
  /** Decode tokens seen, in the predictor's position numbering. */
  tokenCount = 0;

  private constructor(
    device: GPUDevice,
    readonly config: ExpertStreamingConfig,
    capacity: number,
  ) {
    const policy = typeof config.policy === 'function' ? config.policy(capacity) : createPolicy(config.policy, capacity);
    this.cache = new ExpertCache(device, {
      layout: config.layout,
      nLayers: config.nLayers,
      nExperts: config.nExperts,
      capacity,
      policy,
      source: config.source,
      slabLimitBytes: config.slabLimitBytes,
      maxSlabBindings: config.maxSlabBindings,
      loadConcurrency: config.loadConcurrency,
    });
    this.moeIndex = Array.from({ length: config.nLayers }, (_, l) => config.moeLayers.indexOf(l));
    this.lookahead = config.prefetch?.lookahead ?? 1;
    this.width = config.prefetch?.width ?? config.topK;
    if (config.prefetch?.predictor === 'affinity') {
      this.predictor = new AffinityPredictor({ nLayers: config.moeLayers.length, nExperts: config.nExperts }, this.lookahead);
    }
  }

  /** Checks the budget (a typed error names the minimum), builds the cache and loads pinned experts. */
  static async create(device: GPUDevice, config: ExpertStreamingConfig): Promise<ExpertStreaming> {
    const { layout, topK, pinned } = config;
    if (typeof config.policy === 'string' && !isPolicyName(config.policy)) throw new RangeError(`unknown expert cache policy '${String(config.policy)}'`);
    const lookahead = config.prefetch?.lookahead ?? 1;
    if (!Number.isInteger(lookahead) || lookahead < 1 || lookahead > MAX_PREFETCH_LOOKAHEAD) {
      throw new RangeError(`prefetch lookahead must be an integer in 1..${MAX_PREFETCH_LOOKAHEAD}, got ${lookahead}`);
    }
    const capacity = Math.floor(config.budgetBytes / layout.slotBytes);
    const pinnedCount = new Set(pinned.map((p) => `${p.layer}.${p.expert}`)).size;
    // One token's k experts of a layer must be resident at once, besides any pinned ones.
    const minimum = (topK + pinnedCount) * layout.slotBytes;
    if (capacity < topK + pinnedCount) {
      throw new ExpertBudgetError(
        `an expert budget of ${config.budgetBytes} bytes holds ${capacity} experts of ${layout.slotBytes} bytes; ` +
          `at least ${topK + pinnedCount} (top-k ${topK}${pinnedCount ? ` + ${pinnedCount} pinned` : ''}) must fit: give at least ${minimum} bytes`,
        minimum,
        Infinity,
      );
    }
    const streaming = new ExpertStreaming(device, config, capacity);
    if (pinned.length > 0) await streaming.cache.pinExperts(pinned);
    streaming.cache.resetStats();
    return streaming;
  }

  destroy(): void {
    this.cache.destroy();
  }
}

/** Tokens of one piece of a batch and every routed id of theirs (with repeats), token-major. */
export interface BatchPiece {
  tokens: number[];
  experts: number[];
}

/**
 * Cuts a batch into runs of consecutive tokens whose distinct experts number
 * at most `slots` (each token alone needs at most k, which always fits).
 */
export function planPieces(ids: Uint32Array, tokens: number, topK: number, slots: number): BatchPiece[] {
  const pieces: BatchPiece[] = [];
  let current: BatchPiece = { tokens: [], experts: [] };
  let distinct = new Set<number>();
  for (let t = 0; t < tokens; t++) {
    const mine = Array.from(ids.subarray(t * topK, (t + 1) * topK));
    const union = new Set([...distinct, ...mine]);
    if (union.size > slots && current.tokens.length > 0) {
      pieces.push(current);
      current = { tokens: [], experts: [] };
      distinct = new Set(mine);
    } else {
      distinct = union;
    }
    current.tokens.push(t);
    current.experts.push(...mine);
  }
  if (current.tokens.length > 0) pieces.push(current);
  return pieces;
}

/** Routing words ([tokens, 2k]: ids then f32 weights) with every token outside `keep` routed nowhere. */
export function maskRouting(words: Uint32Array, tokens: number, topK: number, keep: readonly number[]): Uint32Array {
  const masked = new Uint32Array(words.subarray(0, tokens * 2 * topK));
  const kept = new Set(keep);
  for (let t = 0; t < tokens; t++) {
    if (kept.has(t)) continue;
    masked.fill(MASKED_ID, 2 * topK * t, 2 * topK * t + topK);
    masked.fill(0, 2 * topK * t + topK, 2 * topK * (t + 1));
  }
  return masked;
}
