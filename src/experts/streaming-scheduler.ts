/**
 * Routed experts streamed through the GPU expert cache (expert-cache.ts)
 * when they do not all fit the budget. Each MoE layer: submit up to its
 * router (and the pre-gate routers of the next layers), read back the
 * routing ids, start prefetch of predicted experts, make the layer's experts
 * resident, then submit the FFN; a batch whose experts do not fit at once
 * runs in pieces of tokens (streaming-pieces.ts), so every token's sum is
 * what the all-resident pass computes. Pipelines and bind groups never
 * change: only slot contents and the slot table do.
 *
 * Layers whose experts differ in format (llama-quantize's mixes put some
 * layers' ffn_down_exps in Q6_K and the others in Q4_K) have different slot
 * layouts: each layout gets its own cache, and the byte budget is shared
 * among them in proportion to their experts' bytes, so each keeps about the
 * same fraction of its experts resident. All write one slot table.
 *
 * Every cache reads through one host tier (host-tier.ts): records held in
 * host memory under `hostBudgetBytes`, warmed by the affinity predictor's
 * guesses further ahead and less sure than a GPU slot is worth. With a
 * budget of 0 it holds nothing and only counts the store's reads.
 */

import { createEmptyStorageBuffer } from '../gpu/buffers';
import { costCounterOf, writeBufferCounted } from '../gpu/cost-counter';
import type { Recording } from '../gpu/recording';
import { layoutKey } from '../kernels/expert-slots';
import type { ExpertSlotLayout } from '../kernels/expert-slots';
import { MASKED_EXPERT_ID, routingBytes, unpackRouting } from '../kernels/router';
import type { ExpertCacheStats } from './cache-stats';
import { summarizeStats } from './cache-stats';
import { createSlotTable, ExpertBudgetError, ExpertCache } from './expert-cache';
import { defaultHostBudgetBytes, HostTier } from './host-tier';
import { createPolicy, isPolicyName } from './policies';
import { PrefetchGate } from './prefetch-gate';
import { AffinityPredictor } from './predictors';
import { DEFAULT_EXPERT_POLICY, DEFAULT_HOST_WARM, DEFAULT_MIN_CONFIDENCE, DEFAULT_PREFETCH, MAX_HOST_WARM_LOOKAHEAD, MAX_PREFETCH_LOOKAHEAD } from './scheduler';
import type { EncodeExpertFfn, ExpertMemory, ExpertScheduler, ExpertSchedulerOptions, HostWarmOptions, PrefetchOptions, SchedulerModel } from './scheduler';
import { maskRouting, planPieces } from './streaming-pieces';
import type { RoutingTrace, TokenRouting } from './trace';
import { RoutingRecorders } from './trace-recorder';
import type { RecorderShape } from './trace-recorder';

export class StreamingExperts implements ExpertScheduler {
  readonly streaming = true;
  /** moeIndex[layer]: the layer's place among MoE layers, or -1. */
  private readonly moeIndex: number[];
  private readonly predictor?: AffinityPredictor;
  /** Loads only guesses whose confidence reaches the threshold (pre-gate guesses count as sure). */
  private readonly gate: PrefetchGate;
  private readonly lookahead: number;
  private readonly width: number;
  private readonly warm: Required<HostWarmOptions>;
  /** [lookahead] routing buffers the pre-gate writes, [1, 2k] words each. */
  private readonly pregateRouting: GPUBuffer[] = [];
  private readonly recorders = new RoutingRecorders();
  /** Decode tokens seen, in the predictor's position numbering. */
  private tokenCount = 0;
  private batchTokens = 0;

  private constructor(
    private readonly device: GPUDevice,
    private readonly model: SchedulerModel,
    private readonly options: ExpertSchedulerOptions,
    /** One cache per expert slot layout. */
    readonly caches: readonly ExpertCache[],
    /** cacheOf[layer]: the cache of the layer's layout (undefined for a dense layer). */
    private readonly cacheOf: readonly (ExpertCache | undefined)[],
    readonly table: GPUBuffer,
    /** Where every cache reads experts: host memory, then the store. */
    readonly host: HostTier,
  ) {
    this.moeIndex = Array.from({ length: model.nLayer }, (_, l) => model.moeLayers.indexOf(l));
    const prefetch = prefetchOf(options);
    this.lookahead = prefetch.lookahead ?? 1;
    this.width = prefetch.width ?? model.topK;
    this.gate = new PrefetchGate({ minConfidence: prefetch.minConfidence ?? DEFAULT_MIN_CONFIDENCE });
    this.warm = warmOf(options, model.topK, host.budgetBytes);
    if (prefetch.predictor === 'affinity') {
      this.predictor = new AffinityPredictor({ nLayers: model.moeLayers.length, nExperts: model.nExpert }, Math.max(this.lookahead, this.warm.lookahead));
    }
    if (prefetch.predictor === 'pregate') {
      for (let d = 0; d < this.lookahead; d++) this.pregateRouting.push(createEmptyStorageBuffer(device, routingBytes(1, Math.max(1, model.topK)), `pre-gate routing ${d + 1}`));
    }
  }

