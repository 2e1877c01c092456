/**
 * Replays routing traces through a cache policy (the same objects the GPU
 * cache uses) and, optionally, a predictor driving prefetch. Each trace is
 * one generation and starts from a cold cache (plus any pinned experts);
 * results are pooled over traces (sums of counts, not a mean of rates).
 *
 * At each (token, layer), in order:
 *  1. demand: each routed expert is accessed; a resident one is a hit, a
 *     missing one is a miss (the layer stalls on its load). The layer's
 *     experts stay pinned until step 3 ends, as a real layer holds its slots
 *     while it computes.
 *  2. the predictor observes the routing.
 *  3. prefetch: for the next `lookahead` positions (layers l+1.., running on
 *     into the next token), the predicted experts are loaded, or refreshed if
 *     resident, each pinned until the round ends so one round does not evict
 *     its own guesses. Loads are assumed to finish before they are needed
 *     (no timing model): a stall is a demand miss. A gate (prefetch-gate.ts)
 *     loads only guesses confident enough, within a per-token allowance,
 *     and the policy may refuse a guess it rates below its victim.
 * A prefetched expert is "used" when a demand access finds it before its
 * eviction: precision = used / prefetch loads; recall = used / (used + misses),
 * the share of needed loads that prefetch covered.
 *
 * With a host tier (`hostCapacity`, host-model.ts), every GPU load (miss,
 * prefetch or pin) is a host hit or a store read, and after each prefetch
 * round the predictor's guesses up to `hostWarm.lookahead` positions ahead
 * that are not in GPU slots are warmed into host memory, as the engine does.
 */

import { beladyMin } from './belady';
import { HostModel } from './host-model';
import type { ExpertCachePolicy, ExpertKey } from '../policy';
import { PrefetchGate, type PrefetchGateOptions } from '../prefetch-gate';
import { scoredPredictions, type ExpertPredictor, type RoutingPosition } from '../predictors';
import { accessSequence, commonShape, type RoutingTrace } from '../trace';

export interface SimulationOptions {
  /** Expert slots. */
  capacity: number;
  /** Called once per trace: every trace starts cold. */
  policy: (capacity: number) => ExpertCachePolicy;
  /** Called once per trace (online learning starts afresh unless the factory adds priors). */
  predictor?: (trace: RoutingTrace) => ExpertPredictor;
  /** Positions ahead to prefetch (default 1: the next layer). */
  lookahead?: number;
  /** Experts prefetched per position (default: the trace's top_k). */
  prefetchWidth?: number;
  /** Which guesses are loaded: confidence threshold and per-token allowance (default: every guess). */
  gate?: PrefetchGateOptions;
  /** Keys pinned (and loaded) at the start of every trace. */
  pinned?: readonly ExpertKey[];
  /** Bytes of one expert, for bytes moved (default: the traces' expertBytes). */
  expertBytes?: number;
  /** Also compute Belady's optimum at the same capacity (default true). */
  belady?: boolean;
  /** Expert records host memory holds (default 0: no host tier, every load reads the store). */
  hostCapacity?: number;
  /** Warming of the host tier by the predictor (default: none); the engine's defaults are DEFAULT_HOST_WARM. */
  hostWarm?: { lookahead: number; minConfidence: number; width?: number };
}

export interface SimulationCounts {
  tokens: number;
  accesses: number;
  hits: number;
  /** Demand misses: each one a stall on a load. */
  misses: number;
  prefetchLoads: number;
  /** Prefetched experts that a demand access found before their eviction. */
  prefetchUsed: number;
  /** Loads of pinned experts at the start of each trace. */
  pinLoads: number;
  evictions: number;
  /** GPU loads the host tier held. */
  hostHits: number;
  /** Records read from the store (GPU loads the host did not hold, and warms). */
  storeReads: number;
  /** Store reads made by warming. */
  hostWarmReads: number;
}

export interface BeladyFigures {
  hits: number;
  misses: number;
  hitRate: number;
}

