/**
 * Statistics of routing traces that tell how cacheable and predictable the
 * routing is, pooled over a set of traces of one model:
 * - reuse: P(an expert chosen for token t at layer l was also chosen for
 *   token t-1 at layer l), pooled over assignments;
 * - affinity: the mean over (l, e) of max over e' of P(e' at l+1 | e at l),
 *   counted only over layer pairs that are both aligned;
 * - topShare: the share of assignments taken by the most used `fraction` of a
 *   layer's experts (an expert cut by the line counts pro rata), averaged
 *   over layers (uniform routing gives `fraction`).
 * Also: random routing of the same shape (the baseline for the above), the
 * same routing with each layer's tokens shuffled apart (a baseline that keeps
 * every layer's expert popularity but no order: what skew alone gives reuse
 * and affinity), the Mixtral paper's per-layer first-choice repeat rate, and
 * expert popularity (for pinning hot experts).
 */

import { mulberry32 } from '../../quant/random';
import type { ExpertKey } from '../policy';
import { commonShape, type RoutingTrace } from '../trace';

export function reuseRate(traces: readonly RoutingTrace[]): number {
  let reused = 0;
  let assignments = 0;
  for (const trace of traces) {
    for (let t = 1; t < trace.tokens.length; t++) {
      const now = trace.tokens[t].experts;
      const before = trace.tokens[t - 1].experts;
      for (let l = 0; l < trace.nLayers; l++) {
        for (const e of now[l]) {
          assignments++;
          if (before[l].includes(e)) reused++;
        }
      }
    }
  }
  return assignments === 0 ? 0 : reused / assignments;
}

export function layerAffinity(traces: readonly RoutingTrace[]): number {
  const { nLayers, nExperts } = commonShape(traces);
  // seen[l][e]: tokens routing to e at l (with an aligned l+1); pairs[l][e * nExperts + e']
  const seen = Array.from({ length: nLayers }, () => new Float64Array(nExperts));
  const pairs = Array.from({ length: nLayers }, () => new Float64Array(nExperts * nExperts));
  for (const trace of traces) {
    const aligned = trace.layerAligned ?? new Array<boolean>(nLayers).fill(true);
    for (const token of trace.tokens) {
      for (let l = 0; l + 1 < nLayers; l++) {
        if (!aligned[l] || !aligned[l + 1]) continue;
        for (const e of token.experts[l]) {
          seen[l][e]++;
          for (const next of token.experts[l + 1]) pairs[l][e * nExperts + next]++;
        }
      }
    }
  }
  let sum = 0;
  let n = 0;
  for (let l = 0; l < nLayers; l++) {
    for (let e = 0; e < nExperts; e++) {
      if (seen[l][e] === 0) continue;
      let best = 0;
      for (let next = 0; next < nExperts; next++) best = Math.max(best, pairs[l][e * nExperts + next]);
      sum += best / seen[l][e];
      n++;
    }
  }
  return n === 0 ? 0 : sum / n;
}

/** counts[layer][expert]: assignments pooled over the traces. */
export function layerCounts(traces: readonly RoutingTrace[]): Float64Array[] {
  const { nLayers, nExperts } = commonShape(traces);
  const counts = Array.from({ length: nLayers }, () => new Float64Array(nExperts));
  for (const trace of traces) for (const token of trace.tokens) token.experts.forEach((ids, l) => ids.forEach((e) => counts[l][e]++));
  return counts;
}

export function topShare(traces: readonly RoutingTrace[], fraction = 0.1): number {
  const counts = layerCounts(traces);
  let sum = 0;
  for (const layer of counts) {
    const sorted = [...layer].sort((a, b) => b - a);
    const total = sorted.reduce((s, c) => s + c, 0);
    let room = fraction * sorted.length;
    let top = 0;
    for (let i = 0; room > 0 && i < sorted.length; i++) {
      const take = Math.min(1, room);
      top += take * sorted[i];
      room -= take;
    }
    sum += total === 0 ? 0 : top / total;
  }
  return sum / counts.length;
}

export interface TraceStats {
  tokens: number;
  reuse: number;
  affinity: number;
  top10: number;
}

export function traceStats(traces: readonly RoutingTrace[]): TraceStats {
  return {
    tokens: traces.reduce((s, t) => s + t.tokens.length, 0),
    reuse: reuseRate(traces),
    affinity: layerAffinity(traces),
    top10: topShare(traces, 0.1),
  };
}

