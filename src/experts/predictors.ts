/**
 * Predictors of which experts a coming layer will route to, for prefetch.
 * Positions run token by token, layer by layer; a prediction is asked at the
 * position just routed (`from`) for a later one (`target`), usually layer
 * l+1..l+d of the same token, or the first layers of the next token.
 *
 * - affinity: P(expert at target | experts at from), counted online from
 *   routing seen so far, one table per (source layer, distance in positions);
 *   layer popularity breaks ties and fills in before anything is learned.
 * - popularity: per-layer routing frequency (online and/or from earlier traces).
 * - oracle: the trace's own future; an upper bound for any predictor.
 * - pregate: a hook for pre-gating (layer l+1's router on layer l's hidden
 *   state). It needs hidden states, so in replay only traces that carry
 *   `predicted` ids can drive it.
 *
 * `predictScored` adds a confidence to each guess: an estimate of the
 * probability that the expert is routed at the target, so prefetch can load
 * only what is likely to be used (prefetch-gate.ts).
 */

import { TraceFormatError, type RoutingTrace } from './trace';

export interface RoutingPosition {
  token: number;
  layer: number;
}

/** A guessed expert and the predictor's estimate (0..1) that the target routes it. */
export interface ScoredExpert {
  expert: number;
  score: number;
}

export interface ExpertPredictor {
  readonly name: string;
  /** A new generation starts: what came before no longer precedes the next routing. */
  begin(trace: RoutingTrace): void;
  /** Learns from the routing just decided at (token, layer); called in replay order. */
  observe(token: number, layer: number, experts: readonly number[]): void;
  /** Up to `count` expert ids expected at `target`, best first, knowing routing up to `from`. */
  predict(from: RoutingPosition, target: RoutingPosition, count: number): number[];
  /** The same guesses with their confidence; a predictor without one (a pre-gate) is taken as sure. */
  predictScored?(from: RoutingPosition, target: RoutingPosition, count: number): ScoredExpert[];
}

/** Scored guesses from any predictor: those that estimate no confidence score 1 (a pre-gate is the next router itself). */
export function scoredPredictions(p: ExpertPredictor, from: RoutingPosition, target: RoutingPosition, count: number): ScoredExpert[] {
  return p.predictScored ? p.predictScored(from, target, count) : p.predict(from, target, count).map((expert) => ({ expert, score: 1 }));
}

export interface ModelShape {
  nLayers: number;
  nExperts: number;
}

/** Positions from `from` to `to` in replay order. */
export function positionDistance(from: RoutingPosition, to: RoutingPosition, nLayers: number): number {
  return (to.token - from.token) * nLayers + (to.layer - from.layer);
}

/** True when expert a ranks before b: higher score, then higher tie-break, then smaller id. */
function ranksBefore(a: number, b: number, scores: ArrayLike<number>, tieBreak: ArrayLike<number>): boolean {
  if (scores[a] !== scores[b]) return scores[a] > scores[b];
  if (tieBreak[a] !== tieBreak[b]) return tieBreak[a] > tieBreak[b];
  return a < b;
}

/** The `count` best-ranked ids with any evidence (score or tie-break above 0), best first. */
function topByScore(scores: ArrayLike<number>, tieBreak: ArrayLike<number>, count: number): number[] {
  const best: number[] = [];
  if (count <= 0) return best;
  for (let e = 0; e < scores.length; e++) {
    if (!(scores[e] > 0 || tieBreak[e] > 0)) continue;
    if (best.length === count && !ranksBefore(e, best[count - 1], scores, tieBreak)) continue;
    // insertion into the short sorted list (count is top-k sized)
    let i = Math.min(best.length, count - 1);
    best[i] = e;
    while (i > 0 && ranksBefore(e, best[i - 1], scores, tieBreak)) {
      best[i] = best[i - 1];
      best[i - 1] = e;
      i--;
    }
  }
  return best;
}

/** Per-layer routing frequency, learned online and/or from earlier traces. */
export class PopularityPredictor implements ExpertPredictor {
  readonly name = 'popularity';
  /** counts[layer][expert] */
  readonly counts: Float64Array[];
  /** tokensRouted[layer]: routings counted at the layer. */
  private readonly tokensRouted: number[];
  private readonly none: Float64Array;