  /** Checks the options and the budget (a typed error names the minimum), builds the caches and loads pinned experts. */
  static async create(device: GPUDevice, model: SchedulerModel, options: ExpertSchedulerOptions & { expertBudgetBytes: number }): Promise<StreamingExperts> {
    const policyName = options.expertPolicy ?? DEFAULT_EXPERT_POLICY;
    if (typeof policyName === 'string' && !isPolicyName(policyName)) throw new RangeError(`unknown expert cache policy '${String(policyName)}'`);
    const minConfidence = prefetchOf(options).minConfidence ?? DEFAULT_MIN_CONFIDENCE;
    if (!(minConfidence >= 0 && minConfidence <= 1)) throw new RangeError(`prefetch minConfidence must be in 0..1, got ${minConfidence}`);
    // next-use reads layers from keys (layer * nExperts + expert, model layer numbers).
    const shape = { nLayers: model.nLayer, nExperts: model.nExpert, topK: model.topK };
    const lookahead = prefetchOf(options).lookahead ?? 1;
    if (!Number.isInteger(lookahead) || lookahead < 1 || lookahead > MAX_PREFETCH_LOOKAHEAD) {
      throw new RangeError(`prefetch lookahead must be an integer in 1..${MAX_PREFETCH_LOOKAHEAD}, got ${lookahead}`);
    }
    const warmLookahead = options.hostWarm?.lookahead ?? DEFAULT_HOST_WARM.lookahead;
    if (!Number.isInteger(warmLookahead) || warmLookahead < 0 || warmLookahead > MAX_HOST_WARM_LOOKAHEAD) {
      throw new RangeError(`host warm lookahead must be an integer in 0..${MAX_HOST_WARM_LOOKAHEAD}, got ${warmLookahead}`);
    }
    const warmConfidence = options.hostWarm?.minConfidence ?? DEFAULT_HOST_WARM.minConfidence;
    if (!(warmConfidence >= 0 && warmConfidence <= 1)) throw new RangeError(`host warm minConfidence must be in 0..1, got ${warmConfidence}`);
    const warmWidth = options.hostWarm?.width;
    if (warmWidth !== undefined && !(Number.isInteger(warmWidth) && warmWidth >= 1)) throw new RangeError(`host warm width must be an integer >= 1, got ${warmWidth}`);
    const expertBytes = model.moeLayers.reduce((sum, l) => sum + model.layouts[l]!.slotBytes * model.nExpert, 0);
    const hostBudgetBytes = options.hostBudgetBytes ?? defaultHostBudgetBytes(expertBytes);
    const host = new HostTier(options.expertSource ?? model.fileSource, {
      budgetBytes: hostBudgetBytes,
      onStoreRead: (bytes) => (costCounterOf(device).storeBytes += bytes),
    });
    const pinned = options.pinnedExperts ?? [];
    const groups = layoutGroups(model, pinned);
    const capacities = shareBudget(groups, options.expertBudgetBytes, model.nExpert, model.topK);
    const table = createSlotTable(device, model.nLayer, model.nExpert);
    const cacheOf: (ExpertCache | undefined)[] = new Array(model.nLayer).fill(undefined);
    const caches = groups.map((group, g) => {
      const capacity = capacities[g]!;
      const cache = new ExpertCache(device, {
        layout: group.layout,
        nLayers: model.nLayer,
        nExperts: model.nExpert,
        capacity,
        policy: typeof policyName === 'function' ? policyName(capacity) : createPolicy(policyName, capacity, { shape }),
        source: host,
        countStoreBytes: false,
        onEvicted: (layer, expert) => host.gpuEvicted(layer, expert),
        slabLimitBytes: model.slabLimitBytes,
        maxSlabBindings: model.maxSlabBindings,
        loadConcurrency: options.expertLoadConcurrency,
        table,
      });
      for (const l of group.layers) cacheOf[l] = cache;
      return cache;
    });
    for (const [g, group] of groups.entries()) if (group.pinned.length > 0) await caches[g]!.pinExperts(group.pinned);
    caches.forEach((c) => c.resetStats());
    host.resetStats();
    return new StreamingExperts(device, model, options, caches, cacheOf, table, host);
  }

