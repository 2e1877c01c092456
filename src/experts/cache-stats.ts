/**
 * Telemetry of the GPU expert cache, per layer and summed, between resets
 * (a request, usually). Counts follow the trace simulator's definitions
 * (src/experts/simulator.ts), so engine figures and replayed traces compare:
 *
 * - an access is one (layer, expert) a batch routed to, counted once per
 *   batch (a decode step: once per routed expert);
 * - a hit found the expert resident (or its prefetch already under way), a
 *   miss had to load it while the layer waited;
 * - a prefetch load is a load started on a prediction; it is "used" when a
 *   demand access finds it before it is evicted. precision = used / loads,
 *   recall = used / (used + misses): the share of needed loads prefetch covered;
 * - stall ms: wall time a layer waited for its experts' bytes (including a
 *   prefetch that was still in flight when needed);
 * - bytes streamed: expert bytes loaded into GPU slots (demand and prefetch),
 *   from host memory or the store;
 * - tiers: a GPU miss is served from the host tier (src/experts/host-tier.ts)
 *   when it holds the record (a host hit), else from the store (a store read);
 *   store reads also count the host tier's warm reads ahead of need.
 */

export interface ExpertLayerStats {
  accesses: number;
  hits: number;
  misses: number;
  prefetchLoads: number;
  prefetchUsed: number;
  /** Prefetched experts that were still loading when needed (counted as hits, their wait as stall). */
  prefetchLate: number;
  bytesStreamed: number;
  stallMs: number;
}

export interface ExpertCacheStats extends ExpertLayerStats {
  /** Other names for hits and misses, as the engine reports them. */
  expertHits: number;
  expertMisses: number;
  hitRate: number;
  precision: number;
  recall: number;
  evictions: number;
  /** Per layer (layers without routed experts are all zeros). */
  layers: ExpertLayerStats[];
  /** Accesses served from GPU slots (the same as hits). */
  gpuHits: number;
  /** GPU loads served from host memory. */
  hostHits: number;
  /** Expert records read from the store (GPU loads the host tier did not serve, and its warm reads), and their bytes. */
  storeReads: number;
  storeBytes: number;
  /** Store reads made to warm the host tier ahead of need (counted in storeReads). */
  hostWarmReads: number;
  /** Bytes the host tier may hold (0: none, or nothing streams), and holds now. */
  hostBudgetBytes: number;
  hostHeldBytes: number;
}

/** What the tiers below the GPU slots did (see ExpertCacheStats). */
export type TierStats = Pick<ExpertCacheStats, 'hostHits' | 'storeReads' | 'storeBytes' | 'hostWarmReads' | 'hostBudgetBytes' | 'hostHeldBytes'>;

/** No tier below the GPU: every load is a store read (or nothing streams at all). */
export function storeOnlyTiers(layers: readonly ExpertLayerStats[]): TierStats {
  const loads = layers.reduce((sum, l) => sum + l.misses + l.prefetchLoads, 0);
  const bytes = layers.reduce((sum, l) => sum + l.bytesStreamed, 0);
  return { hostHits: 0, storeReads: loads, storeBytes: bytes, hostWarmReads: 0, hostBudgetBytes: 0, hostHeldBytes: 0 };
}

export function emptyLayerStats(): ExpertLayerStats {
  return { accesses: 0, hits: 0, misses: 0, prefetchLoads: 0, prefetchUsed: 0, prefetchLate: 0, bytesStreamed: 0, stallMs: 0 };
}

const ratio = (part: number, whole: number): number => (whole === 0 ? 0 : part / whole);

/** Sums layer counters into a snapshot (deep copies: later counting does not change it). */
export function summarizeStats(layers: readonly ExpertLayerStats[], evictions: number, tiers: TierStats = storeOnlyTiers(layers)): ExpertCacheStats {
  const total = emptyLayerStats();
  for (const layer of layers) for (const k of Object.keys(total) as (keyof ExpertLayerStats)[]) total[k] += layer[k];
  return {
    ...total,
    expertHits: total.hits,
    expertMisses: total.misses,
    hitRate: ratio(total.hits, total.accesses),
    precision: ratio(total.prefetchUsed, total.prefetchLoads),
    recall: ratio(total.prefetchUsed, total.prefetchUsed + total.misses),
    evictions,
    layers: layers.map((l) => ({ ...l })),
    gpuHits: total.hits,
    ...tiers,
  };
}
