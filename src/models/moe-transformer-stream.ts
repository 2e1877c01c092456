/**
 * The streamed expert step of a MoeTransformer's forward pass, used when the
 * routed experts do not all fit the GPU budget. Each MoE layer: submit up to
 * its router (and the pre-gate routers of the next layers), read back the
 * routing ids, start prefetch of predicted experts, make the layer's experts
 * resident in the expert cache, then submit the expert FFN; a batch whose
 * experts do not fit at once runs in pieces of tokens, each piece with the
 * others' routing masked out, so every token's sum is what the all-resident
 * pass computes.
 */

import type { ByteSource } from '../gguf/source';
import type { GgufFile } from '../gguf/types';
import { createEmptyStorageBuffer } from '../gpu/buffers';
import type { ExpertFfnBinding } from '../kernels/expert-ffn';
import type { ExpertSlotLayout } from '../kernels/expert-slots';
import type { RouterBinding } from '../kernels/router';
import { routingBytes, unpackRouting } from '../kernels/router';
import { ggufExpertSource } from '../experts/expert-source';
import type { ExpertSource, ExpertTensorNames } from '../experts/expert-source';
import type { PolicyName } from '../experts/policies';
import type { ExpertCachePolicy } from '../experts/policy';
import type { RoutingRecorder } from '../experts/trace-recorder';
import { ModelConfigError } from './config';
import type { ModelConfig } from './config';
import { ExpertStreaming, maskRouting, planPieces } from './moe-transformer-experts';
import type { PrefetchOptions } from './moe-transformer-experts';
import { layerExpertKernel } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import type { Recording } from './moe-transformer-recording';
import type { RunState } from './moe-transformer-state';
import { layoutKey } from './moe-transformer-weights';
import type { GpuModelWeights } from './moe-transformer-weights';

/** The streaming settings of MoeTransformerOptions. */
export interface StreamingOptions {
  expertBudgetBytes: number;
  expertSource?: ExpertSource;
  expertPolicy?: PolicyName | ((capacity: number) => ExpertCachePolicy);
  pinnedExperts?: readonly { layer: number; expert: number }[];
  prefetch?: PrefetchOptions;
  expertLoadConcurrency?: number;
  maxSlabBytes?: number;
}

