/**
 * The host tier: expert records kept in the worker's (or Node process's)
 * memory under a byte budget, between the weight store and the GPU expert
 * cache. It is an ExpertSource wrapping the store's, so a GPU miss is served
 * from here when the record is held, and from the store otherwise.
 *
 * - Replacement is least recently used: a read or a warm of a held record
 *   makes it the most recent, and so does its eviction from GPU slots
 *   (`gpuEvicted`): an expert the GPU just dropped was in use until lately
 *   and is likelier to come back than one host memory has not served for
 *   long (on the shared traces at 25% GPU and 50% host, 2-3% fewer store
 *   reads than plain LRU); room is made from the least recent end before
 *   a new record is admitted, so held bytes never exceed the budget; a record
 *   larger than the whole budget is passed through and not held.
 * - Reads of one record in flight at once are shared (a demand read joins a
 *   warm read already started, and vice versa).
 * - `warm(layer, expert)` reads a record into host memory ahead of need
 *   without touching GPU slots, at most `warmConcurrency` at once, from a
 *   queue of at most `warmQueueLimit` (the oldest guesses are dropped first:
 *   they are the least likely to still matter).
 *
 * Holding records in the JS heap is what the design's middle tier asks for:
 * IndexedDB random reads run at about 175 MB/s, a copy from memory at GB/s.
 */

import type { ExpertTensors } from '../kernels/expert-slots';
import type { ExpertSource } from './expert-source';

export interface HostTierOptions {
  /** Bytes of expert records held at most (0: nothing is held; reads go to the store). */
  budgetBytes: number;
  /** Warm reads in flight at once (default 2), so guesses leave the store's bandwidth to demand reads. */
  warmConcurrency?: number;
  /** Warm reads waiting at most (default 64). */
  warmQueueLimit?: number;
  /** Told the bytes of every record read from the store (demand and warm), e.g. the device's cost counter. */
  onStoreRead?: (bytes: number) => void;
}

/** What the host tier did since the last reset. */
export interface HostTierStats {
  /** Bytes it may hold, and holds now (records, and their count). */
  budgetBytes: number;
  heldBytes: number;
  heldRecords: number;
  /** Reads served from host memory: a held record, or a read of it already in flight. */
  hits: number;
  /** Reads that went to the store (demand misses). */
  misses: number;
  /** Records read from the store, demand and warm, and their bytes. */
  storeReads: number;
  storeBytes: number;
  /** Store reads started by `warm`, and how many of those records a read then found. */
  warmReads: number;
  warmUsed: number;
  /** Records dropped to make room. */
  evictions: number;
}

interface HeldRecord {
  tensors: ExpertTensors;
  bytes: number;
  /** Read by `warm` and not yet asked for. */
  warmed: boolean;
}

export class HostTier implements ExpertSource {
  readonly name: string;
  readonly budgetBytes: number;
  private readonly warmConcurrency: number;
  private readonly warmQueueLimit: number;
  /** Held records, least recently used first (a Map keeps insertion order). */
  private readonly held = new Map<number, HeldRecord>();
  private readonly inFlight = new Map<number, { promise: Promise<ExpertTensors>; warm: boolean }>();
  /** Warm requests not started, oldest first. */
  private readonly warmQueue = new Map<number, { layer: number; expert: number }>();
  private warmRunning = 0;
  private heldBytes = 0;
  /** Bumped by clear(): a read that started before it is not held when it lands. */
  private generation = 0;
  private counts = zeroCounts();

  constructor(
    private readonly store: ExpertSource,
    private readonly options: HostTierOptions,
  ) {
    const { budgetBytes } = options;
    if (!(Number.isFinite(budgetBytes) && budgetBytes >= 0)) throw new RangeError(`host budget must be a number of bytes >= 0, got ${budgetBytes}`);
    this.warmConcurrency = options.warmConcurrency ?? 2;
    this.warmQueueLimit = options.warmQueueLimit ?? 64;
    if (!Number.isInteger(this.warmConcurrency) || this.warmConcurrency < 1) throw new RangeError(`warm concurrency must be an integer >= 1, got ${this.warmConcurrency}`);
    if (!Number.isInteger(this.warmQueueLimit) || this.warmQueueLimit < 0) throw new RangeError(`warm queue limit must be an integer >= 0, got ${this.warmQueueLimit}`);
    this.budgetBytes = budgetBytes;
    this.name = `host(${store.name})`;
  }

  /** Whether the record of (layer, expert) is held in host memory now. */
  has(layer: number, expert: number): boolean {
    return this.held.has(recordKey(layer, expert));
  }

  readExpert(layer: number, expert: number): Promise<ExpertTensors> {
    const key = recordKey(layer, expert);
    const record = this.held.get(key);
    if (record) {
      this.touch(key, record);
      this.counts.hits++;
      if (record.warmed) {
        record.warmed = false;
        this.counts.warmUsed++;
      }
      return Promise.resolve(record.tensors);
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.counts.hits++;
      if (pending.warm) {
        pending.warm = false;
        this.counts.warmUsed++;
        // A failed warm read must not fail the request that now waits on it: that one tries the store itself.
        return pending.promise.catch(() => this.readStore(key, layer, expert, false));
      }
      return pending.promise;
    }
    this.warmQueue.delete(key);
    this.counts.misses++;
    return this.readStore(key, layer, expert, false);
  }

  /** The GPU cache evicted (layer, expert): a held record becomes the most recent. */
  gpuEvicted(layer: number, expert: number): void {
    const key = recordKey(layer, expert);
    const record = this.held.get(key);
    if (record) this.touch(key, record);
  }

