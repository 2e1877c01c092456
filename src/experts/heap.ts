/**
 * A binary min-heap of distinct integer keys whose order comes from a
 * comparator over outside state (scores, pins). When that state changes for a
 * key, `update(key)` restores the heap in O(log n); a position index makes
 * removal of any key O(log n) too. Cache policies keep their eviction order in
 * one of these.
 */

/** Negative when `a` comes before `b` (is nearer the top). */
export type KeyComparator = (a: number, b: number) => number;

export class KeyHeap {
  private readonly items: number[] = [];
  /** indexOf[key]: the key's place in items, or -1 / undefined when absent. Keys are small integers. */
  private readonly indexOf: number[] = [];

  constructor(private readonly compare: KeyComparator) {}

  get size(): number {
    return this.items.length;
  }

  has(key: number): boolean {
    return (this.indexOf[key] ?? -1) >= 0;
  }

  /** The first key in comparator order, or undefined when empty. */
  peek(): number | undefined {
    return this.items[0];
  }

  push(key: number): void {
    if (!Number.isInteger(key) || key < 0) throw new RangeError(`heap keys are non-negative integers, got ${key}`);
    if (this.has(key)) throw new Error(`key ${key} is already in the heap`);
    this.items.push(key);
    this.indexOf[key] = this.items.length - 1;
    this.siftUp(this.items.length - 1);
  }

  /** Removes `key`; returns false when it was not there. */
  remove(key: number): boolean {
    const i = this.indexOf[key] ?? -1;
    if (i < 0) return false;
    const last = this.items.pop()!;
    this.indexOf[key] = -1;
    if (i < this.items.length) {
      this.place(last, i);
      this.restore(i);
    }
    return true;
  }

  /** Re-positions `key` after its ordering state changed. */
  update(key: number): void {
    const i = this.indexOf[key] ?? -1;
    if (i >= 0) this.restore(i);
  }

  /** The keys, in heap order (not sorted). */
  keys(): number[] {
    return [...this.items];
  }

  private restore(i: number): void {
    if (i > 0 && this.compare(this.items[i], this.items[(i - 1) >> 1]) < 0) this.siftUp(i);
    else this.siftDown(i);
  }

  private siftUp(i: number): void {
    const key = this.items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.compare(key, this.items[parent]) >= 0) break;
      this.place(this.items[parent], i);
      i = parent;
    }
    this.place(key, i);
  }

  private siftDown(i: number): void {
    const key = this.items[i];
    const n = this.items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.compare(this.items[right], this.items[left]) < 0 ? right : left;
      if (this.compare(this.items[child], key) >= 0) break;
      this.place(this.items[child], i);
      i = child;
    }
    this.place(key, i);
  }

  private place(key: number, i: number): void {
    this.items[i] = key;
    this.indexOf[key] = i;
  }
}