/** Builds the expert cache for a model's MoE layers (which must share one slot layout). */
export async function createExpertStreaming(
  device: GPUDevice,
  model: { file: GgufFile; source: ByteSource; config: ModelConfig; layouts: (ExpertSlotLayout | undefined)[]; moeLayers: number[]; maxSlabBindings: number },
  options: StreamingOptions,
): Promise<ExpertStreaming> {
  const { file, source, config, layouts, moeLayers } = model;
  const layout = layouts[moeLayers[0]]!;
  if (moeLayers.some((l) => layoutKey(layouts[l]!) !== layoutKey(layout))) {
    throw new ModelConfigError('BAD_CONFIG', 'streaming experts needs every MoE layer to share one expert slot layout');
  }
  const names = new Map<number, ExpertTensorNames>();
  for (const l of moeLayers) {
    const ffn = config.tensors.layers[l].ffn;
    if (ffn.kind === 'moe') names.set(l, { gate: ffn.gateExps, up: ffn.upExps, down: ffn.downExps });
  }
  return ExpertStreaming.create(device, {
    layout,
    nLayers: config.nLayer,
    nExperts: config.nExpert,
    topK: config.nExpertUsed,
    moeLayers,
    budgetBytes: options.expertBudgetBytes,
    policy: options.expertPolicy ?? 'lru',
    source: options.expertSource ?? ggufExpertSource(file, source, names, config.nExpert),
    slabLimitBytes: Math.min(options.maxSlabBytes ?? 128 * 1024 * 1024, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
    maxSlabBindings: model.maxSlabBindings,
    pinned: options.pinnedExperts ?? [],
    prefetch: options.prefetch,
    loadConcurrency: options.expertLoadConcurrency,
  });
}

/** What the streamed step reads of the model it belongs to. */
export interface StreamedModel {
  config: ModelConfig;
  weights: GpuModelWeights;
  kernels: ForwardKernels;
  state: RunState;
  moeLayers: number[];
}

export class StreamedExperts {
  /** Pre-gate router bindings by target layer and distance (decode only). */
  private readonly pregateBindings = new Map<string, RouterBinding>();
  /** [lookahead] routing buffers the pre-gate writes, [1, 2k] words each. */
  private readonly pregateRouting: GPUBuffer[] = [];
  private readonly pregateScratch: GPUBuffer | undefined;

  constructor(
    private readonly device: GPUDevice,
    readonly streaming: ExpertStreaming,
    private readonly model: StreamedModel,
  ) {
    if (streaming.config.prefetch?.predictor === 'pregate') {
      const k = Math.max(1, model.config.nExpertUsed);
      for (let d = 0; d < streaming.lookahead; d++) this.pregateRouting.push(createEmptyStorageBuffer(device, routingBytes(1, k), `pre-gate routing ${d + 1}`));
      this.pregateScratch = createEmptyStorageBuffer(device, 4 * model.state.sizes.maxBatchTokens, 'pre-gate shared gate');
    }
  }

  /**
   * Routed experts of layer l through the expert cache: the pre-gate guesses
   * for the next layers are computed with the router, the routing (and
   * guesses) read back, prefetch started, the layer's experts made resident,
   * and the FFN submitted, in pieces of tokens when they do not fit at once.
   */
  async encodeLayer(rec: Recording, l: number, T: number, experts: ExpertFfnBinding, recorder: RoutingRecorder | undefined): Promise<void> {
    const { streaming, model } = this;
    const { cache } = streaming;
    const s = model.state;
    const k = model.config.nExpertUsed;
    const index = streaming.moeIndex[l];
    const decode = T === 1;
    const pregate = decode && streaming.config.prefetch?.predictor === 'pregate' ? this.encodePregate(rec.pass, l) : [];

    // Submit up to the router and read back the routing (and the pre-gate's ids).
    rec.endPass();
    const bytes = routingBytes(T, k);
    const staging = this.device.createBuffer({ label: 'routing readback', size: bytes + pregate.length * routingBytes(1, k), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    rec.encoder.copyBufferToBuffer(s.routing, 0, staging, 0, bytes);
    pregate.forEach((p, i) => rec.encoder.copyBufferToBuffer(p.buffer, 0, staging, bytes + i * routingBytes(1, k), routingBytes(1, k)));
    rec.submit();
    let words: Uint32Array;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      words = new Uint32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
    const routing = unpackRouting(words, T, k);
    recorder?.setLayer(index, routing.ids, routing.weights);

    // Predictions for the next layers (decode only): pre-gate ids, or affinity learned so far.
    const predictions: { layer: number; experts: number[] }[] = [];
    pregate.forEach((p, i) => {
      const ids = Array.from(unpackRouting(words.subarray((bytes + i * routingBytes(1, k)) / 4), 1, k).ids).slice(0, streaming.width);
      predictions.push({ layer: p.layer, experts: ids });
      recorder?.setPredicted(0, streaming.moeIndex[p.layer], ids);
    });
    const predictor = streaming.predictor;
    if (predictor && decode) {
      const from = { token: streaming.tokenCount, layer: index };
      predictor.observe(from.token, from.layer, Array.from(routing.ids));
      const n = model.moeLayers.length;
      for (let d = 1; d <= streaming.lookahead; d++) {
        const flat = index + d;
        const target = { token: from.token + Math.floor(flat / n), layer: flat % n };
        predictions.push({ layer: model.moeLayers[target.layer], experts: predictor.predict(from, target, streaming.width) });
      }
    }

    // Make the experts resident and run the FFN, one piece of tokens at a time.
    const pieces = planPieces(routing.ids, T, k, cache.availableSlots);
    for (const [p, piece] of pieces.entries()) {
      if (pieces.length > 1) this.device.queue.writeBuffer(s.routing, 0, maskRouting(words, T, k, piece.tokens));
      const ready = cache.ensure(l, piece.experts);
      if (p === 0) for (const guess of predictions) cache.prefetch(guess.layer, guess.experts, k);
      try {
        await ready;
      } catch (error) {
        cache.release();
        throw error;
      }
      layerExpertKernel(model.kernels, model.weights.layers[l].experts!).encode(rec.pass, experts);
      rec.submit();
      cache.release();
    }
    if (predictor && !decode) for (let t = 0; t < T; t++) predictor.observe(streaming.tokenCount + t, index, Array.from(routing.ids.subarray(t * k, (t + 1) * k)));
  }

  /** Pre-gating: the routers of the next `lookahead` MoE layers applied to this layer's FFN input xb. */
  private encodePregate(pass: GPUComputePassEncoder, l: number): { layer: number; buffer: GPUBuffer }[] {
    const { streaming, model } = this;
    const index = streaming.moeIndex[l];
    const out: { layer: number; buffer: GPUBuffer }[] = [];
    for (let d = 1; d <= streaming.lookahead && index + d < model.moeLayers.length; d++) {
      const target = model.moeLayers[index + d];
      const key = `${target}/${d}`;
      let binding = this.pregateBindings.get(key);
      if (!binding) {
        const w = model.weights.layers[target];
        const s = model.state;
        binding = model.kernels.router(target).bind(
          {
            x: s.xb,
            weight: w.router!.buffer,
            logits: s.routerLogits,
            routing: this.pregateRouting[d - 1],
            sharedGateWeight: w.sharedGate,
            sharedGate: w.sharedGate ? this.pregateScratch : undefined,
          },
          { tokens: 1, hidden: model.config.hidden, nExperts: model.config.nExpert, topK: model.config.nExpertUsed },
        );
        this.pregateBindings.set(key, binding);
      }
      model.kernels.router(target).encode(pass, binding);
      out.push({ layer: target, buffer: this.pregateRouting[d - 1] });
    }
    return out;
  }

  /** Frees the expert cache and the pre-gate buffers. */
  destroy(): void {
    this.streaming.destroy();
    this.pregateRouting.forEach((b) => b.destroy());
    this.pregateScratch?.destroy();
  }
}
