/**
 * The forward pass of a Mixture-of-Experts decoder on the GPU, written with
 * the kernels of src/kernels, shared by every supported architecture (what
 * differs is a MoeGraphSpec, see moe-graph.ts, and the config).
 *
 * One `forward` call runs a batch of tokens (one for a decode step, many for
 * prefill) at consecutive positions through every layer, recorded into one
 * command encoder and submitted once; only what the caller asks for comes
 * back (the logits of the last or every token, or just the argmax id).
 * Experts are read through a slot table on the GPU ('expert-table' mode of
 * the expert FFN), indexed by the router's ids where they are computed, so
 * no routing is read back while every routed expert is resident.
 *
 * With an expert budget smaller than the routed experts, an expert cache
 * (moe-transformer-experts.ts) holds what fits, and each MoE layer becomes
 * (moe-transformer-stream.ts):
 * submit up to its router, read back the routing ids (a few bytes), make
 * those experts resident (loading misses from the expert source into slots,
 * rewriting their table entries), then submit the expert FFN. A batch whose
 * experts do not fit at once runs the FFN in pieces of tokens, each piece
 * with the others' routing masked out, so every token's sum is computed
 * exactly as when all is resident: outputs do not depend on the budget, the
 * policy or prefetch. Pipelines and bind groups never change.
 */

import type { ByteSource } from '../gguf/source';
import type { GgufFile } from '../gguf/types';
import { createStorageBuffer } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { MAX_SLAB_BINDINGS } from '../kernels/expert-ffn';
import type { ExpertFfnBinding } from '../kernels/expert-ffn';
import { packSlotRefs } from '../kernels/expert-slots';
import type { ExpertSlotRef } from '../kernels/expert-slots';
import type { RouterBinding } from '../kernels/router';
import { routingBytes, unpackRouting } from '../kernels/router';
import { topKResultBytes } from '../kernels/sample-topk';
import { decodeTopKResult } from '../kernels/sampling';
import { emptyLayerStats, summarizeStats } from '../experts/cache-stats';
import type { ExpertCacheStats, ExpertLayerStats } from '../experts/cache-stats';
import { RoutingRecorder } from '../experts/trace-recorder';
import type { RoutingTrace } from '../experts/trace';
import { ModelConfigError } from './config';
import type { ModelConfig } from './config';
import type { ExpertStreaming } from './moe-transformer-experts';
import { createForwardKernels, layerExpertKernel, ropeParamsOf } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import { Recording } from './moe-transformer-recording';
import { RunState } from './moe-transformer-state';
import type { ForwardOutput, ForwardResult, MemoryReport, MoeTransformerOptions } from './moe-transformer-types';
import { StreamedExperts, createExpertStreaming } from './moe-transformer-stream';
import { routedExpertLayouts, uploadWeights } from './moe-transformer-weights';
import type { GpuMatrix, GpuModelWeights, LayerExperts } from './moe-transformer-weights';
import { modelConfigFromGguf } from './registry';

export type { ForwardOutput, ForwardResult, MemoryReport, MoeTransformerOptions, TopKOutput } from './moe-transformer-types';

const DEFAULT_MAX_CONTEXT = 4096;
const DEFAULT_MAX_BATCH_TOKENS = 32;

/** Bindings that depend on the batch size, made once per size. */
interface BatchBindings {
  router: (RouterBinding | undefined)[];
  experts: (ExpertFfnBinding | undefined)[];
  single: (ExpertFfnBinding | undefined)[];
}

export class MoeTransformer {
  private readonly bindingsByTokens = new Map<number, BatchBindings>();
  private expertAccessCount = 0;
  /** Counters while every expert is resident (each access a hit). */
  private residentStats: ExpertLayerStats[];
  private recorder: RoutingRecorder | undefined;
  /** The streamed expert step, when the routed experts do not all fit. */
  private readonly streamed: StreamedExperts | undefined;

