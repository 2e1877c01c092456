/**
 * Belady's MIN: the optimal replacement when the whole future access sequence
 * is known. On a miss with a full cache it evicts the resident key whose next
 * use lies furthest ahead (never used again counts as infinitely far). No
 * online policy can hit more often at the same capacity with demand loading,
 * which makes it the yardstick for policies and predictors.
 *
 * Every missing key is admitted (an expert must be in a slot to be computed
 * with). The next use of every access is precomputed in one backward pass;
 * resident keys sit in a max-heap on next use with lazy deletion: O(n log n).
 */

import type { ExpertKey } from '../policy';

export interface BeladyResult {
  accesses: number;
  hits: number;
  misses: number;
}

/** For each position i, the next position holding the same key, or Infinity. */
export function nextUseIndices(keys: ArrayLike<ExpertKey>): Float64Array {
  const next = new Float64Array(keys.length);
  const seenAt = new Map<ExpertKey, number>();
  for (let i = keys.length - 1; i >= 0; i--) {
    next[i] = seenAt.get(keys[i]) ?? Infinity;
    seenAt.set(keys[i], i);
  }
  return next;
}

/** A max-heap of (next use, key) entries; stale entries are skipped on pop. */
class NextUseHeap {
  private readonly when: number[] = [];
  private readonly keys: number[] = [];

  push(when: number, key: number): void {
    let i = this.when.length;
    this.when.push(when);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.when[parent] >= when) break;
      this.set(i, this.when[parent], this.keys[parent]);
      i = parent;
    }
    this.set(i, when, key);
  }

  pop(): [when: number, key: number] {
    const top: [number, number] = [this.when[0], this.keys[0]];
    const lastWhen = this.when.pop()!;
    const lastKey = this.keys.pop()!;
    const n = this.when.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const child = left + 1 < n && this.when[left + 1] > this.when[left] ? left + 1 : left;
        if (this.when[child] <= lastWhen) break;
        this.set(i, this.when[child], this.keys[child]);
        i = child;
      }
      this.set(i, lastWhen, lastKey);
    }
    return top;
  }

  private set(i: number, when: number, key: number): void {
    this.when[i] = when;
    this.keys[i] = key;
  }
}

/** Hits and misses of an optimal cache of `capacity` slots over `keys`, starting empty. */
export function beladyMin(keys: ArrayLike<ExpertKey>, capacity: number): BeladyResult {
  if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
  const next = nextUseIndices(keys);
  // resident key -> the next use its live heap entry carries
  const resident = new Map<ExpertKey, number>();
  const heap = new NextUseHeap();
  let hits = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (resident.has(key)) {
      hits++;
    } else {
      if (capacity === 0) continue;
      if (resident.size >= capacity) evictFurthest(heap, resident);
    }
    resident.set(key, next[i]);
    heap.push(next[i], key);
  }
  return { accesses: keys.length, hits, misses: keys.length - hits };
}

function evictFurthest(heap: NextUseHeap, resident: Map<ExpertKey, number>): void {
  for (;;) {
    const [when, key] = heap.pop();
    if (resident.get(key) === when) {
      resident.delete(key);
      return;
    }
  }
}
