/**
 * The GPU expert cache: routed experts of every MoE layer share `capacity`
 * fixed-size slots (src/kernels/expert-slots.ts) in a few slab buffers, under
 * a byte budget. A replacement policy (src/experts/policy.ts, the same
 * objects the trace simulator replays) decides who stays; this class moves
 * the bytes:
 *
 * - `ensure(layer, experts)`: the experts one layer is about to use are made
 *   resident and pinned until `release()`. A miss reads the expert from the
 *   ExpertSource, writes it into a free or evicted slot (queue.writeBuffer)
 *   and points the expert's entry of the slot table at it.
 * - `prefetch(layer, experts)`: the same loads started early on a prediction,
 *   without waiting; a demand miss overtakes queued prefetches.
 * - the slot table, [layers, nExperts] slot refs, is what the expert FFN
 *   kernel reads with the router's ids ('expert-table' mode); an entry not
 *   resident holds NO_SLAB. Neither pipelines nor bind groups ever change.
 *
 * Every write goes through the device queue, so it is ordered after the
 * submissions made before it: a slot evicted right after a layer's FFN was
 * submitted is overwritten only once that FFN has read it.
 */

import { costCounterOf, writeBufferCounted } from '../gpu/cost-counter';
import { NO_SLAB, packExpertSlot, slotsPerSlab } from '../kernels/expert-slots';
import type { ExpertSlotLayout } from '../kernels/expert-slots';
import { emptyLayerStats, summarizeStats } from './cache-stats';
import type { ExpertCacheStats, ExpertLayerStats } from './cache-stats';
import type { ExpertSource } from './expert-source';
import { expertTensorBytes } from './host-tier';
import { LoadQueue } from './load-queue';
import { SlabPool } from './slab-pool';
import { expertKey, keyExpert, keyLayer } from './policy';
import type { ExpertCachePolicy, ExpertKey } from './policy';

export interface ExpertCacheOptions {
  /** Slot layout of every expert this cache holds (the layers of one layout; a model with several has a cache per layout). */
  layout: ExpertSlotLayout;
  nLayers: number;
  nExperts: number;
  /** Slots (experts resident at once). */
  capacity: number;
  policy: ExpertCachePolicy;
  source: ExpertSource;
  /** Largest slab buffer. */
  slabLimitBytes: number;
  /** Most slabs the expert FFN can bind (every slab is bound in every layer). */
  maxSlabBindings: number;
  /** Expert reads in flight at once (default 4). */
  loadConcurrency?: number;
  /**
   * A slot table shared with caches of other layouts (each writes only its
   * own layers' entries; the owner fills it with NO_SLAB and destroys it).
   * Default: the cache makes its own.
   */
  table?: GPUBuffer;
  /**
   * Whether every load counts as store bytes on the device's cost counter
   * (default true). False when `source` is a host tier, which counts only
   * the reads that reach the store.
   */
  countStoreBytes?: boolean;
  /** Told of every eviction (the host tier keeps what the GPU just dropped longer). */
  onEvicted?: (layer: number, expert: number) => void;
}

export class ExpertBudgetError extends Error {
  override readonly name = 'ExpertBudgetError';
  constructor(
    message: string,
    /** The smallest expert budget that works, in bytes. */
    readonly minimumBytes: number,
    /** The largest this device can hold, in bytes. */
    readonly maximumBytes: number,
  ) {
    super(message);
  }
}