  private constructor(
    private readonly device: GPUDevice,
    readonly config: ModelConfig,
    private readonly weights: GpuModelWeights,
    private readonly kernels: ForwardKernels,
    private readonly state: RunState,
    /** [layers, nExpert] slot refs of the routed experts. */
    private readonly expertTable: GPUBuffer,
    /** [layers, 1] slot refs of each layer's shared expert or dense FFN. */
    private readonly singleTable: GPUBuffer,
    /** The expert cache and predictor, when the routed experts do not all fit. */
    private readonly streaming: ExpertStreaming | undefined,
    private readonly moeLayers: number[],
  ) {
    this.residentStats = Array.from({ length: config.nLayer }, emptyLayerStats);
    if (streaming) this.streamed = new StreamedExperts(device, streaming, { config, weights, kernels, state, moeLayers });
  }

  /** Reads the config and weights of a GGUF file, uploads them and builds every pipeline. */
  static async load(device: GPUDevice, file: GgufFile, source: ByteSource, options: MoeTransformerOptions = {}): Promise<MoeTransformer> {
    const config = modelConfigFromGguf(file);
    // The residual scale is applied in the attention output projection and the routed experts' weights only.
    if (config.scales.residual !== 1 && config.tensors.layers.some((l) => l.attnOutBias !== undefined || l.ffn.kind !== 'moe' || l.ffn.shared)) {
      throw new ModelConfigError('BAD_CONFIG', `${config.arch}: a residual scale with attention output biases, dense FFNs or shared experts is not supported on the GPU`);
    }
    // The logits of a whole batch must fit one binding.
    const maxBatchTokens = Math.min(options.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS, Math.floor(device.limits.maxStorageBufferBindingSize / (config.vocabSize * 4)));
    const maxContext = Math.min(options.maxContext ?? DEFAULT_MAX_CONTEXT, config.contextLength, largestContext(device, config));
    if (!Number.isInteger(maxBatchTokens) || maxBatchTokens < 1) throw new RangeError(`maxBatchTokens must be an integer >= 1, got ${maxBatchTokens}`);
    if (!Number.isInteger(maxContext) || maxContext < 1) throw new RangeError(`maxContext must be an integer >= 1, got ${maxContext}`);
    const maxSlabBindings = Math.min(MAX_SLAB_BINDINGS, device.limits.maxStorageBuffersPerShaderStage - 4);
    const moeLayers = config.tensors.layers.flatMap((l, i) => (l.ffn.kind === 'moe' ? [i] : []));
    const layouts = routedExpertLayouts(file, config);
    const routedBytes = layouts.reduce((sum, l) => sum + (l ? l.slotBytes * config.nExpert : 0), 0);
    const stream = options.expertBudgetBytes !== undefined && options.expertBudgetBytes < routedBytes && moeLayers.length > 0;
    if (stream && layouts.some((l) => l?.biases)) {
      throw new ModelConfigError('BAD_CONFIG', `${config.arch}: streaming experts that have biases is not supported; give an expert budget of at least ${routedBytes} bytes`);
    }
    const weights = await uploadWeights(device, file, source, config, {
      maxBatchTokens, maxSlabBytes: options.maxSlabBytes, maxSlabBindings, skipRoutedExperts: stream,
    });
    let streaming: ExpertStreaming | undefined;
    if (stream) {
      streaming = await createExpertStreaming(device, { file, source, config, layouts, moeLayers, maxSlabBindings }, { ...options, expertBudgetBytes: options.expertBudgetBytes! });
      for (const l of moeLayers) weights.layers[l].experts!.slabs = streaming.cache.slabs;
    }
    const kernels = await createForwardKernels(device, config, weights);
    const maxFfnWidth = Math.max(1, ...weights.layers.flatMap((l) => [l.experts, l.single]).map((e) => e?.layout.ffn ?? 0));
    const state = new RunState(device, config, { maxBatchTokens, maxContext, maxFfnWidth, maxTopK: kernels.sampleTopK.maxK });
    const table = (pick: (l: GpuModelWeights['layers'][number]) => LayerExperts | undefined, width: number): GPUBuffer => {
      const refs: (ExpertSlotRef | undefined)[] = weights.layers.flatMap((l) => pick(l)?.refs ?? Array<undefined>(width).fill(undefined));
      return createStorageBuffer(device, packSlotRefs(refs), 'expert slot table');
    };
    const expertTable = streaming ? streaming.cache.table : table((l) => l.experts, Math.max(1, config.nExpert));
    const singleTable = table((l) => l.single, 1);
    return new MoeTransformer(device, config, weights, kernels, state, expertTable, singleTable, streaming, moeLayers);
  }