export interface TraceSimulation extends SimulationCounts {
  name: string;
  policy: string;
  predictor: string | undefined;
  hitRate: number;
  belady?: BeladyFigures;
}

export interface SimulationReport extends SimulationCounts {
  capacity: number;
  totalExperts: number;
  policy: string;
  predictor: string | undefined;
  lookahead: number;
  hitRate: number;
  precision: number;
  recall: number;
  /** Every load (misses, prefetches, pins) times the expert size, when known. */
  bytesMoved: number | undefined;
  /** Records host memory holds (0: no host tier). */
  hostCapacity: number;
  /** Share of GPU loads the host held. */
  hostHitRate: number;
  /** Store reads per token, and their bytes when the expert size is known. */
  storeReadsPerToken: number;
  storeBytesPerToken: number | undefined;
  belady: BeladyFigures | undefined;
  traces: TraceSimulation[];
}

const zeroCounts = (): SimulationCounts => ({
  tokens: 0, accesses: 0, hits: 0, misses: 0, prefetchLoads: 0, prefetchUsed: 0, pinLoads: 0, evictions: 0, hostHits: 0, storeReads: 0, hostWarmReads: 0,
});

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

/** The position `distance` steps after `from` in replay order. */
function advance(from: RoutingPosition, distance: number, nLayers: number): RoutingPosition {
  const flat = from.token * nLayers + from.layer + distance;
  return { token: Math.floor(flat / nLayers), layer: flat % nLayers };
}

interface ReplayState {
  counts: SimulationCounts;
  policy: ExpertCachePolicy;
  /** Prefetched keys not yet used by a demand access. */
  pending: Set<ExpertKey>;
  host: HostModel;
}

function noteEviction(state: ReplayState, evicted: ExpertKey | undefined): void {
  if (evicted === undefined) return;
  state.counts.evictions++;
  state.pending.delete(evicted);
  state.host.gpuEvicted(evicted);
}

/** Demand accesses of one layer; returns the keys pinned for the layer's duration. */
function demandLayer(state: ReplayState, keys: readonly ExpertKey[]): ExpertKey[] {
  const held: ExpertKey[] = [];
  for (const key of keys) {
    const r = state.policy.access(key);
    state.counts.accesses++;
    if (r.hit) {
      state.counts.hits++;
      if (state.pending.delete(key)) state.counts.prefetchUsed++;
    } else {
      state.counts.misses++;
      state.host.load(key);
      noteEviction(state, r.evicted);
    }
    if (r.admitted) {
      state.policy.pin([key]);
      held.push(key);
    }
  }
  return held;
}

function prefetchRound(state: ReplayState, trace: RoutingTrace, predictor: ExpertPredictor, gate: PrefetchGate, from: RoutingPosition, lookahead: number, width: number, held: ExpertKey[]): void {
  for (let d = 1; d <= lookahead; d++) {
    const target = advance(from, d, trace.nLayers);
    if (target.token >= trace.tokens.length) return;
    for (const guess of gate.confident(scoredPredictions(predictor, from, target, width))) {
      const key = target.layer * trace.nExperts + guess.expert;
      const resident = state.policy.has(key);
      if (!resident && !gate.take()) return; // this token's allowance is spent
      const r = state.policy.prefetch(key, guess.score);
      if (!r.admitted) {
        // every slot is held, or the policy rates the guess below the key it would evict
        if (!resident) gate.refund();
        continue;
      }
      if (!r.hit) {
        state.counts.prefetchLoads++;
        state.host.load(key);
        state.pending.add(key);
        noteEviction(state, r.evicted);
      }
      state.policy.pin([key]);
      held.push(key);
    }
  }
}

/** Host warming: guesses up to `lookahead` positions ahead, not in GPU slots, read into host memory. */
function warmRound(state: ReplayState, trace: RoutingTrace, predictor: ExpertPredictor, from: RoutingPosition, warm: NonNullable<SimulationOptions['hostWarm']>): void {
  for (let d = 1; d <= warm.lookahead; d++) {
    const target = advance(from, d, trace.nLayers);
    if (target.token >= trace.tokens.length) return;
    for (const guess of scoredPredictions(predictor, from, target, warm.width ?? trace.topK)) {
      const key = target.layer * trace.nExperts + guess.expert;
      if (guess.score >= warm.minConfidence && !state.policy.has(key)) state.host.warm(key);
    }
  }
}

