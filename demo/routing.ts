/**
 * The tally of one request's routing stream (moe_routing on the chunks): how
 * often each (MoE layer, expert) fired, which experts are on the GPU, and
 * each layer's hits and misses; and the heatmap's shape from stats().
 */
import type { EngineStats, MoeRoutingDelta } from '../src/index';

export type EngineMemory = NonNullable<EngineStats['memory']>;

/** The heatmap's rows and columns. */
export interface RoutingShape {
  /** Model layer index of each row. */
  layers: number[];
  experts: number;
  /** Routed experts per token. */
  topK: number;
  /** Experts the GPU holds at once (Infinity when every expert is resident). */
  slots: number;
}

/** The shape of the loaded model from stats(), or undefined for a model without routed experts. */
export function shapeOf(memory: EngineMemory | null): RoutingShape | undefined {
  if (!memory || memory.total_experts === 0 || memory.moe_layers.length === 0) return undefined;
  const slots = memory.streaming ? memory.expert_slots : Infinity;
  return { layers: memory.moe_layers, experts: memory.experts_per_layer, topK: memory.experts_per_token, slots };
}

/**
 * Counts of one request's routing. Hits and misses per layer are estimated
 * by replaying the accesses through a model of the expert cache (LRU, the
 * engine's default policy, over the shape's `slots`), resynchronised with the
 * residency each delta reports: exact when every delta holds one token and
 * nothing is prefetched, close otherwise (deltas coalesce when the page
 * reads slower than tokens come; prefetches are seen only through the next
 * residency). The engine's own totals arrive with the usage.
 */
export class RoutingTally {
  /** [row * experts + expert]: times routed in this request. */
  readonly counts: Uint32Array;
  readonly hits: number[];
  readonly misses: number[];
  /** Per row, resident expert ids (undefined: not known yet). */
  resident: (Set<number> | undefined)[];
  tokens = 0;
  activations = 0;
  private deltas = 0;
  /** The modelled cache: keys (row * experts + expert), least recently used first. */
  private lru = new Map<number, true>();

  constructor(readonly shape: RoutingShape, resident: number[][] | undefined) {
    const rows = shape.layers.length;
    this.counts = new Uint32Array(rows * shape.experts);
    this.hits = new Array<number>(rows).fill(0);
    this.misses = new Array<number>(rows).fill(0);
    this.resident = Array.from({ length: rows }, (_, l) => (resident?.[l] ? new Set(resident[l]) : undefined));
  }

  /**
   * Adds a delta. The first one holds the prompt, which the engine runs as
   * one batch, layer by layer (a repeat within the batch is a hit); later
   * tokens run one at a time, every layer in turn.
   */
  add(delta: MoeRoutingDelta): void {
    const { experts } = this.shape;
    const rows = this.shape.layers.length;
    this.resync();
    const routed = (l: number, ids: readonly number[], seen: Set<number>) => {
      for (const e of ids) {
        if (l >= rows || e < 0 || e >= experts) continue;
        const key = l * experts + e;
        this.counts[key]!++;
        this.activations++;
        const hit = seen.has(key) || this.access(key, seen);
        seen.add(key);
        if (hit) this.hits[l]!++;
        else this.misses[l]!++;
      }
    };
    if (this.deltas++ === 0) {
      for (let l = 0; l < rows; l++) {
        const seen = new Set<number>();
        for (const token of delta.tokens) routed(l, token.experts[l] ?? [], seen);
      }
    } else {
      for (const token of delta.tokens) token.experts.forEach((ids, l) => routed(l, ids, new Set<number>()));
    }
    this.tokens += delta.tokens.length;
    this.setResident(delta.resident);
  }

  /** Replaces residency (from a delta or stats()). */
  setResident(resident: number[][]): void {
    resident.forEach((ids, l) => {
      if (l < this.resident.length) this.resident[l] = new Set(ids);
    });
  }

  /** Whether `key` is in the modelled cache (and now most recent); a miss loads it, evicting the oldest not in use. */
  private access(key: number, inUse: ReadonlySet<number>): boolean {
    const { slots } = this.shape;
    if (!Number.isFinite(slots)) return true;
    const hit = this.lru.delete(key);
    this.lru.set(key, true);
    for (const old of this.lru.keys()) {
      if (this.lru.size <= slots) break;
      if (!inUse.has(old) && old !== key) this.lru.delete(old);
    }
    return hit;
  }

  /** The modelled cache made to hold what was last reported resident: keys it lacked come in as the oldest. */
  private resync(): void {
    const { experts } = this.shape;
    const known = new Set<number>();
    this.resident.forEach((ids, l) => ids?.forEach((e) => known.add(l * experts + e)));
    const next = new Map<number, true>();
    for (const key of known) if (!this.lru.has(key)) next.set(key, true);
    for (const key of this.lru.keys()) {
      // Rows with unknown residency keep their modelled keys.
      if (known.has(key) || this.resident[Math.floor(key / experts)] === undefined) next.set(key, true);
    }
    this.lru = next;
  }

  hitRate(row: number): number | undefined {
    const total = this.hits[row]! + this.misses[row]!;
    return total === 0 ? undefined : this.hits[row]! / total;
  }

  get totalHits(): number {
    return this.hits.reduce((a, b) => a + b, 0);
  }

  get totalMisses(): number {
    return this.misses.reduce((a, b) => a + b, 0);
  }

  /** Resident experts over all rows, or undefined when not known. */
  get residentCount(): number | undefined {
    if (this.resident.every((r) => r === undefined)) return undefined;
    return this.resident.reduce((sum, r) => sum + (r?.size ?? 0), 0);
  }

  /** The `n` most used (row, expert) pairs, most used first. */
  top(n: number): { row: number; expert: number; count: number }[] {
    const best: { row: number; expert: number; count: number }[] = [];
    this.counts.forEach((count, i) => {
      if (count > 0) best.push({ row: Math.floor(i / this.shape.experts), expert: i % this.shape.experts, count });
    });
    return best.sort((a, b) => b.count - a.count).slice(0, n);
  }
}