  get maxContext(): number {
    return this.state.sizes.maxContext;
  }

  /** The most candidates a top-k output can return. */
  get maxTopK(): number {
    return this.kernels.sampleTopK.maxK;
  }

  get maxBatchTokens(): number {
    return this.state.sizes.maxBatchTokens;
  }

  /** Routed-expert reads so far (tokens x MoE layers x k); all are hits while every expert is resident. */
  get expertAccesses(): number {
    return this.expertAccessCount;
  }

  /** Bytes of weights on the GPU: shared tensors and expert slabs. */
  get weightBytes(): number {
    return this.weights.buffers.reduce((sum, b) => sum + b.size, 0);
  }

  /**
   * Runs `tokens` at positions startPosition.. through the model, writing
   * their keys and values into the KV cache (positions from startPosition on
   * are overwritten), in batches of maxBatchTokens.
   */
  async forward(tokens: readonly number[], startPosition: number, output: ForwardOutput): Promise<ForwardResult> {
    this.checkTokens(tokens, startPosition);
    const rows: Float32Array[] = [];
    let last: ForwardResult = {};
    for (let start = 0; start < tokens.length; start += this.maxBatchTokens) {
      const batch = tokens.slice(start, start + this.maxBatchTokens);
      const isLast = start + batch.length === tokens.length;
      const batchOutput = output === 'all-logits' ? output : isLast ? output : 'none';
      const result = await this.forwardBatch(batch, startPosition + start, batchOutput);
      if (result.logits) rows.push(...result.logits);
      if (isLast) last = result;
    }
    return output === 'all-logits' ? { logits: rows } : last;
  }

