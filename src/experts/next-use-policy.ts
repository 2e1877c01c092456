/**
 * 'next-use': evicts the expert whose next use is expected furthest away, an
 * online estimate of what Belady's optimum evicts (analysis/belady.ts).
 *
 * MoE layers run in a fixed cycle, so an expert of layer l can next be used
 * only when layer l comes round again: `ahead` positions from now (1 for the
 * next layer, nLayers for the layer just run). If the layer routes it with
 * probability p per token, it is used on average after
 *
 *     ahead + nLayers * (1 - p) / p
 *
 * positions. LRU and LFU see neither term: they keep the layer just run (its
 * experts were used last) and evict the next layer's experts just before they
 * are needed, the cycle pathology of a global LRU. p is the expert's share of
 * its layer's recent routing (uses decayed by half every `halfLifeAccesses`
 * demand accesses, kept across evictions), raised for the coming visit of its
 * layer by a prefetch's confidence.
 *
 * A prefetch is admitted only when its guess is expected to be used sooner
 * than the expert it would evict: a low-confidence guess never pushes out an
 * expert the policy rates as more likely needed. Victims are found by a scan
 * of the resident keys (a few hundred to a few thousand), done once per load.
 */

import type { AccessResult, ExpertCachePolicy, ExpertKey } from './policy';
import { log2AddExp } from './policies';

export interface NextUseOptions {
  /** Positions in one cycle (the model's layers; keys are layer * nExperts + expert). */
  nLayers: number;
  nExperts: number;
  /** Experts routed per token at a layer (turns a use count into a per-token probability). */
  topK: number;
  /** Demand accesses after which a use weighs half. */
  halfLifeAccesses: number;
}

const FLOOR = 1e-3;

export class NextUsePolicy implements ExpertCachePolicy {
  readonly name = 'next-use';
  hits = 0;
  misses = 0;
  private readonly resident = new Set<ExpertKey>();
  private readonly pins: number[] = [];
  private readonly lastUse: number[] = [];
  /** log2 of each key's decayed use count scaled to time zero, kept across evictions. */
  private readonly logUses: number[] = [];
  /** log2 of each layer's decayed access count, same scale. */
  private readonly logLayer: number[];
  /** A prefetch's confidence for its layer's coming visit, and which visit (it lapses after it). */
  private readonly boost: number[] = [];
  private readonly boostVisit: number[] = [];
  /** visits[l]: how many times demand has entered layer l. */
  private readonly visits: number[];
  private current = -1;
  private clock = 0;
  private seq = 0;

  constructor(readonly capacity: number, private readonly options: NextUseOptions) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
    if (!(options.halfLifeAccesses > 0)) throw new RangeError(`halfLifeAccesses must be positive, got ${options.halfLifeAccesses}`);
    this.logLayer = new Array<number>(options.nLayers).fill(-Infinity);
    this.visits = new Array<number>(options.nLayers).fill(0);
  }

  get size(): number {
    return this.resident.size;
  }

  has(key: ExpertKey): boolean {
    return this.resident.has(key);
  }

  access(key: ExpertKey): AccessResult {
    const layer = this.layerOf(key);
    if (layer !== this.current) {
      this.current = layer;
      this.visits[layer]++;
    }
    this.clock++;
    const now = this.clock / this.options.halfLifeAccesses;
    this.logUses[key] = log2AddExp(this.logUses[key] ?? -Infinity, now);
    this.logLayer[layer] = log2AddExp(this.logLayer[layer], now);
    const result = this.admit(key);
    if (result.hit) this.hits++;
    else this.misses++;
    return result;
  }

  /**
   * `confidence`: the predictor's probability that the key's layer routes it on its coming visit
   * (default 1: sure). Refused when the victim's next use is expected no later than the guess's.
   */
  prefetch(key: ExpertKey, confidence = 1): AccessResult {
    const layer = this.layerOf(key);
    const visit = this.visits[layer] + (layer === this.current ? 0 : 1);
    if (this.boostVisit[key] !== visit || (this.boost[key] ?? 0) < confidence) {
      this.boost[key] = confidence;
      this.boostVisit[key] = visit;
    }
    if (!this.resident.has(key) && this.resident.size >= this.capacity) {
      const victim = this.victim();
      if (victim === undefined || this.expectedNextUse(victim) <= this.expectedNextUse(key)) return { hit: false, admitted: false, evicted: undefined };
    }
    return this.admit(key);
  }

  victim(): ExpertKey | undefined {
    if (this.resident.size < this.capacity) return undefined;
    let best: ExpertKey | undefined;
    let bestFar = -Infinity;
    for (const key of this.resident) {
      if (this.isPinned(key)) continue;
      const far = this.expectedNextUse(key);
      if (best === undefined || far > bestFar || (far === bestFar && (this.lastUse[key] < this.lastUse[best] || (this.lastUse[key] === this.lastUse[best] && key < best)))) {
        best = key;
        bestFar = far;
      }
    }
    return best;
  }

  pin(keys: Iterable<ExpertKey>): ExpertKey[] {
    const evicted: ExpertKey[] = [];
    for (const key of keys) {
      if (!this.has(key)) {
        const r = this.admit(key);
        if (!r.admitted) throw new Error(`cannot pin key ${key}: all ${this.capacity} slots are pinned`);
        if (r.evicted !== undefined) evicted.push(r.evicted);
      }
      this.pins[key] = (this.pins[key] ?? 0) + 1;
    }
    return evicted;
  }

  unpin(keys: Iterable<ExpertKey>): void {
    for (const key of keys) if ((this.pins[key] ?? 0) > 0) this.pins[key]--;
  }

  isPinned(key: ExpertKey): boolean {
    return (this.pins[key] ?? 0) > 0;
  }

  residentKeys(): ExpertKey[] {
    return [...this.resident].sort((a, b) => a - b);
  }

  /** Positions until the key's expected next use (larger: evicted first). */
  expectedNextUse(key: ExpertKey): number {
    const { nLayers } = this.options;
    const layer = this.layerOf(key);
    const ahead = this.current < 0 ? layer + 1 : ((layer - this.current + nLayers - 1) % nLayers) + 1;
    const p = Math.max(FLOOR, Math.min(1, Math.max(this.frequency(key), this.boostLive(key) ? this.boost[key]! : 0)));
    return ahead + (nLayers * (1 - p)) / p;
  }

  /** The key's share of its layer's recent routing: a per-token probability. */
  private frequency(key: ExpertKey): number {
    const uses = this.logUses[key];
    if (uses === undefined) return 0;
    return this.options.topK * 2 ** (uses - this.logLayer[this.layerOf(key)]);
  }

  private boostLive(key: ExpertKey): boolean {
    const visit = this.boostVisit[key];
    if (visit === undefined) return false;
    const layer = this.layerOf(key);
    return this.visits[layer] < visit || (this.visits[layer] === visit && this.current === layer);
  }

  private admit(key: ExpertKey): AccessResult {
    if (this.resident.has(key)) {
      this.lastUse[key] = ++this.seq;
      return { hit: true, admitted: true, evicted: undefined };
    }
    let evicted: ExpertKey | undefined;
    if (this.resident.size >= this.capacity) {
      evicted = this.victim();
      if (evicted === undefined) return { hit: false, admitted: false, evicted: undefined };
      this.resident.delete(evicted);
    }
    this.resident.add(key);
    this.lastUse[key] = ++this.seq;
    return { hit: false, admitted: true, evicted };
  }

  private layerOf(key: ExpertKey): number {
    return Math.floor(key / this.options.nExperts);
  }
}
