/**
 * Routed experts streamed through the GPU expert cache (expert-cache.ts)
 * when they do not all fit the budget. Each MoE layer: submit up to its
 * router (and the pre-gate routers of the next layers), read back the
 * routing ids, start prefetch of predicted experts, make the layer's experts
 * resident, then submit the FFN; a batch whose experts do not fit at once
 * runs in pieces of tokens (streaming-pieces.ts), so every token's sum is
 * what the all-resident pass computes. Pipelines and bind groups never
 * change: only slot contents and the slot table do.
 */

import { createEmptyStorageBuffer } from '../gpu/buffers';
import type { Recording } from '../gpu/recording';
import { layoutKey } from '../kernels/expert-slots';
import type { ExpertSlotLayout } from '../kernels/expert-slots';
import { routingBytes, unpackRouting } from '../kernels/router';
import type { ExpertCacheStats } from './cache-stats';
import { ExpertBudgetError, ExpertCache } from './expert-cache';
import { createPolicy, isPolicyName } from './policies';
import { AffinityPredictor } from './predictors';
import { MAX_PREFETCH_LOOKAHEAD } from './scheduler';
import type { ExpertMemory, ExpertScheduler, ExpertSchedulerOptions, SchedulerModel } from './scheduler';
import { maskRouting, planPieces } from './streaming-pieces';
import type { RoutingTrace } from './trace';
import { RoutingRecorder } from './trace-recorder';

export class StreamingExperts implements ExpertScheduler {
  readonly streaming = true;
  /** moeIndex[layer]: the layer's place among MoE layers, or -1. */
  private readonly moeIndex: number[];
  private readonly predictor?: AffinityPredictor;
  private readonly lookahead: number;
  private readonly width: number;
  /** [lookahead] routing buffers the pre-gate writes, [1, 2k] words each. */
  private readonly pregateRouting: GPUBuffer[] = [];
  private recorder: RoutingRecorder | undefined;
  /** Decode tokens seen, in the predictor's position numbering. */
  private tokenCount = 0;
  private batchTokens = 0;

  private constructor(
    private readonly device: GPUDevice,
    private readonly model: SchedulerModel,
    private readonly options: ExpertSchedulerOptions,
    readonly cache: ExpertCache,
  ) {
    this.moeIndex = Array.from({ length: model.nLayer }, (_, l) => model.moeLayers.indexOf(l));
    this.lookahead = options.prefetch?.lookahead ?? 1;
    this.width = options.prefetch?.width ?? model.topK;
    if (options.prefetch?.predictor === 'affinity') {
      this.predictor = new AffinityPredictor({ nLayers: model.moeLayers.length, nExperts: model.nExpert }, this.lookahead);
    }
    if (options.prefetch?.predictor === 'pregate') {
      for (let d = 0; d < this.lookahead; d++) this.pregateRouting.push(createEmptyStorageBuffer(device, routingBytes(1, Math.max(1, model.topK)), `pre-gate routing ${d + 1}`));
    }
  }

  /** Checks the options and the budget (a typed error names the minimum), builds the cache and loads pinned experts. */
  static async create(device: GPUDevice, model: SchedulerModel, options: ExpertSchedulerOptions & { expertBudgetBytes: number }): Promise<StreamingExperts> {
    const layout = sharedLayout(model);
    const policyName = options.expertPolicy ?? 'lru';
    if (typeof policyName === 'string' && !isPolicyName(policyName)) throw new RangeError(`unknown expert cache policy '${String(policyName)}'`);
    const lookahead = options.prefetch?.lookahead ?? 1;
    if (!Number.isInteger(lookahead) || lookahead < 1 || lookahead > MAX_PREFETCH_LOOKAHEAD) {
      throw new RangeError(`prefetch lookahead must be an integer in 1..${MAX_PREFETCH_LOOKAHEAD}, got ${lookahead}`);
    }
    const { topK } = model;
    const pinned = options.pinnedExperts ?? [];
    const capacity = Math.floor(options.expertBudgetBytes / layout.slotBytes);
    const pinnedCount = new Set(pinned.map((p) => `${p.layer}.${p.expert}`)).size;
    // One token's k experts of a layer must be resident at once, besides any pinned ones.
    const minimum = (topK + pinnedCount) * layout.slotBytes;
    if (capacity < topK + pinnedCount) {
      throw new ExpertBudgetError(
        `an expert budget of ${options.expertBudgetBytes} bytes holds ${capacity} experts of ${layout.slotBytes} bytes; ` +
          `at least ${topK + pinnedCount} (top-k ${topK}${pinnedCount ? ` + ${pinnedCount} pinned` : ''}) must fit: give at least ${minimum} bytes`,
        minimum,
        Infinity,
      );
    }
    const cache = new ExpertCache(device, {
      layout,
      nLayers: model.nLayer,
      nExperts: model.nExpert,
      capacity,
      policy: typeof policyName === 'function' ? policyName(capacity) : createPolicy(policyName, capacity),
      source: options.expertSource ?? model.fileSource,
      slabLimitBytes: model.slabLimitBytes,
      maxSlabBindings: model.maxSlabBindings,
      loadConcurrency: options.expertLoadConcurrency,
    });
    if (pinned.length > 0) await cache.pinExperts(pinned);
    cache.resetStats();
    return new StreamingExperts(device, model, options, cache);
  }

