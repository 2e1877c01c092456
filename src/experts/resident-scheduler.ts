/**
 * Every routed expert resident: slots placed layer by layer in one slab
 * pool per slot layout, so each layer's experts lie in a short run of slabs
 * that its FFN binds (padded to its layout's longest run, since layers of
 * one layout share an FFN pipeline with a fixed slab count). The slot table
 * lets the FFN find experts by the router's ids on the GPU: nothing is read
 * back, every access is a hit. A recorded trace (or a live routing stream)
 * copies each layer's routing aside and reads it back with the batch's
 * output; without one nothing extra is copied or read.
 */

import { createStorageBuffer } from '../gpu/buffers';
import { costCounterOf, writeBufferCounted } from '../gpu/cost-counter';
import type { Recording } from '../gpu/recording';
import { layoutKey, packExpertSlot, packSlotRefs } from '../kernels/expert-slots';
import type { ExpertSlotRef } from '../kernels/expert-slots';
import { routingBytes, unpackRouting } from '../kernels/router';
import { emptyLayerStats, summarizeStats } from './cache-stats';
import type { ExpertCacheStats, ExpertLayerStats } from './cache-stats';
import type { EncodeExpertFfn, ExpertMemory, ExpertScheduler, SchedulerModel } from './scheduler';
import { SlabPool } from './slab-pool';
import type { RoutingTrace, TokenRouting } from './trace';
import { RoutingRecorders } from './trace-recorder';
import type { RecorderShape } from './trace-recorder';

export class ResidentExperts implements ExpertScheduler {
  readonly streaming = false;
  private stats_: ExpertLayerStats[];
  private readonly recorders = new RoutingRecorders();
  private traceRouting: GPUBuffer | undefined;
  private traceStaging: GPUBuffer | undefined;
  private batchTokens = 0;

  private constructor(
    private readonly device: GPUDevice,
    private readonly model: SchedulerModel,
    readonly table: GPUBuffer,
    private readonly pools: SlabPool[],
    private readonly layerSlabs: GPUBuffer[][],
  ) {
    this.stats_ = Array.from({ length: model.nLayer }, emptyLayerStats);
  }

  /** Reads every routed expert from the model's file and places it. */
  static async create(device: GPUDevice, model: SchedulerModel): Promise<ResidentExperts> {
    const byKey = new Map<string, number[]>();
    for (const l of model.moeLayers) {
      const key = layoutKey(model.layouts[l]!);
      byKey.set(key, [...(byKey.get(key) ?? []), l]);
    }
    const refs: (ExpertSlotRef | undefined)[] = new Array(model.nLayer * model.nExpert).fill(undefined);
    const pools: SlabPool[] = [];
    const layerSlabs: GPUBuffer[][] = Array.from({ length: model.nLayer }, () => []);
    for (const layers of byKey.values()) {
      const layout = model.layouts[layers[0]]!;
      const pool = new SlabPool(device, layout, layers.length * model.nExpert, model.slabLimitBytes, 'expert slab');
      pools.push(pool);
      let slot = 0;
      for (const l of layers) {
        const run = layerSlabs[l];
        for (let e = 0; e < model.nExpert; e++, slot++) {
          const place = pool.places[slot];
          const slab = pool.slabs[place.slab];
          if (run[run.length - 1] !== slab) run.push(slab);
          writeBufferCounted(device, slab, place.offsetBytes, packExpertSlot(layout, await model.fileSource.readExpert(l, e)));
          refs[l * model.nExpert + e] = { slab: run.length - 1, offsetBytes: place.offsetBytes };
        }
        if (run.length > model.maxSlabBindings) {
          throw new RangeError(`layer ${l}'s experts span ${run.length} slabs; at most ${model.maxSlabBindings} can be bound`);
        }
      }
      // Pad with the run's last slab (never read through the padding).
      const longest = Math.max(...layers.map((l) => layerSlabs[l].length));
      for (const l of layers) while (layerSlabs[l].length < longest) layerSlabs[l].push(layerSlabs[l][layerSlabs[l].length - 1]);
    }
    const table = createStorageBuffer(device, packSlotRefs(refs), 'expert slot table');
    return new ResidentExperts(device, model, table, pools, layerSlabs);
  }

  slabsOf(layer: number): GPUBuffer[] {
    return this.layerSlabs[layer];
  }

  beginBatch(tokens: number): void {
    this.batchTokens = tokens;
    if (!this.recorders.active) return;
    this.recorders.beginBatch(tokens);
    const k = Math.max(1, this.model.topK);
    this.traceRouting = this.device.createBuffer({
      label: 'routing trace',
      size: this.model.moeLayers.length * routingBytes(tokens, k),
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  async runLayer(rec: Recording, layer: number, tokens: number, encodeFfn: EncodeExpertFfn): Promise<void> {
    const k = this.model.topK;
    if (this.traceRouting) {
      rec.endPass();
      const bytes = routingBytes(tokens, k);
      rec.encoder.copyBufferToBuffer(this.model.routing, 0, this.traceRouting, this.model.moeLayers.indexOf(layer) * bytes, bytes);
      rec.beginPass();
    }
    encodeFfn(rec.pass, tokens);
    this.stats_[layer].accesses += tokens * k;
    this.stats_[layer].hits += tokens * k;
  }

  encodeBatchEnd(encoder: GPUCommandEncoder): void {
    const from = this.traceRouting;
    if (!from) return;
    this.traceStaging = this.device.createBuffer({ label: 'routing trace readback', size: from.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(from, 0, this.traceStaging, 0, from.size);
  }

  async finishBatch(): Promise<void> {
    const staging = this.traceStaging;
    this.traceStaging = undefined;
    try {
      if (staging && this.recorders.active) {
        await costCounterOf(this.device).roundTrip(staging.mapAsync(GPUMapMode.READ));
        const words = new Uint32Array(staging.getMappedRange().slice(0));
        const k = Math.max(1, this.model.topK);
        const perLayer = routingBytes(this.batchTokens, k) / 4;
        this.model.moeLayers.forEach((_, i) => {
          const r = unpackRouting(words.subarray(i * perLayer, (i + 1) * perLayer), this.batchTokens, k);
          this.recorders.setLayer(i, r.ids, r.weights);
        });
        this.recorders.endBatch();
      }
    } finally {
      staging?.destroy();
      this.traceRouting?.destroy();
      this.traceRouting = undefined;
    }
  }

  stats(): ExpertCacheStats {
    return summarizeStats(this.stats_, 0);
  }

  resetStats(): void {
    this.stats_ = this.stats_.map(emptyLayerStats);
  }

  memory(): ExpertMemory {
    const totalExperts = this.model.moeLayers.length * this.model.nExpert;
    const residentPerLayer = this.model.layouts.map((layout) => (layout ? this.model.nExpert : 0));
    const expertBytes = this.pools.reduce((sum, p) => sum + p.bytes, 0);
    return { expertBytes, expertSlots: totalExperts, totalExperts, residentPerLayer, residentExperts: this.residentExperts() };
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

  residentExperts(): number[][] {
    const all = Array.from({ length: this.model.nExpert }, (_, e) => e);
    return this.model.moeLayers.map(() => [...all]);
  }

  private recorderShape(name: string): RecorderShape {
    const first = this.model.layouts[this.model.moeLayers[0]];
    return { name, nLayers: this.model.moeLayers.length, nExperts: this.model.nExpert, topK: this.model.topK, expertBytes: first?.slotBytes };
  }

  async settle(): Promise<void> {}

  destroy(): void {
    this.pools.forEach((p) => p.destroy());
    this.table.destroy();
    this.traceRouting?.destroy();
  }
}