  constructor(readonly shape: ModelShape, private readonly learnOnline = true) {
    this.counts = Array.from({ length: shape.nLayers }, () => new Float64Array(shape.nExperts));
    this.tokensRouted = new Array<number>(shape.nLayers).fill(0);
    this.none = new Float64Array(shape.nExperts);
  }

  begin(_trace?: RoutingTrace): void {}

  observe(_token: number, layer: number, experts: readonly number[]): void {
    if (this.learnOnline) this.count(layer, experts);
  }

  /** Adds routing from earlier traces (used even when not learning online). */
  learnFrom(traces: readonly RoutingTrace[]): void {
    for (const trace of traces) for (const token of trace.tokens) token.experts.forEach((ids, l) => this.count(l, ids));
  }

  predict(_from: RoutingPosition, target: RoutingPosition, count: number): number[] {
    return topByScore(this.counts[target.layer], this.none, count);
  }

  /** Score: the share of the layer's routed tokens that chose the expert (k experts per token). */
  predictScored(from: RoutingPosition, target: RoutingPosition, count: number): ScoredExpert[] {
    const counts = this.counts[target.layer];
    const routed = this.tokensRouted[target.layer];
    return this.predict(from, target, count).map((expert) => ({ expert, score: routed > 0 ? counts[expert] / routed : 0 }));
  }

  private count(layer: number, experts: readonly number[]): void {
    this.tokensRouted[layer]++;
    for (const e of experts) this.counts[layer][e]++;
  }
}

/**
 * Inter-layer affinity. For each distance d in 1..maxDistance and source
 * layer l it counts how often expert e' was routed d positions after e was
 * routed at l; the prediction for a target d positions ahead sums, over the
 * experts just routed, the conditional frequencies P(e' | e).
 */
export class AffinityPredictor implements ExpertPredictor {
  readonly name = 'affinity';
  /** pairs[d - 1][l][e * nExperts + e'] */
  private readonly pairs: Float64Array[][];
  /** sources[d - 1][l][e]: how often e at l had a successor d positions on */
  private readonly sources: Float64Array[][];
  private readonly popularity: PopularityPredictor;
  /** The routing of the last maxDistance positions, most recent first. */
  private history: (readonly number[])[] = [];
  /** reuse[l][e * nExperts + e']: e routed at l, then e' at l one token later. */
  private readonly reuse: Float64Array[];
  private readonly reuseSources: Float64Array[];
  /** lastRouted[l]: the experts routed at layer l most recently in this generation. */
  private lastRouted: (readonly number[] | undefined)[] = [];

  constructor(readonly shape: ModelShape, readonly maxDistance: number) {
    if (!Number.isInteger(maxDistance) || maxDistance < 1) throw new RangeError(`maxDistance must be a positive integer, got ${maxDistance}`);
    const { nLayers, nExperts } = shape;
    const tables = (size: number) => Array.from({ length: maxDistance }, () => Array.from({ length: nLayers }, () => new Float64Array(size)));
    this.pairs = tables(nExperts * nExperts);
    this.sources = tables(nExperts);
    this.reuse = Array.from({ length: nLayers }, () => new Float64Array(nExperts * nExperts));
    this.reuseSources = Array.from({ length: nLayers }, () => new Float64Array(nExperts));
    this.popularity = new PopularityPredictor(shape);
  }

  begin(_trace?: RoutingTrace): void {
    this.history = [];
    this.lastRouted = [];
  }

  /** Learns affinities and popularity from earlier traces, as if they had been replayed. */
  learnFrom(traces: readonly RoutingTrace[]): void {
    for (const trace of traces) {
      this.begin();
      trace.tokens.forEach((token, t) => token.experts.forEach((ids, l) => this.observe(t, l, ids)));
    }
    this.begin();
  }

