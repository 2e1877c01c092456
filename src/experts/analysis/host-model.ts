/**
 * The host tier in replay: the records host memory holds, as keys, under the
 * same least-recently-used rule as src/experts/host-tier.ts (a GPU eviction
 * counts as a use), fed by the GPU cache's loads (each one a host hit or a
 * store read) and by warming. The simulator drives it; it moves no bytes.
 */

import type { ExpertKey } from '../policy';

export interface HostModelCounts {
  /** GPU loads the host held. */
  hostHits: number;
  /** Records read from the store: GPU loads the host did not hold, and warms. */
  storeReads: number;
  /** Store reads made by warming (counted in storeReads). */
  hostWarmReads: number;
}

export class HostModel {
  readonly counts: HostModelCounts = { hostHits: 0, storeReads: 0, hostWarmReads: 0 };
  /** Held keys, least recently used first. */
  private readonly held = new Set<ExpertKey>();

  /** `capacity`: records held at most (0: none; every load is a store read). */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`host capacity must be an integer >= 0, got ${capacity}`);
  }

  /** A GPU load of `key`: from host memory when held, else from the store (and then held). */
  load(key: ExpertKey): void {
    if (this.held.has(key)) {
      this.counts.hostHits++;
      this.touch(key);
      return;
    }
    this.counts.storeReads++;
    this.admit(key);
  }

  /** A guess read into host memory ahead of need (a held one becomes the most recent). */
  warm(key: ExpertKey): void {
    if (this.capacity === 0) return;
    if (this.held.has(key)) {
      this.touch(key);
      return;
    }
    this.counts.storeReads++;
    this.counts.hostWarmReads++;
    this.admit(key);
  }

  /** The GPU cache evicted `key`: a held record becomes the most recent (as HostTier.gpuEvicted). */
  gpuEvicted(key: ExpertKey): void {
    if (this.held.has(key)) this.touch(key);
  }

  has(key: ExpertKey): boolean {
    return this.held.has(key);
  }

  private touch(key: ExpertKey): void {
    this.held.delete(key);
    this.held.add(key);
  }

  private admit(key: ExpertKey): void {
    if (this.capacity === 0) return;
    while (this.held.size >= this.capacity) this.held.delete(this.held.values().next().value!);
    this.held.add(key);
  }
}