  /**
   * One batch of at most maxBatchTokens tokens: embed, every layer, and the
   * requested output. One submission while every expert is resident; when
   * streaming, one more per MoE layer (and per piece of a batch whose
   * experts do not fit at once).
   */
  private async forwardBatch(tokens: readonly number[], startPosition: number, output: ForwardOutput): Promise<ForwardResult> {
    const T = tokens.length;
    const { device, state: s } = this;
    device.queue.writeBuffer(s.ids, 0, Uint32Array.from(tokens));
    device.queue.writeBuffer(s.positions, 0, Uint32Array.from(tokens, (_, t) => startPosition + t));
    const rec = new Recording(device, `forward ${T} tokens at ${startPosition}`);
    if (startPosition === 0) this.streaming?.predictor?.begin();
    this.recorder?.beginBatch(T);
    // While all is resident, a recorded trace copies each layer's routing here: [moe layers, T, 2k] words.
    const k = Math.max(1, this.config.nExpertUsed);
    const traceRouting = this.recorder && !this.streaming
      ? device.createBuffer({ label: 'routing trace', size: this.moeLayers.length * routingBytes(T, k), usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST })
      : undefined;

    // Token embedding: x [T, hidden] = tokenEmbd rows of ids * embedding scale.
    const embd = this.weights.tokenEmbd;
    const scale = this.config.scales.embedding;
    this.kernels.embedding.encode(rec.pass, { table: embd.buffer, ids: s.ids, out: s.x }, { tokens: T, vocab: embd.rows, hidden: embd.cols, scale });

    for (let l = 0; l < this.config.nLayer; l++) {
      this.encodeAttention(rec.pass, l, T, startPosition);
      await this.encodeFfn(rec, l, T, traceRouting);
    }

    // Final norm and output projection: logits [rows, vocab] of the last token or of all, / logit scale.
    const c = this.config;
    this.kernels.rmsNorm.encode(rec.pass, { x: s.x, y: s.xb, weight: this.weights.outputNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });
    const outRows = output === 'all-logits' ? T : 1;
    if (output !== 'none') {
      const xOffset = output === 'all-logits' ? 0 : (T - 1) * c.hidden;
      this.project(rec.pass, this.weights.output, s.xb, s.logits, outRows, { xOffset, scale: Math.fround(1 / c.scales.logit) });
    }
    let readFrom: GPUBuffer | undefined;
    let readBytes = 0;
    if (output === 'argmax') {
      this.kernels.argmax.encode(rec.pass, { values: s.logits, result: s.argmax }, c.vocabSize);
      [readFrom, readBytes] = [s.argmax, 4];
    } else if (typeof output === 'object') {
      const topK = Math.min(output.topK, c.vocabSize);
      this.kernels.sampleTopK.encode(rec.pass, { logits: s.logits, result: s.topK }, { length: c.vocabSize, k: topK, temperature: output.temperature });
      [readFrom, readBytes] = [s.topK, topKResultBytes(topK)];
    } else if (output !== 'none') {
      [readFrom, readBytes] = [s.logits, outRows * c.vocabSize * 4];
    }
    rec.endPass();

    // Read back only what was asked, in the same submission.
    const staging = readFrom && device.createBuffer({ label: 'forward readback', size: readBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (readFrom && staging) rec.encoder.copyBufferToBuffer(readFrom, 0, staging, 0, readBytes);
    const traceStaging = traceRouting && device.createBuffer({ label: 'routing trace readback', size: traceRouting.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (traceRouting && traceStaging) rec.encoder.copyBufferToBuffer(traceRouting, 0, traceStaging, 0, traceRouting.size);
    device.queue.submit([rec.encoder.finish()]);
    this.countBatch(T);
    try {
      if (traceStaging) await this.recordResidentTrace(traceStaging, T);
      this.recorder?.endBatch();
      if (!staging) return {};
      await staging.mapAsync(GPUMapMode.READ);
      const bytes = staging.getMappedRange().slice(0);
      if (output === 'argmax') return { argmax: new Uint32Array(bytes)[0] };
      if (typeof output === 'object') return { candidates: decodeTopKResult(bytes) };
      const all = new Float32Array(bytes);
      return { logits: Array.from({ length: outRows }, (_, r) => all.slice(r * c.vocabSize, (r + 1) * c.vocabSize)) };
    } finally {
      staging?.destroy();
      traceStaging?.destroy();
      traceRouting?.destroy();
    }
  }

  /** Counts a batch's routed accesses; while all is resident, each is a hit. */
  private countBatch(T: number): void {
    const k = this.config.nExpertUsed;
    this.expertAccessCount += T * this.moeLayers.length * k;
    if (this.streaming) {
      this.streaming.tokenCount += T;
      return;
    }
    for (const l of this.moeLayers) {
      this.residentStats[l].accesses += T * k;
      this.residentStats[l].hits += T * k;
    }
  }

  private async recordResidentTrace(staging: GPUBuffer, T: number): Promise<void> {
    await staging.mapAsync(GPUMapMode.READ);
    const words = new Uint32Array(staging.getMappedRange().slice(0));
    const k = Math.max(1, this.config.nExpertUsed);
    const perLayer = routingBytes(T, k) / 4;
    this.moeLayers.forEach((_, i) => {
      const r = unpackRouting(words.subarray(i * perLayer, (i + 1) * perLayer), T, k);
      this.recorder?.setLayer(i, r.ids, r.weights);
    });
  }

  /** Attention sub-block of layer l: x += wo · attention(rope(norm(q, k)), cache) (+ bias). */
  private encodeAttention(pass: GPUComputePassEncoder, l: number, T: number, startPosition: number): void {
    const c = this.config;
    const w = this.weights.layers[l];
    const s = this.state;
    const k = this.kernels;
    const D = c.headDimK;
    const qDim = c.nHead * D;
    const kvDim = c.nHeadKv * D;

    // Input norm: xb [T, hidden] = rmsnorm(x) * attnNorm.
    k.rmsNorm.encode(pass, { x: s.x, y: s.xb, weight: w.attnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

    // Q, K, V projections (+ biases): q [T, qDim], k and v [T, kvDim].
    this.project(pass, w.q, s.xb, s.q, T);
    this.project(pass, w.k, s.xb, s.k, T);
    this.project(pass, w.v, s.xb, s.v, T);
    if (w.qBias) k.add.encode(pass, { y: s.q, b: w.qBias }, { length: T * qDim });
    if (w.kBias) k.add.encode(pass, { y: s.k, b: w.kBias }, { length: T * kvDim });
    if (w.vBias) k.add.encode(pass, { y: s.v, b: w.vBias }, { length: T * kvDim });

    // QK-norm before RoPE: each head on its own (per-head) or the whole projection (whole).
    let q: GPUBuffer = s.q;
    let key: GPUBuffer = s.k;
    if (w.qNorm && w.kNorm) {
      const perHead = c.qkNorm === 'per-head';
      k.rmsNorm.encode(pass, { x: s.q, y: s.qNormed, weight: w.qNorm }, { rows: T * (perHead ? c.nHead : 1), cols: perHead ? D : qDim, eps: c.rmsEps });
      k.rmsNorm.encode(pass, { x: s.k, y: s.kNormed, weight: w.kNorm }, { rows: T * (perHead ? c.nHeadKv : 1), cols: perHead ? D : kvDim, eps: c.rmsEps });
      q = s.qNormed;
      key = s.kNormed;
    }

    // RoPE on q and k at each token's position.
    const rope = ropeParamsOf(c.rope);
    const freqFactors = this.weights.ropeFreqs;
    k.rope.encode(pass, { x: q, positions: s.positions, freqFactors }, { tokens: T, heads: c.nHead, headDim: D }, rope);
    k.rope.encode(pass, { x: key, positions: s.positions, freqFactors }, { tokens: T, heads: c.nHeadKv, headDim: D }, rope);

    // Keys and values into the cache at startPosition.., then causal attention: attOut [T, qDim].
    const cache = { nKvHeads: c.nHeadKv, maxContext: this.maxContext, headDim: D };
    k.kvWrite.encode(pass, { k: key, v: s.v, kCache: s.kCache[l], vCache: s.vCache[l] }, { ...cache, tokens: T, startPosition });
    // The layer's sliding window and sink logits, where it has them.
    const window = c.attentionWindow[l];
    k.attention.encode(pass, { q, kCache: s.kCache[l], vCache: s.vCache[l], out: s.attOut, sinks: w.attnSinks }, { ...cache, nHeads: c.nHead, tokens: T, startPosition, scale: c.scales.attention, window });

    // Output projection added to the residual: x += (wo · attOut) * residual scale (+ bias).
    this.project(pass, w.attnOut, s.attOut, s.x, T, { accumulate: true, scale: c.scales.residual });
    if (w.attnOutBias) k.add.encode(pass, { y: s.x, b: w.attnOutBias }, { length: T * c.hidden });
  }

  /**
   * FFN sub-block of layer l: x += sum_j w_j expert_j(xb) (+ the gated shared
   * expert), or x += dense(xb). May end the recording's pass (the shared
   * expert's routing is filled by buffer copies between passes) or submit it
   * (streaming experts).
   */
  private async encodeFfn(rec: Recording, l: number, T: number, traceRouting: GPUBuffer | undefined): Promise<void> {
    const c = this.config;
    const w = this.weights.layers[l];
    const s = this.state;
    const bindings = this.bindingsFor(T);

    // Input norm: xb [T, hidden] = rmsnorm(x) * ffnNorm.
    this.kernels.rmsNorm.encode(rec.pass, { x: s.x, y: s.xb, weight: w.ffnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

    // Router: routing [T, 2k] (ids and weights) and the shared gate [T].
    const router = bindings.router[l];
    if (router) this.kernels.router(l).encode(rec.pass, router);

    // Routed experts, read through the slot table: x += sum_j w_j down_j(silu(gate_j xb) * up_j xb).
    const experts = bindings.experts[l];
    if (experts && this.streamed) {
      await this.streamed.encodeLayer(rec, l, T, experts, this.recorder);
    } else if (experts) {
      if (traceRouting) {
        rec.endPass();
        rec.encoder.copyBufferToBuffer(s.routing, 0, traceRouting, this.moeLayers.indexOf(l) * routingBytes(T, c.nExpertUsed), routingBytes(T, c.nExpertUsed));
        rec.beginPass();
      }
      layerExpertKernel(this.kernels, w.experts!).encode(rec.pass, experts);
    }

    // Shared expert (weight sigmoid(gate . xb), copied into its routing) or dense FFN (weight 1).
    const single = bindings.single[l];
    if (!single) return;
    if (w.sharedGate) {
      rec.endPass();
      for (let t = 0; t < T; t++) rec.encoder.copyBufferToBuffer(s.sharedGate, t * 4, s.sharedRouting, t * 8 + 4, 4);
      rec.beginPass();
    }
    layerExpertKernel(this.kernels, w.single!).encode(rec.pass, single);
  }

  /** y (+)= scale * W x for T tokens: matvec for one token, matmul for more. */
  private project(pass: GPUComputePassEncoder, m: GpuMatrix, x: BufferRef, y: BufferRef, T: number, opts: { accumulate?: boolean; xOffset?: number; scale?: number } = {}): void {
    const shape = { rows: m.rows, cols: m.cols, xOffset: opts.xOffset ?? 0, accumulate: opts.accumulate ?? false, scale: opts.scale ?? 1 };
    if (T === 1) this.kernels.matvec(m.type).encode(pass, { w: m.buffer, x, y }, shape);
    else this.kernels.matmul(m.type).encode(pass, { w: m.buffer, x, y }, { ...shape, tokens: T });
  }

  /** Router and expert FFN bindings for batches of T tokens (made on first use). */
  private bindingsFor(T: number): BatchBindings {
    let b = this.bindingsByTokens.get(T);
    if (b) return b;
    const c = this.config;
    const s = this.state;
    const k = this.kernels;
    b = { router: [], experts: [], single: [] };
    for (let l = 0; l < c.nLayer; l++) {
      const w = this.weights.layers[l];
      const router = w.router;
      b.router.push(
        router &&
          k.router(l).bind(
            {
              x: s.xb,
              weight: router.buffer,
              logits: s.routerLogits,
              routing: s.routing,
              logitBias: w.routerBias,
              sharedGateWeight: w.sharedGate,
              sharedGate: w.sharedGate ? s.sharedGate : undefined,
            },
            // Granite's residual scale on the FFN output is folded into the routed experts' weights.
            { tokens: T, hidden: c.hidden, nExperts: c.nExpert, topK: c.nExpertUsed, weightScale: c.routing.weightsScale * c.scales.residual },
          ),
      );
      const ffn = (experts: LayerExperts | undefined, routing: GPUBuffer, slots: GPUBuffer, width: number) =>
        experts &&
        layerExpertKernel(k, experts).bind(
          { x: s.xb, y: s.x, routing, slots, hidden: s.ffnHidden, slabs: experts.slabs },
          { tokens: T, nRealExperts: width, layer: l, nExperts: width },
        );
      b.experts.push(ffn(w.experts, s.routing, this.expertTable, c.nExpert));
      b.single.push(ffn(w.single, w.sharedGate ? s.sharedRouting : s.unitRouting, this.singleTable, 1));
    }
    this.bindingsByTokens.set(T, b);
    return b;
  }

  private checkTokens(tokens: readonly number[], startPosition: number): void {
    if (!Number.isInteger(startPosition) || startPosition < 0) throw new RangeError(`startPosition must be an integer >= 0, got ${startPosition}`);
    if (startPosition + tokens.length > this.maxContext) {
      throw new RangeError(`positions up to ${startPosition + tokens.length - 1} exceed the context of ${this.maxContext}`);
    }
    tokens.forEach((token, i) => {
      if (!Number.isInteger(token) || token < 0 || token >= this.config.vocabSize) {
        throw new RangeError(`token ${token} at index ${i} is outside the vocabulary (0..${this.config.vocabSize - 1})`);
      }
    });
  }

  /**
   * Expert telemetry since the last reset, per layer and summed: hits,
   * misses, prefetch precision and recall, bytes streamed, stall ms (see
   * src/experts/cache-stats.ts). While every expert is resident, every access
   * is a hit and nothing streams.
   */
  expertStats(): ExpertCacheStats {
    return this.streaming ? this.streaming.cache.stats() : summarizeStats(this.residentStats, 0);
  }

  resetExpertStats(): void {
    this.streaming?.cache.resetStats();
    this.residentStats = this.residentStats.map(emptyLayerStats);
  }

  /** Where GPU memory goes: shared weights, routed experts (all, or the cache's slots) and the KV cache. */
  memory(): MemoryReport {
    const totalExperts = this.moeLayers.length * this.config.nExpert;
    const slotBytes = this.weights.layers[this.moeLayers[0]]?.experts?.layout.slotBytes ?? 0;
    const weightBytes = this.weightBytes;
    const cache = this.streaming?.cache;
    const expertBytes = cache ? cache.bytes : totalExperts * slotBytes;
    return {
      sharedWeightBytes: cache ? weightBytes : weightBytes - expertBytes,
      expertBytes,
      kvCacheBytes: this.state.kvCacheBytes,
      expertSlots: cache ? cache.capacity : totalExperts,
      totalExperts,
      streaming: cache !== undefined,
    };
  }

  /** Starts recording the routing of every token from now on (MoE layers in order). */
  startRoutingTrace(name = 'webmoe engine'): void {
    const slotBytes = this.weights.layers[this.moeLayers[0]]?.experts?.layout.slotBytes;
    this.recorder = new RoutingRecorder({ name, nLayers: this.moeLayers.length, nExperts: this.config.nExpert, topK: this.config.nExpertUsed, expertBytes: slotBytes });
  }

  /** The routing recorded since `startRoutingTrace` (recording stops), or undefined when none was started. */
  takeRoutingTrace(): RoutingTrace | undefined {
    const trace = this.recorder?.take();
    this.recorder = undefined;
    return trace;
  }

  /** Waits for prefetches still in flight (before measuring, or before destroy). */
  async settleExperts(): Promise<void> {
    await this.streaming?.cache.settle();
  }

  /** Frees every GPU buffer of the model (weights, state, tables, expert cache); the model is unusable afterwards. */
  destroy(): void {
    this.weights.buffers.forEach((b) => b.destroy());
    this.state.destroy();
    if (this.streamed) this.streamed.destroy();
    else this.expertTable.destroy();
    this.singleTable.destroy();
  }
}

/** The most positions a layer's K (or V) cache can hold within one binding on `device`. */
export function largestContext(device: GPUDevice, config: ModelConfig): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return Math.floor(limit / (config.nHeadKv * config.headDimK * 4));
}