  observe(token: number, layer: number, experts: readonly number[]): void {
    const { nLayers, nExperts } = this.shape;
    for (let d = 1; d <= this.history.length; d++) {
      const sourceLayer = (((layer - d) % nLayers) + nLayers) % nLayers;
      const pairs = this.pairs[d - 1][sourceLayer];
      const sources = this.sources[d - 1][sourceLayer];
      for (const e of this.history[d - 1]) {
        sources[e]++;
        for (const next of experts) pairs[e * nExperts + next]++;
      }
    }
    const before = this.lastRouted[layer];
    if (before) {
      for (const e of before) {
        this.reuseSources[layer][e]++;
        for (const next of experts) this.reuse[layer][e * nExperts + next]++;
      }
    }
    this.lastRouted[layer] = experts;
    this.popularity.observe(token, layer, experts);
    this.history.unshift(experts);
    if (this.history.length > this.maxDistance) this.history.pop();
  }

  predict(from: RoutingPosition, target: RoutingPosition, count: number): number[] {
    return this.predictScored(from, target, count).map((s) => s.expert);
  }

  /**
   * Score: the mean over the experts just routed of P(e' at target | e), an
   * estimate of the probability that e' is routed there, combined with what
   * the target layer routed last (addReuse). Beyond the learned distances,
   * or before anything is learned, popularity ranks with a score near 0: a
   * guess without evidence.
   */
  predictScored(from: RoutingPosition, target: RoutingPosition, count: number): ScoredExpert[] {
    const { nLayers, nExperts } = this.shape;
    const d = positionDistance(from, target, nLayers);
    const recent = this.history[0];
    const layerCounts = this.popularity.counts[target.layer];
    const scores = new Float64Array(nExperts);
    let learned = false;
    if (d >= 1 && d <= this.maxDistance && recent) {
      const pairs = this.pairs[d - 1][from.layer];
      const sources = this.sources[d - 1][from.layer];
      for (const e of recent) {
        if (sources[e] === 0) continue;
        learned = true;
        for (let next = 0; next < nExperts; next++) scores[next] += pairs[e * nExperts + next] / sources[e] / recent.length;
      }
    }
    const last = this.lastRouted[target.layer];
    if (last) this.addReuse(scores, learned, target.layer, last);
    return topByScore(scores, layerCounts, count).map((expert) => ({ expert, score: scores[expert] }));
  }

  /**
   * Folds in the second witness, the target layer's own last routing: with
   * P(e' | the experts just routed) = a and P(e' | the layer's last experts) = b,
   * both conditioned on the layer's base rate r, the naive-Bayes combination
   * has odds(a) * odds(b) / odds(r). It ranked better than affinity alone, the
   * mean of the two or their maximum on the shared gpt-oss and Mixtral traces.
   */
  private addReuse(scores: Float64Array, learned: boolean, layer: number, last: readonly number[]): void {
    const { nExperts } = this.shape;
    const pairs = this.reuse[layer];
    const sources = this.reuseSources[layer];
    const reuse = new Float64Array(nExperts);
    let seen = false;
    for (const e of last) {
      if (sources[e] === 0) continue;
      seen = true;
      for (let next = 0; next < nExperts; next++) reuse[next] += pairs[e * nExperts + next] / sources[e] / last.length;
    }
    if (!seen) return;
    const counts = this.popularity.counts[layer];
    let total = 0;
    for (let e = 0; e < nExperts; e++) total += counts[e];
    for (let e = 0; e < nExperts; e++) {
      // Neither witness has seen e follow: it stays without evidence.
      if (!(scores[e] > 0 || reuse[e] > 0)) continue;
      const base = total > 0 ? (counts[e] / total) * last.length : last.length / nExperts;
      // Without a learned affinity (beyond its distances) that witness says only the base rate.
      const combined = (odds(learned ? scores[e] : base) * odds(reuse[e])) / odds(base);
      scores[e] = combined / (1 + combined);
    }
  }
}

/** p / (1 - p), with p kept off 0 and 1 so that no witness is ever certain. */
function odds(p: number): number {
  const c = Math.min(0.999, Math.max(0.001, p));
  return c / (1 - c);
}

/** Knows the trace: predicts exactly what will be routed (an upper bound on prediction). */
export class OraclePredictor implements ExpertPredictor {
  readonly name = 'oracle';
  private trace: RoutingTrace | undefined;