/** Replays one trace from a cold cache. */
export function simulateTrace(trace: RoutingTrace, options: SimulationOptions): TraceSimulation {
  const policy = options.policy(options.capacity);
  const host = new HostModel(options.hostCapacity ?? 0);
  const state: ReplayState = { counts: zeroCounts(), policy, pending: new Set(), host };
  const warm = host.capacity > 0 ? options.hostWarm : undefined;
  const predictor = options.predictor?.(trace);
  predictor?.begin(trace);
  const lookahead = options.lookahead ?? 1;
  const width = options.prefetchWidth ?? trace.topK;
  const gate = new PrefetchGate(options.gate);
  if (options.pinned?.length) {
    const before = policy.size;
    policy.pin(options.pinned);
    state.counts.pinLoads = policy.size - before;
    for (const key of options.pinned) host.load(key);
  }
  trace.tokens.forEach((token, t) => {
    state.counts.tokens++;
    gate.beginToken();
    for (let l = 0; l < trace.nLayers; l++) {
      const ids = token.experts[l];
      const held = demandLayer(state, ids.map((e) => l * trace.nExperts + e));
      if (predictor) {
        predictor.observe(t, l, ids);
        prefetchRound(state, trace, predictor, gate, { token: t, layer: l }, lookahead, width, held);
        if (warm) warmRound(state, trace, predictor, { token: t, layer: l }, warm);
      }
      policy.unpin(held);
    }
  });
  const result: TraceSimulation = {
    name: trace.name, policy: policy.name, predictor: predictor?.name,
    ...state.counts, ...host.counts, hitRate: ratio(state.counts.hits, state.counts.accesses),
  };
  if (options.belady ?? true) {
    const b = beladyMin(accessSequence(trace), options.capacity);
    result.belady = { hits: b.hits, misses: b.misses, hitRate: ratio(b.hits, b.accesses) };
  }
  return result;
}

/** Replays every trace (each cold) and pools the counts. */
export function simulate(traces: readonly RoutingTrace[], options: SimulationOptions): SimulationReport {
  const shape = commonShape(traces);
  const results = traces.map((trace) => simulateTrace(trace, options));
  const total = zeroCounts();
  for (const r of results) for (const k of Object.keys(total) as (keyof SimulationCounts)[]) total[k] += r[k];
  const expertBytes = options.expertBytes ?? traces[0].expertBytes;
  const withBelady = results.every((r) => r.belady);
  const beladyHits = results.reduce((s, r) => s + (r.belady?.hits ?? 0), 0);
  return {
    ...total,
    capacity: options.capacity,
    totalExperts: shape.nLayers * shape.nExperts,
    policy: results[0].policy,
    predictor: results[0].predictor,
    lookahead: options.predictor ? options.lookahead ?? 1 : 0,
    hitRate: ratio(total.hits, total.accesses),
    precision: ratio(total.prefetchUsed, total.prefetchLoads),
    recall: ratio(total.prefetchUsed, total.prefetchUsed + total.misses),
    bytesMoved: expertBytes === undefined ? undefined : (total.misses + total.prefetchLoads + total.pinLoads) * expertBytes,
    hostCapacity: options.hostCapacity ?? 0,
    hostHitRate: ratio(total.hostHits, total.misses + total.prefetchLoads + total.pinLoads),
    storeReadsPerToken: ratio(total.storeReads, total.tokens),
    storeBytesPerToken: expertBytes === undefined ? undefined : ratio(total.storeReads * expertBytes, total.tokens),
    belady: withBelady ? { hits: beladyHits, misses: total.accesses - beladyHits, hitRate: ratio(beladyHits, total.accesses) } : undefined,
    traces: results,
  };
}