  get table(): GPUBuffer {
    return this.cache.table;
  }

  slabsOf(): GPUBuffer[] {
    return this.cache.slabs;
  }

  beginBatch(tokens: number, startPosition: number): void {
    this.batchTokens = tokens;
    if (startPosition === 0) this.predictor?.begin();
    this.recorder?.beginBatch(tokens);
  }

  /**
   * Routed experts of layer l through the cache: the pre-gate guesses for
   * the next layers are computed with the router, the routing (and guesses)
   * read back, prefetch started, the layer's experts made resident, and the
   * FFN submitted, in pieces of tokens when they do not fit at once.
   */
  async runLayer(rec: Recording, l: number, T: number, encodeFfn: (pass: GPUComputePassEncoder) => void): Promise<void> {
    const { cache, model } = this;
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
      await staging.mapAsync(GPUMapMode.READ);
      words = new Uint32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
    const routing = unpackRouting(words, T, k);
    this.recorder?.setLayer(index, routing.ids, routing.weights);

    // Predictions for the next layers (decode only): pre-gate ids, or affinity learned so far.
    const predictions: { layer: number; experts: number[] }[] = [];
    pregate.forEach((p, i) => {
      const ids = Array.from(unpackRouting(words.subarray((bytes + i * one) / 4), 1, k).ids).slice(0, this.width);
      predictions.push({ layer: p.layer, experts: ids });
      this.recorder?.setPredicted(0, this.moeIndex[p.layer], ids);
    });
    const predictor = this.predictor;
    if (predictor && decode) {
      const from = { token: this.tokenCount, layer: index };
      predictor.observe(from.token, from.layer, Array.from(routing.ids));
      const n = model.moeLayers.length;
      for (let d = 1; d <= this.lookahead; d++) {
        const flat = index + d;
        const target = { token: from.token + Math.floor(flat / n), layer: flat % n };
        predictions.push({ layer: model.moeLayers[target.layer], experts: predictor.predict(from, target, this.width) });
      }
    }

    // Make the experts resident and run the FFN, one piece of tokens at a time.
    const pieces = planPieces(routing.ids, T, k, cache.availableSlots);
    for (const [p, piece] of pieces.entries()) {
      if (pieces.length > 1) this.device.queue.writeBuffer(model.routing, 0, maskRouting(words, T, k, piece.tokens));
      const ready = cache.ensure(l, piece.experts);
      if (p === 0) for (const guess of predictions) cache.prefetch(guess.layer, guess.experts, k);
      try {
        await ready;
      } catch (error) {
        cache.release();
        throw error;
      }
      encodeFfn(rec.pass);
      rec.submit();
      cache.release();
    }
    if (predictor && !decode) for (let t = 0; t < T; t++) predictor.observe(this.tokenCount + t, index, Array.from(routing.ids.subarray(t * k, (t + 1) * k)));
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
    this.recorder?.endBatch();
  }

  stats(): ExpertCacheStats {
    return this.cache.stats();
  }

  resetStats(): void {
    this.cache.resetStats();
  }

  memory(): ExpertMemory {
    return { expertBytes: this.cache.bytes, expertSlots: this.cache.capacity, totalExperts: this.model.moeLayers.length * this.model.nExpert };
  }

  startTrace(name: string): void {
    this.recorder = new RoutingRecorder({ name, nLayers: this.model.moeLayers.length, nExperts: this.model.nExpert, topK: this.model.topK, expertBytes: this.cache.slotBytes });
  }

  takeTrace(): RoutingTrace | undefined {
    const trace = this.recorder?.take();
    this.recorder = undefined;
    return trace;
  }

  settle(): Promise<void> {
    return this.cache.settle();
  }

  destroy(): void {
    this.cache.destroy();
    this.pregateRouting.forEach((b) => b.destroy());
  }
}

/** The one slot layout every MoE layer shares (the model refuses to stream mixed layouts before this). */
function sharedLayout(model: SchedulerModel): ExpertSlotLayout {
  const layout = model.layouts[model.moeLayers[0]]!;
  if (model.moeLayers.some((l) => layoutKey(model.layouts[l]!) !== layoutKey(layout))) throw new RangeError('the MoE layers do not share one expert slot layout');
  return layout;
}