export class ExpertCache {
  /** [nLayers * nExperts] slot refs, 2 words each ({slab, offsetBytes} or {NO_SLAB, 0}). */
  readonly table: GPUBuffer;
  private readonly pool: SlabPool;
  private readonly freeSlots: number[] = [];
  private readonly slotOf = new Map<ExpertKey, number>();
  /** Keys whose slot holds their bytes (resident per the policy and loaded). */
  private readonly loaded = new Set<ExpertKey>();
  /** Loads in flight or queued, by key. */
  private readonly loading = new Map<ExpertKey, { promise: Promise<void>; prefetch: boolean }>();
  /** Prefetched keys not yet used by a demand access. */
  private readonly unusedPrefetches = new Set<ExpertKey>();
  private readonly queue: LoadQueue;
  private held: ExpertKey[] = [];
  private layerStats: ExpertLayerStats[];
  private evictions = 0;
  private pinnedByUser = 0;
  private prefetchPins = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly options: ExpertCacheOptions,
  ) {
    const { layout, capacity, nLayers, nExperts } = options;
    if (options.policy.capacity !== capacity) throw new RangeError(`the policy has ${options.policy.capacity} slots, the cache ${capacity}`);
    const perSlab = slotsPerSlab(layout, options.slabLimitBytes);
    const maxSlots = perSlab * options.maxSlabBindings;
    if (capacity > maxSlots) {
      throw new ExpertBudgetError(
        `an expert cache of ${capacity} slots (${capacity * layout.slotBytes} bytes) exceeds the ${options.maxSlabBindings} slabs of ` +
          `${options.slabLimitBytes} bytes one dispatch can bind; at most ${maxSlots * layout.slotBytes} bytes`,
        layout.slotBytes,
        maxSlots * layout.slotBytes,
      );
    }
    this.pool = new SlabPool(device, layout, capacity, options.slabLimitBytes, 'expert cache slab');
    for (let slot = capacity - 1; slot >= 0; slot--) this.freeSlots.push(slot);
    this.table = options.table ?? createSlotTable(device, nLayers, nExperts);
    this.queue = new LoadQueue(options.loadConcurrency ?? 4);
    this.layerStats = Array.from({ length: nLayers }, emptyLayerStats);
  }

  /** The slabs, every one bound in every layer's FFN. */
  get slabs(): GPUBuffer[] {
    return this.pool.slabs;
  }

  get capacity(): number {
    return this.options.capacity;
  }

  get slotBytes(): number {
    return this.options.layout.slotBytes;
  }

  /** GPU bytes of the slabs. */
  get bytes(): number {
    return this.pool.bytes;
  }

  get policyName(): string {
    return this.options.policy.name;
  }

  /** Slots a layer's demand may use: those not pinned by the user (hot experts of other layers). */
  get availableSlots(): number {
    return this.capacity - this.pinnedByUser;
  }

  isResident(layer: number, expert: number): boolean {
    return this.loaded.has(this.key(layer, expert));
  }

  /** Whether (layer, expert) holds a slot: loaded, or its load queued or in flight. */
  isCached(layer: number, expert: number): boolean {
    return this.options.policy.has(this.key(layer, expert));
  }

  /** Experts resident now, per layer. */
  residentPerLayer(): number[] {
    const counts = new Array<number>(this.options.nLayers).fill(0);
    for (const key of this.loaded) counts[keyLayer(key, this.options.nExperts)]++;
    return counts;
  }

  /** Experts whose bytes are in a slot now, per layer, ascending ids. */
  residentExperts(): number[][] {
    const { nLayers, nExperts } = this.options;
    const ids = Array.from({ length: nLayers }, () => [] as number[]);
    for (const key of this.loaded) ids[keyLayer(key, nExperts)]!.push(keyExpert(key, nExperts));
    for (const layer of ids) layer.sort((x, y) => x - y);
    return ids;
  }

  /** Loads and pins `experts` ({layer, expert}) for good; they are never evicted. */
  async pinExperts(experts: readonly { layer: number; expert: number }[]): Promise<void> {
    const keys = [...new Set(experts.map((e) => this.key(e.layer, e.expert)))];
    if (this.pinnedByUser + keys.length > this.capacity) {
      throw new ExpertBudgetError(`cannot pin ${keys.length} experts in a cache of ${this.capacity} slots`, keys.length * this.slotBytes, this.capacity * this.slotBytes);
    }
    const loads: Promise<void>[] = [];
    for (const key of keys) {
      if (!this.options.policy.has(key)) loads.push(this.admit(key, 'prefetch', () => this.options.policy.pin([key])[0]));
      else this.options.policy.pin([key]);
      this.pinnedByUser++;
    }
    await Promise.all(loads);
    for (const key of keys) await this.loading.get(key)?.promise;
  }

  /**
   * Makes the experts of `layer` resident and pins them until `release()`.
   * `experts` lists every routed (token, rank) of the batch: each one is an
   * access, and a repeat is a hit on the expert its first use loaded.
   * Every admission that can be decided now is made before this returns (so
   * a prefetch issued right after cannot take their slots); the promise
   * resolves once their bytes and table entries are written, in queue order.
   */
  ensure(layer: number, experts: readonly number[]): Promise<void> {
    const start = performance.now();
    const stats = this.layerStats[layer];
    const policy = this.options.policy;
    const waits: Promise<void>[] = [];
    const blocked: ExpertKey[] = [];
    const seen = new Set<number>();
    for (const expert of experts) {
      const key = this.key(layer, expert);
      stats.accesses++;
      // A repeat within the batch finds the expert its first use brought in.
      if (seen.has(expert)) {
        stats.hits++;
        continue;
      }
      seen.add(expert);
      const inFlight = this.loading.get(key);
      if (policy.has(key) && (this.loaded.has(key) || inFlight)) {
        policy.access(key);
        stats.hits++;
        if (this.unusedPrefetches.delete(key)) stats.prefetchUsed++;
        if (inFlight) {
          this.queue.promote(key);
          if (inFlight.prefetch) stats.prefetchLate++;
          waits.push(inFlight.promise);
        }
      } else if (policy.has(key) || policy.size < this.capacity || policy.victim() !== undefined) {
        stats.misses++;
        waits.push(this.admit(key, 'demand', () => policy.access(key).evicted));
      } else {
        blocked.push(key);
        continue;
      }
      policy.pin([key]);
      this.held.push(key);
    }
    if (waits.length === 0 && blocked.length === 0) return Promise.resolve();
    return this.finishEnsure(stats, waits, blocked, start);
  }

  private async finishEnsure(stats: ExpertLayerStats, waits: Promise<void>[], blocked: ExpertKey[], start: number): Promise<void> {
    for (const key of blocked) {
      stats.misses++;
      waits.push((await this.admitDemand(key)).load);
      this.options.policy.pin([key]);
      this.held.push(key);
    }
    await Promise.all(waits);
    stats.stallMs += performance.now() - start;
  }

  /** Unpins what the last `ensure` calls pinned (call once their layer is submitted). */
  release(): void {
    this.options.policy.unpin(this.held);
    this.held = [];
  }

  /**
   * Starts loading `experts` of `layer` on a prediction, without waiting.
   * Keys already resident or loading are refreshed in the policy only; a
   * load never takes the last `reserve` free-to-evict slots (demand needs them).
   * `confidence[i]` (the predictor's probability that experts[i] is routed)
   * goes to the policy, which may refuse a guess it rates below its victim.
   */
  prefetch(layer: number, experts: readonly number[], reserve: number, confidence?: readonly number[]): void {
    const policy = this.options.policy;
    for (const [i, expert] of experts.entries()) {
      const key = this.key(layer, expert);
      if (policy.has(key)) {
        if (this.loaded.has(key) || this.loading.has(key)) policy.prefetch(key, confidence?.[i]);
        continue;
      }
      if (this.pinnedByUser + this.held.length + this.prefetchPins + reserve >= this.capacity) return;
      if (policy.size >= this.capacity && policy.victim() === undefined) return;
      const decided = policy.prefetch(key, confidence?.[i]);
      if (!decided.admitted) continue;
      this.layerStats[layer].prefetchLoads++;
      this.unusedPrefetches.add(key);
      this.prefetchPins++;
      this.admit(key, 'prefetch', () => {
        policy.pin([key]);
        return decided.evicted;
      })
        .finally(() => {
          policy.unpin([key]);
          this.prefetchPins--;
        })
        .catch(() => undefined); // a failed prefetch costs nothing: a demand access loads the expert again
    }
  }

  /** Waits for every load in flight (prefetches included). */
  async settle(): Promise<void> {
    while (this.loading.size > 0) await Promise.allSettled([...this.loading.values()].map((l) => l.promise));
  }

  /** Counters since the last reset. */
  stats(): ExpertCacheStats {
    return summarizeStats(this.layerStats, this.evictions);
  }

  resetStats(): void {
    this.layerStats = this.layerStats.map(emptyLayerStats);
    this.evictions = 0;
  }

  destroy(): void {
    this.pool.destroy();
    if (!this.options.table) this.table.destroy();
  }

  private key(layer: number, expert: number): ExpertKey {
    const { nLayers, nExperts } = this.options;
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) throw new RangeError(`layer ${layer} is not in 0..${nLayers - 1}`);
    if (!Number.isInteger(expert) || expert < 0 || expert >= nExperts) throw new RangeError(`expert ${expert} is not in 0..${nExperts - 1}`);
    return expertKey(layer, expert, nExperts);
  }

  /** A demand miss: admits the key (waiting for a slot while every slot is pinned by loads) and returns its load. */
  private async admitDemand(key: ExpertKey): Promise<{ load: Promise<void> }> {
    const policy = this.options.policy;
    for (;;) {
      if (policy.has(key) || policy.size < this.capacity || policy.victim() !== undefined) {
        return { load: this.admit(key, 'demand', () => policy.access(key).evicted) };
      }
      const inFlight = [...this.loading.values()].map((l) => l.promise.catch(() => undefined));
      if (inFlight.length === 0) {
        throw new ExpertBudgetError(
          `all ${this.capacity} expert slots are pinned; a layer needs more than the cache holds`,
          (this.held.length + 1) * this.slotBytes,
          this.capacity * this.slotBytes,
        );
      }
      await Promise.race(inFlight);
    }
  }

  /**
   * Admits `key` through `decide` (a policy call that makes it resident and
   * returns the key it evicted) into the victim's slot or a free one, and
   * queues the load of its bytes. Returns the load.
   */
  private admit(key: ExpertKey, priority: 'demand' | 'prefetch', decide: () => ExpertKey | undefined): Promise<void> {
    const policy = this.options.policy;
    const victim = decide();
    if (!policy.has(key)) throw new Error(`the ${policy.name} policy did not admit expert key ${key}`);
    let slot = this.slotOf.get(key);
    if (slot === undefined) {
      slot = victim !== undefined ? this.evict(victim) : this.freeSlots.pop();
      if (slot === undefined) throw new Error('the expert cache lost track of its slots');
      this.slotOf.set(key, slot);
    } else if (victim !== undefined) {
      this.freeSlots.push(this.evict(victim));
    }
    const place = this.pool.places[slot];
    const layer = keyLayer(key, this.options.nExperts);
    const expert = keyExpert(key, this.options.nExperts);
    const stats = this.layerStats[layer];
    const promise = this.queue.add(key, priority, async () => {
      const tensors = await this.options.source.readExpert(layer, expert);
      if (this.slotOf.get(key) !== slot) return; // evicted meanwhile (cannot happen while pinned)
      writeBufferCounted(this.device, this.slabs[place.slab], place.offsetBytes, packExpertSlot(this.options.layout, tensors));
      writeBufferCounted(this.device, this.table, key * 8, new Uint32Array([place.slab, place.offsetBytes]));
      this.loaded.add(key);
      const bytes = expertTensorBytes(tensors);
      stats.bytesStreamed += bytes;
      if (this.options.countStoreBytes ?? true) costCounterOf(this.device).storeBytes += bytes;
    }).finally(() => this.loading.delete(key));
    this.loading.set(key, { promise, prefetch: priority === 'prefetch' });
    return promise;
  }

  /** Frees the victim's slot: its table entry goes back to NO_SLAB. */
  private evict(victim: ExpertKey): number {
    const slot = this.slotOf.get(victim);
    if (slot === undefined) throw new Error(`evicted expert key ${victim} had no slot`);
    this.slotOf.delete(victim);
    this.loaded.delete(victim);
    this.unusedPrefetches.delete(victim);
    this.evictions++;
    writeBufferCounted(this.device, this.table, victim * 8, new Uint32Array([NO_SLAB, 0]));
    this.options.onEvicted?.(keyLayer(victim, this.options.nExperts), keyExpert(victim, this.options.nExperts));
    return slot;
  }
}

/** A [nLayers * nExperts] slot table with every entry NO_SLAB. */
export function createSlotTable(device: GPUDevice, nLayers: number, nExperts: number): GPUBuffer {
  const empty = new Uint32Array(2 * nLayers * nExperts);
  for (let i = 0; i < empty.length; i += 2) empty[i] = NO_SLAB;
  const table = device.createBuffer({ label: 'expert slot table', size: empty.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(table, 0, empty);
  return table;
}