  slabsOf(layer: number): GPUBuffer[] {
    return this.cacheFor(layer).slabs;
  }

  beginBatch(tokens: number, startPosition: number): void {
    this.batchTokens = tokens;
    if (startPosition === 0) this.predictor?.begin();
    this.recorders.beginBatch(tokens);
  }

  /**
   * Routed experts of layer l through the cache: the pre-gate guesses for
   * the next layers are computed with the router, the routing (and guesses)
   * read back, prefetch started, the layer's experts made resident, and the
   * FFN submitted, in pieces of tokens when they do not fit at once.
   */
  async runLayer(rec: Recording, l: number, T: number, encodeFfn: EncodeExpertFfn): Promise<void> {
    const { model } = this;
    const cost = costCounterOf(this.device);
    const cache = this.cacheFor(l);
    const k = model.topK;
    const index = this.moeIndex[l];
    const decode = T === 1;
    const pregate = decode && this.pregateRouting.length > 0 ? this.encodePregate(rec.pass, l) : [];

    // Submit up to the router and read back the routing (and the pre-gate's ids).
    rec.endPass();
    const bytes = routingBytes(T, k);
    const one = routingBytes(1, k);
    const staging = this.device.createBuffer({ label: 'routing readback', size: bytes + pregate.length * one, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    rec.encoder.copyBufferToBuffer(model.routing, 0, staging, 0, bytes);
    pregate.forEach((p, i) => rec.encoder.copyBufferToBuffer(p.buffer, 0, staging, bytes + i * one, one));
    rec.submit();
    let words: Uint32Array;
    try {
      await cost.roundTrip(staging.mapAsync(GPUMapMode.READ));
      words = new Uint32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
    const routing = unpackRouting(words, T, k);
    this.recorders.setLayer(index, routing.ids, routing.weights);

    // Predictions for the next layers (decode only): pre-gate ids, or affinity learned so far.
    const predictions: { layer: number; experts: number[]; confidence?: number[] }[] = [];
    pregate.forEach((p, i) => {
      const ids = usedIds(unpackRouting(words.subarray((bytes + i * one) / 4), 1, k).ids).slice(0, this.width);
      predictions.push({ layer: p.layer, experts: ids });
      this.recorders.setPredicted(0, this.moeIndex[p.layer], ids);
    });
    const predictor = this.predictor;
    let warmGuesses: { layer: number; expert: number }[] = [];
    if (predictor && decode) {
      const from = { token: this.tokenCount, layer: index };
      predictor.observe(from.token, from.layer, usedIds(routing.ids));
      const n = model.moeLayers.length;
      for (let d = 1; d <= this.lookahead; d++) {
        const flat = index + d;
        const target = { token: from.token + Math.floor(flat / n), layer: flat % n };
        const guesses = this.gate.confident(predictor.predictScored(from, target, this.width));
        predictions.push({ layer: model.moeLayers[target.layer], experts: guesses.map((g) => g.expert), confidence: guesses.map((g) => g.score) });
      }
      warmGuesses = this.hostWarmGuesses(predictor, from);
    }

    // Make the experts resident and run the FFN, one piece of tokens at a time.
    const pieces = planPieces(routing.ids, T, k, cache.availableSlots);
    for (const [p, piece] of pieces.entries()) {
      if (pieces.length > 1) writeBufferCounted(this.device, model.routing, 0, maskRouting(words, T, k, piece.tokens));
      const ready = cache.ensure(l, piece.experts);
      if (p === 0) for (const guess of predictions) this.cacheOf[guess.layer]?.prefetch(guess.layer, guess.experts, k, guess.confidence);
      if (p === 0) this.warmHost(warmGuesses);
      try {
        await cost.wait(ready);
      } catch (error) {
        cache.release();
        throw error;
      }
      encodeFfn(rec.pass, piece.tokens.length, piece.experts);
      rec.submit();
      cache.release();
    }
    if (predictor && !decode) for (let t = 0; t < T; t++) predictor.observe(this.tokenCount + t, index, usedIds(routing.ids.subarray(t * k, (t + 1) * k)));
  }

  /** The affinity guesses up to `warm.lookahead` MoE layers ahead confident enough to warm the host tier. */
  private hostWarmGuesses(predictor: AffinityPredictor, from: { token: number; layer: number }): { layer: number; expert: number }[] {
    const n = this.model.moeLayers.length;
    const guesses: { layer: number; expert: number }[] = [];
    for (let d = 1; d <= this.warm.lookahead; d++) {
      const flat = from.layer + d;
      const layer = this.model.moeLayers[flat % n]!;
      for (const guess of predictor.predictScored(from, { token: from.token + Math.floor(flat / n), layer: flat % n }, this.warm.width)) {
        if (guess.score >= this.warm.minConfidence) guesses.push({ layer, expert: guess.expert });
      }
    }
    return guesses;
  }

  /** Reads into host memory the guesses the GPU cache neither holds nor is loading (after its prefetch, so a GPU load is never doubled). */
  private warmHost(guesses: readonly { layer: number; expert: number }[]): void {
    for (const { layer, expert } of guesses) if (!this.cacheFor(layer).isCached(layer, expert)) this.host.warm(layer, expert);
  }

  /** Pre-gating: the routers of the next `lookahead` MoE layers applied to this layer's FFN input. */
  private encodePregate(pass: GPUComputePassEncoder, l: number): { layer: number; buffer: GPUBuffer }[] {
    const index = this.moeIndex[l];
    const out: { layer: number; buffer: GPUBuffer }[] = [];
    for (let d = 1; d <= this.lookahead && index + d < this.model.moeLayers.length; d++) {
      const target = this.model.moeLayers[index + d];
      this.model.encodeRouter(pass, target, this.pregateRouting[d - 1]);
      out.push({ layer: target, buffer: this.pregateRouting[d - 1] });
    }
    return out;
  }

  encodeBatchEnd(): void {}

  async finishBatch(): Promise<void> {
    this.tokenCount += this.batchTokens;
    this.recorders.endBatch();
  }

  stats(): ExpertCacheStats {
    // Each cache counts only its own layers; the others' entries stay zero.
    const each = new Map(this.caches.map((c) => [c, c.stats()]));
    const first = each.get(this.caches[0]!)!;
    const layers = first.layers.map((zero, l) => {
      const own = this.cacheOf[l];
      return own ? each.get(own)!.layers[l]! : zero;
    });
    const host = this.host.stats();
    return summarizeStats(layers, [...each.values()].reduce((sum, s) => sum + s.evictions, 0), {
      hostHits: host.hits,
      storeReads: host.storeReads,
      storeBytes: host.storeBytes,
      hostWarmReads: host.warmReads,
      hostBudgetBytes: host.budgetBytes,
      hostHeldBytes: host.heldBytes,
    });
  }

  resetStats(): void {
    this.caches.forEach((c) => c.resetStats());
    this.host.resetStats();
  }

  memory(): ExpertMemory {
    const resident = this.caches.map((c) => c.residentPerLayer());
    return {
      expertBytes: this.caches.reduce((sum, c) => sum + c.bytes, 0),
      expertSlots: this.caches.reduce((sum, c) => sum + c.capacity, 0),
      totalExperts: this.model.moeLayers.length * this.model.nExpert,
      residentPerLayer: Array.from({ length: this.model.nLayer }, (_, l) => resident.reduce((sum, r) => sum + r[l]!, 0)),
      residentExperts: this.residentExperts(),
    };
  }

  startTrace(name: string): void {
    this.recorders.startTrace(this.recorderShape(name));
  }

  takeTrace(): RoutingTrace | undefined {
    return this.recorders.takeTrace();
  }

  startRoutingStream(): void {
    this.recorders.startStream(this.recorderShape('routing stream'));
  }

  drainRoutingStream(): TokenRouting[] {
    return this.recorders.drainStream();
  }

  stopRoutingStream(): void {
    this.recorders.stopStream();
  }

  /** What each layer's cache holds now (loaded, not merely admitted: a load in flight is not resident yet). */
  residentExperts(): number[][] {
    const byCache = new Map(this.caches.map((c) => [c, c.residentExperts()]));
    return this.model.moeLayers.map((l) => byCache.get(this.cacheFor(l))![l]!);
  }

  async settle(): Promise<void> {
    await Promise.all([...this.caches.map((c) => c.settle()), this.host.settle()]);
  }

  destroy(): void {
    this.host.clear();
    this.caches.forEach((c) => c.destroy());
    this.table.destroy();
    this.pregateRouting.forEach((b) => b.destroy());
  }

  private recorderShape(name: string): RecorderShape {
    const slotBytes = this.model.moeLayers.map((l) => this.model.layouts[l]!.slotBytes);
    const meanSlotBytes = Math.round(slotBytes.reduce((a, b) => a + b, 0) / slotBytes.length);
    return { name, nLayers: this.model.moeLayers.length, nExperts: this.model.nExpert, topK: this.model.topK, expertBytes: meanSlotBytes };
  }

  private cacheFor(layer: number): ExpertCache {
    const cache = this.cacheOf[layer];
    if (!cache) throw new RangeError(`layer ${layer} has no routed experts`);
    return cache;
  }
}

/** Routed ids without the pairs a routing knob skipped. */
function usedIds(ids: Uint32Array): number[] {
  return Array.from(ids).filter((id) => id !== MASKED_EXPERT_ID);
}

/** The caller's prefetch, or the default one; `{ predictor: 'none' }` is no prefetch. */
function prefetchOf(options: ExpertSchedulerOptions): Readonly<PrefetchOptions> {
  return options.prefetch ?? DEFAULT_PREFETCH;
}

/** The caller's host warming with defaults filled in; nothing to warm without a host budget. */
function warmOf(options: ExpertSchedulerOptions, topK: number, hostBudgetBytes: number): Required<HostWarmOptions> {
  const warm = options.hostWarm ?? {};
  return {
    lookahead: hostBudgetBytes > 0 ? (warm.lookahead ?? DEFAULT_HOST_WARM.lookahead) : 0,
    minConfidence: warm.minConfidence ?? DEFAULT_HOST_WARM.minConfidence,
    width: warm.width ?? topK,
  };
}

/** The MoE layers of one slot layout, and the pinned experts among them. */
interface LayoutGroup {
  layout: ExpertSlotLayout;
  layers: number[];
  pinned: { layer: number; expert: number }[];
}

function layoutGroups(model: SchedulerModel, pinned: readonly { layer: number; expert: number }[]): LayoutGroup[] {
  const byKey = new Map<string, LayoutGroup>();
  for (const l of model.moeLayers) {
    const layout = model.layouts[l]!;
    const key = layoutKey(layout);
    const group = byKey.get(key) ?? { layout, layers: [], pinned: [] };
    byKey.set(key, group);
    group.layers.push(l);
  }
  const seen = new Set<string>();
  for (const p of pinned) {
    const group = [...byKey.values()].find((g) => g.layers.includes(p.layer));
    if (!group) throw new RangeError(`pinned expert ${p.expert} of layer ${p.layer}: that layer has no routed experts`);
    if (seen.has(`${p.layer}.${p.expert}`)) continue;
    seen.add(`${p.layer}.${p.expert}`);
    group.pinned.push(p);
  }
  return [...byKey.values()];
}

/**
 * Slots per layout group: the budget split in proportion to each group's
 * bytes of experts, each group holding at least top-k (plus its pinned
 * experts). Throws ExpertBudgetError naming the smallest budget that works.
 */
export function shareBudget(groups: readonly { layout: ExpertSlotLayout; layers: readonly number[]; pinned: readonly unknown[] }[], budgetBytes: number, nExperts: number, topK: number): number[] {
  const groupBytes = groups.map((g) => g.layers.length * nExperts * g.layout.slotBytes);
  const totalBytes = groupBytes.reduce((a, b) => a + b, 0);
  const capacitiesFor = (budget: number): number[] => groups.map((g, i) => Math.floor((budget * groupBytes[i]!) / totalBytes / g.layout.slotBytes));
  const need = groups.map((g) => topK + g.pinned.length);
  const capacities = capacitiesFor(budgetBytes);
  if (capacities.every((c, i) => c >= need[i]!)) return capacities;
  // The smallest budget whose shares hold every group's need (rounding can ask a few bytes more).
  let minimum = Math.max(...groups.map((g, i) => Math.ceil((need[i]! * g.layout.slotBytes * totalBytes) / groupBytes[i]!)));
  while (!capacitiesFor(minimum).every((c, i) => c >= need[i]!)) minimum++;
  const pinnedCount = need.reduce((a, b) => a + b, 0) - groups.length * topK;
  const held = capacities.reduce((a, b) => a + b, 0);
  throw new ExpertBudgetError(
    `an expert budget of ${budgetBytes} bytes holds ${held} experts` +
      (groups.length > 1 ? ` across ${groups.length} expert layouts (shared by bytes)` : ` of ${groups[0]!.layout.slotBytes} bytes`) +
      `; each layout's share must fit top-k ${topK}${pinnedCount ? ` plus its pinned experts (${pinnedCount} in all)` : ''}: give at least ${minimum} bytes`,
    minimum,
    Infinity,
  );
}