/** A trace of the same shape, length and layer alignment with uniform random top-k routing (equal weights). */
export function randomRoutingTrace(like: RoutingTrace, seed: number): RoutingTrace {
  const rng = mulberry32(seed);
  const { nLayers, nExperts, topK } = like;
  const pick = (): number[] => {
    // rejection sampling: k distinct ids, each subset equally likely
    const ids: number[] = [];
    while (ids.length < topK) {
      const e = Math.floor(rng() * nExperts);
      if (!ids.includes(e)) ids.push(e);
    }
    return ids;
  };
  const weights = new Array<number>(topK).fill(1 / topK);
  const tokens = like.tokens.map(() => {
    const experts = Array.from({ length: nLayers }, pick);
    return { experts, weights: experts.map(() => [...weights]) };
  });
  const trace: RoutingTrace = { name: `${like.name} (random routing, seed ${seed})`, nLayers, nExperts, topK, tokens };
  if (like.layerAligned) trace.layerAligned = [...like.layerAligned];
  return trace;
}

/** Statistics of random routing shaped like `traces`, averaged over `seeds` seeds. */
export function randomBaselineStats(traces: readonly RoutingTrace[], seeds: number): TraceStats {
  const runs = Array.from({ length: seeds }, (_, s) => traceStats(traces.map((t, i) => randomRoutingTrace(t, 1 + s * traces.length + i))));
  const mean = (f: (r: TraceStats) => number) => runs.reduce((sum, r) => sum + f(r), 0) / runs.length;
  return { tokens: runs[0]?.tokens ?? 0, reuse: mean((r) => r.reuse), affinity: mean((r) => r.affinity), top10: mean((r) => r.top10) };
}

/**
 * `like` with each layer's token order permuted independently: per-layer
 * expert counts are kept, temporal and cross-layer structure destroyed.
 */
export function shuffledRoutingTrace(like: RoutingTrace, seed: number): RoutingTrace {
  const rng = mulberry32(seed);
  const n = like.tokens.length;
  const orders = Array.from({ length: like.nLayers }, () => {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  });
  const tokens = like.tokens.map((_, t) => ({
    experts: orders.map((order, l) => [...like.tokens[order[t]].experts[l]]),
    weights: orders.map((order, l) => [...like.tokens[order[t]].weights[l]]),
  }));
  const trace: RoutingTrace = { name: `${like.name} (shuffled per layer, seed ${seed})`, nLayers: like.nLayers, nExperts: like.nExperts, topK: like.topK, tokens };
  if (like.layerAligned) trace.layerAligned = [...like.layerAligned];
  return trace;
}

/** Statistics of the traces shuffled per layer (popularity kept, order lost), averaged over `seeds` seeds. */
export function shuffledBaselineStats(traces: readonly RoutingTrace[], seeds: number): TraceStats {
  const runs = Array.from({ length: seeds }, (_, s) => traceStats(traces.map((t, i) => shuffledRoutingTrace(t, 1 + s * traces.length + i))));
  const mean = (f: (r: TraceStats) => number) => runs.reduce((sum, r) => sum + f(r), 0) / runs.length;
  return { tokens: runs[0]?.tokens ?? 0, reuse: mean((r) => r.reuse), affinity: mean((r) => r.affinity), top10: mean((r) => r.top10) };
}

/**
 * Per layer: the share of consecutive token pairs whose first-choice
 * (highest-weight, listed first) experts are equal, as the Mixtral paper
 * reports it (uniform random routing gives 1/nExperts).
 */
export function firstChoiceRepeat(traces: readonly RoutingTrace[]): number[] {
  const { nLayers } = commonShape(traces);
  const same = new Float64Array(nLayers);
  const pairs = new Float64Array(nLayers);
  for (const trace of traces) {
    for (let t = 1; t < trace.tokens.length; t++) {
      for (let l = 0; l < nLayers; l++) {
        pairs[l]++;
        if (trace.tokens[t].experts[l][0] === trace.tokens[t - 1].experts[l][0]) same[l]++;
      }
    }
  }
  return Array.from(same, (s, l) => (pairs[l] === 0 ? 0 : s / pairs[l]));
}

/** The `count` most routed (layer, expert) keys over the traces; ties to the smaller key. */
export function hottestKeys(traces: readonly RoutingTrace[], count: number): ExpertKey[] {
  const counts = layerCounts(traces);
  const nExperts = counts[0]?.length ?? 0;
  const keys = counts.flatMap((layer, l) => Array.from(layer, (c, e) => ({ key: l * nExperts + e, c })));
  keys.sort((a, b) => b.c - a.c || a.key - b.key);
  return keys.slice(0, count).filter((k) => k.c > 0).map((k) => k.key);
}