  begin(trace: RoutingTrace): void {
    this.trace = trace;
  }

  observe(): void {}

  predict(_from: RoutingPosition, target: RoutingPosition, count: number): number[] {
    return this.trace?.tokens[target.token]?.experts[target.layer]?.slice(0, count) ?? [];
  }

  predictScored(from: RoutingPosition, target: RoutingPosition, count: number): ScoredExpert[] {
    return this.predict(from, target, count).map((expert) => ({ expert, score: 1 }));
  }
}

/**
 * A pre-gate: given the state after layer `layer` of `token`, the experts that
 * layer + 1 will route to. An engine implements it by applying the next
 * layer's router to the current hidden state.
 */
export interface PreGate {
  predictNextLayer(token: number, layer: number, count: number): readonly number[] | undefined;
}

/** Pre-gate predictions recorded in a trace (`predicted[l]`: the guess for layer l). */
export class TracePreGate implements PreGate {
  constructor(private readonly trace: RoutingTrace) {
    if (!trace.tokens.some((t) => t.predicted?.some((p) => p))) {
      throw new TraceFormatError(`trace '${trace.name}' carries no pre-gating predictions (per-token "predicted" ids)`);
    }
  }

  predictNextLayer(token: number, layer: number, count: number): readonly number[] | undefined {
    return this.trace.tokens[token]?.predicted?.[layer + 1]?.slice(0, count) ?? undefined;
  }
}

/** Uses a pre-gate for the next layer of the same token and `fallback` (if any) beyond it. */
export class PreGatePredictor implements ExpertPredictor {
  readonly name = 'pregate';
  private gate: PreGate | undefined;

  constructor(private readonly makeGate: (trace: RoutingTrace) => PreGate, private readonly fallback?: ExpertPredictor) {}

  begin(trace: RoutingTrace): void {
    this.gate = this.makeGate(trace);
    this.fallback?.begin(trace);
  }

  observe(token: number, layer: number, experts: readonly number[]): void {
    this.fallback?.observe(token, layer, experts);
  }

  predict(from: RoutingPosition, target: RoutingPosition, count: number): number[] {
    if (target.token === from.token && target.layer === from.layer + 1) {
      const guess = this.gate?.predictNextLayer(from.token, from.layer, count);
      if (guess) return [...guess];
    }
    return this.fallback?.predict(from, target, count) ?? [];
  }

  /** The pre-gate's guesses score 1 (they are the next router itself); the fallback's keep theirs. */
  predictScored(from: RoutingPosition, target: RoutingPosition, count: number): ScoredExpert[] {
    if (target.token === from.token && target.layer === from.layer + 1) {
      const guess = this.gate?.predictNextLayer(from.token, from.layer, count);
      if (guess) return guess.map((expert) => ({ expert, score: 1 }));
    }
    return this.fallback ? scoredPredictions(this.fallback, from, target, count) : [];
  }
}

export const PREDICTOR_NAMES = ['affinity', 'popularity', 'oracle', 'pregate'] as const;
export type PredictorName = (typeof PREDICTOR_NAMES)[number];

export function isPredictorName(name: string): name is PredictorName {
  return (PREDICTOR_NAMES as readonly string[]).includes(name);
}

export interface PredictorOptions {
  /** Furthest target, in positions, the predictor is asked about. */
  lookahead: number;
  /** Earlier traces of the same model to learn priors from (affinity, popularity). */
  prior?: readonly RoutingTrace[];
}

export function createPredictor(name: PredictorName, shape: ModelShape, options: PredictorOptions): ExpertPredictor {
  switch (name) {
    case 'affinity': {
      const p = new AffinityPredictor(shape, options.lookahead);
      if (options.prior) p.learnFrom(options.prior);
      return p;
    }
    case 'popularity': {
      const p = new PopularityPredictor(shape);
      if (options.prior) p.learnFrom(options.prior);
      return p;
    }
    case 'oracle':
      return new OraclePredictor();
    case 'pregate':
      return new PreGatePredictor((trace) => new TracePreGate(trace), createPredictor('affinity', shape, options));
  }
}
