/**
 * The expert cache policy: which (layer, expert) weights stay in the GPU's
 * expert slots. Every expert of a model has the same size, so the capacity is
 * a number of slots. A policy only decides; the GPU cache (and the trace
 * simulator) move the bytes: on a miss the evicted key's slot receives the
 * new expert.
 *
 * Policies here keep their eviction order in a heap over (pinned, score, last
 * use, key), so every choice is deterministic: equal scores go to the least
 * recently used, and then to the smaller key. Pinned keys are never victims.
 */

import { KeyHeap } from './heap';

/** A (layer, expert) pair as one number: layer * nExperts + expert. */
export type ExpertKey = number;

export function expertKey(layer: number, expert: number, nExperts: number): ExpertKey {
  return layer * nExperts + expert;
}

export function keyLayer(key: ExpertKey, nExperts: number): number {
  return Math.floor(key / nExperts);
}

export function keyExpert(key: ExpertKey, nExperts: number): number {
  return key % nExperts;
}

/** What one access or prefetch did to the cache. */
export interface AccessResult {
  /** The key was resident before the call. */
  hit: boolean;
  /** The key is resident after the call (false only when every slot is pinned, or capacity is 0). */
  admitted: boolean;
  /** The key whose slot was taken, if any. */
  evicted: ExpertKey | undefined;
}

export interface ExpertCachePolicy {
  readonly name: string;
  /** Number of expert slots. */
  readonly capacity: number;
  /** Number of resident keys. */
  readonly size: number;
  /** Demand accesses that found their key resident / not resident. */
  readonly hits: number;
  readonly misses: number;
  has(key: ExpertKey): boolean;
  /** A demand use: counts a hit or a miss; a missing key is admitted, evicting the victim if full. */
  access(key: ExpertKey): AccessResult;
  /**
   * A speculative load: admits (or refreshes) the key like a use but counts neither hit nor miss.
   * `confidence` is the predictor's probability that the key is used; a policy may refuse a
   * guess it rates below the key it would evict (admitted false; next-use does).
   */
  prefetch(key: ExpertKey, confidence?: number): AccessResult;
  /** The key the next admission would evict, or undefined when the cache has room or all is pinned. */
  victim(): ExpertKey | undefined;
  /** Keeps keys resident until unpinned (admitting those missing); pins nest. Returns the keys evicted. */
  pin(keys: Iterable<ExpertKey>): ExpertKey[];
  unpin(keys: Iterable<ExpertKey>): void;
  isPinned(key: ExpertKey): boolean;
  residentKeys(): ExpertKey[];
}

/**
 * Shared machinery: residency, pins, hit and miss counts and the heap.
 * A subclass says how a use changes a key's score (lower is evicted first).
 * Per-key state lives in arrays indexed by key (keys are small integers).
 */
export abstract class ScoredPolicy implements ExpertCachePolicy {
  abstract readonly name: string;
  hits = 0;
  misses = 0;
  /** Demand accesses so far: the clock of decaying scores. */
  protected demandClock = 0;
  /** Every use (demand or prefetch) gets the next number: recency for tie-breaks. */
  private useSeq = 0;
  /** score[key] of resident keys (unset reads as 0). */
  protected readonly score: number[] = [];
  private readonly lastUse: number[] = [];
  private readonly pins: number[] = [];
  private readonly heap = new KeyHeap((a, b) => this.compareKeys(a, b));

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
  }

  /** Sets the score of `key` for this use; `isNew` when it was just admitted. */
  protected abstract onUse(key: ExpertKey, demand: boolean, isNew: boolean): void;

  get size(): number {
    return this.heap.size;
  }

  has(key: ExpertKey): boolean {
    return this.heap.has(key);
  }

  access(key: ExpertKey): AccessResult {
    this.demandClock++;
    const result = this.use(key, true);
    if (result.hit) this.hits++;
    else this.misses++;
    return result;
  }

  prefetch(key: ExpertKey, _confidence?: number): AccessResult {
    return this.use(key, false);
  }

  victim(): ExpertKey | undefined {
    if (this.heap.size < this.capacity) return undefined;
    const top = this.heap.peek();
    return top === undefined || this.isPinned(top) ? undefined : top;
  }

  pin(keys: Iterable<ExpertKey>): ExpertKey[] {
    const evicted: ExpertKey[] = [];
    for (const key of keys) {
      if (!this.has(key)) {
        const r = this.use(key, false);
        if (!r.admitted) throw new Error(`cannot pin key ${key}: all ${this.capacity} slots are pinned`);
        if (r.evicted !== undefined) evicted.push(r.evicted);
      }
      this.pins[key] = (this.pins[key] ?? 0) + 1;
      this.heap.update(key);
    }
    return evicted;
  }

  unpin(keys: Iterable<ExpertKey>): void {
    for (const key of keys) {
      const count = this.pins[key] ?? 0;
      if (count === 0) continue;
      this.pins[key] = count - 1;
      if (count === 1) this.heap.update(key);
    }
  }

  isPinned(key: ExpertKey): boolean {
    return (this.pins[key] ?? 0) > 0;
  }

  residentKeys(): ExpertKey[] {
    return this.heap.keys().sort((a, b) => a - b);
  }

  private use(key: ExpertKey, demand: boolean): AccessResult {
    if (this.heap.has(key)) {
      this.lastUse[key] = ++this.useSeq;
      this.onUse(key, demand, false);
      this.heap.update(key);
      return { hit: true, admitted: true, evicted: undefined };
    }
    let evicted: ExpertKey | undefined;
    if (this.heap.size >= this.capacity) {
      evicted = this.victim();
      if (evicted === undefined) return { hit: false, admitted: false, evicted: undefined };
      this.heap.remove(evicted);
      this.score[evicted] = 0;
    }
    this.lastUse[key] = ++this.useSeq;
    this.onUse(key, demand, true);
    this.heap.push(key);
    return { hit: false, admitted: true, evicted };
  }

  private compareKeys(a: ExpertKey, b: ExpertKey): number {
    const pinnedA = (this.pins[a] ?? 0) > 0;
    if (pinnedA !== (this.pins[b] ?? 0) > 0) return pinnedA ? 1 : -1;
    const scoreA = this.score[a] ?? 0;
    const scoreB = this.score[b] ?? 0;
    // Compared, not subtracted: scores may be -Infinity.
    if (scoreA !== scoreB) return scoreA < scoreB ? -1 : 1;
    return this.lastUse[a] - this.lastUse[b] || a - b;
  }
}