  /** Reads (layer, expert) into host memory ahead of need; a held record only becomes the most recent. */
  warm(layer: number, expert: number): void {
    if (this.budgetBytes === 0 || this.warmQueueLimit === 0) return;
    const key = recordKey(layer, expert);
    const record = this.held.get(key);
    if (record) {
      this.touch(key, record);
      return;
    }
    if (this.inFlight.has(key)) return;
    this.warmQueue.delete(key); // asked again: it moves to the young end
    this.warmQueue.set(key, { layer, expert });
    while (this.warmQueue.size > this.warmQueueLimit) this.warmQueue.delete(this.warmQueue.keys().next().value!);
    this.pumpWarm();
  }

  /** Waits for every read in flight and queued warm. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0 || this.warmQueue.size > 0) {
      await Promise.allSettled([...this.inFlight.values()].map((r) => r.promise));
      if (this.inFlight.size === 0) this.pumpWarm();
    }
  }

  stats(): HostTierStats {
    return { budgetBytes: this.budgetBytes, heldBytes: this.heldBytes, heldRecords: this.held.size, ...this.counts };
  }

  resetStats(): void {
    this.counts = zeroCounts();
  }

  /** Drops every held record and queued warm (reads in flight finish, and are not held). */
  clear(): void {
    this.generation++;
    this.held.clear();
    this.warmQueue.clear();
    this.heldBytes = 0;
  }

  private touch(key: number, record: HeldRecord): void {
    this.held.delete(key);
    this.held.set(key, record);
  }

  private readStore(key: number, layer: number, expert: number, warm: boolean): Promise<ExpertTensors> {
    const generation = this.generation;
    const promise = this.store.readExpert(layer, expert).then((tensors) => {
      const bytes = expertTensorBytes(tensors);
      this.counts.storeReads++;
      this.counts.storeBytes += bytes;
      this.options.onStoreRead?.(bytes);
      const entry = this.inFlight.get(key);
      if (generation === this.generation) this.admit(key, tensors, bytes, entry?.warm ?? false);
      return tensors;
    });
    const entry = { promise, warm };
    this.inFlight.set(key, entry);
    // Removed once settled, whichever way (a failed read is tried afresh next time).
    promise.then(
      () => this.inFlight.delete(key),
      () => this.inFlight.delete(key),
    );
    return promise;
  }

  private admit(key: number, tensors: ExpertTensors, bytes: number, warmed: boolean): void {
    if (bytes > this.budgetBytes || this.held.has(key)) return;
    while (this.heldBytes + bytes > this.budgetBytes) {
      const [oldest, record] = this.held.entries().next().value!;
      this.held.delete(oldest);
      this.heldBytes -= record.bytes;
      this.counts.evictions++;
    }
    this.held.set(key, { tensors, bytes, warmed });
    this.heldBytes += bytes;
  }

  private pumpWarm(): void {
    while (this.warmRunning < this.warmConcurrency && this.warmQueue.size > 0) {
      // The youngest guess first: the oldest are the likeliest to be stale.
      const key = [...this.warmQueue.keys()].pop()!;
      const { layer, expert } = this.warmQueue.get(key)!;
      this.warmQueue.delete(key);
      if (this.held.has(key) || this.inFlight.has(key)) continue;
      this.counts.warmReads++;
      this.warmRunning++;
      this.readStore(key, layer, expert, true)
        .catch(() => undefined) // a failed warm costs nothing: a demand read tries the store again
        .finally(() => {
          this.warmRunning--;
          this.pumpWarm();
        });
    }
  }
}

/** Bytes an expert's tensors take (what a slot upload and the host tier count). */
export function expertTensorBytes(t: ExpertTensors): number {
  return t.gate.byteLength + t.up.byteLength + t.down.byteLength + (t.gateBias?.byteLength ?? 0) + (t.upBias?.byteLength ?? 0) + (t.downBias?.byteLength ?? 0);
}

function recordKey(layer: number, expert: number): number {
  if (!Number.isInteger(layer) || layer < 0 || !Number.isInteger(expert) || expert < 0 || expert >= 1 << 16) {
    throw new RangeError(`no expert record (layer ${layer}, expert ${expert})`);
  }
  return layer * (1 << 16) + expert;
}

function zeroCounts(): Omit<HostTierStats, 'budgetBytes' | 'heldBytes' | 'heldRecords'> {
  return { hits: 0, misses: 0, storeReads: 0, storeBytes: 0, warmReads: 0, warmUsed: 0, evictions: 0 };
}

/**
 * The host budget when the caller sets none: a quarter of the device's
 * memory (`navigator.deviceMemory` in browsers, which reports GB rounded down
 * and capped at 8; `os.totalmem()` in Node), at most the experts' bytes.
 * 0 where the device's memory is unknown.
 */
export function defaultHostBudgetBytes(expertBytes: number, deviceMemoryBytes = deviceMemory()): number {
  return Math.max(0, Math.min(Math.floor(deviceMemoryBytes / 4), expertBytes));
}

/** The device's memory in bytes, or 0 where it cannot be known. */
export function deviceMemory(): number {
  const browser = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  if (typeof browser === 'number' && browser > 0) return browser * 2 ** 30;
  // getBuiltinModule (Node >= 20.16) reads node:os without an import a browser bundle would have to resolve.
  const node = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = node?.getBuiltinModule?.('node:os') as { totalmem(): number } | undefined;
  return os ? os.totalmem() : 0;
}
