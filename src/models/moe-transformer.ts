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
 * (moe-transformer-experts.ts) holds what fits, and each MoE layer becomes:
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
import { createEmptyStorageBuffer, createStorageBuffer } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { MAX_SLAB_BINDINGS } from '../kernels/expert-ffn';
import type { ExpertFfnBinding } from '../kernels/expert-ffn';
import { packSlotRefs } from '../kernels/expert-slots';
import type { ExpertSlotRef } from '../kernels/expert-slots';
import type { RouterBinding } from '../kernels/router';
import { topKResultBytes } from '../kernels/sample-topk';
import { decodeTopKResult } from '../kernels/sampling';
import type { TopKCandidates } from '../kernels/sampling';
import type { ModelConfig } from './config';
import type { MoeGraphSpec } from './moe-graph';
import { createForwardKernels, layerExpertKernel, ropeParamsOf } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import { RunState } from './moe-transformer-state';
import { routedExpertLayouts, uploadWeights } from './moe-transformer-weights';
import { ExpertStreaming, maskRouting, planPieces } from './moe-transformer-experts';
import type { PrefetchOptions } from './moe-transformer-experts';
import { emptyLayerStats, summarizeStats } from '../experts/cache-stats';
import type { ExpertCacheStats, ExpertLayerStats } from '../experts/cache-stats';
import { ggufExpertSource } from '../experts/expert-source';
import type { ExpertSource, ExpertTensorNames } from '../experts/expert-source';
import type { PolicyName } from '../experts/policies';
import type { ExpertCachePolicy } from '../experts/policy';
import { RoutingRecorder } from '../experts/trace-recorder';
import type { RoutingTrace } from '../experts/trace';
import { routingBytes, unpackRouting } from '../kernels/router';
import { layoutKey } from './moe-transformer-weights';
import { ModelConfigError } from './config';
import type { GpuMatrix, GpuModelWeights, LayerExperts } from './moe-transformer-weights';
import { modelConfigFromGguf, moeArchitectureFor } from './registry';

export interface MoeTransformerOptions {
  /** Positions the KV cache holds; default min(model context, 4096). */
  maxContext?: number;
  /** Most tokens per forward submission (prefill is cut into batches of this); default 32. */
  maxBatchTokens?: number;
  /** Largest expert slab buffer; default min(128 MiB, device limits). */
  maxSlabBytes?: number;
  /**
   * GPU bytes for routed experts (fixed-size slots). Default, or at least
   * what they all take: all resident. Less: an expert cache streams them from
   * `expertSource`; at least top-k experts (plus pinned ones) must fit.
   */
  expertBudgetBytes?: number;
  /** Where missing experts are read (default: the GGUF source given to `load`); e.g. `storedExpertSource` over the WeightStore. */
  expertSource?: ExpertSource;
  /** Replacement policy of the expert cache: a name or a factory (default 'lru'). */
  expertPolicy?: PolicyName | ((capacity: number) => ExpertCachePolicy);
  /** Experts kept resident for good when streaming (hot experts). */
  pinnedExperts?: readonly { layer: number; expert: number }[];
  /** Prefetch of predicted experts when streaming (default none). */
  prefetch?: PrefetchOptions;
  /** Expert reads in flight at once when streaming (default 4). */
  expertLoadConcurrency?: number;
}

/** Where GPU memory goes: shared weights, routed experts, KV cache (bytes). */
export interface MemoryReport {
  /** Non-expert weights, shared experts and dense FFNs. */
  sharedWeightBytes: number;
  /** Routed experts: all of them, or the expert cache's slots. */
  expertBytes: number;
  kvCacheBytes: number;
  /** Routed experts resident at once / in the model. */
  expertSlots: number;
  totalExperts: number;
  /** Whether experts stream through a cache (false: all resident). */
  streaming: boolean;
}

/**
 * What a forward call reads back: nothing, the last token's logits, every
 * token's logits, the last token's argmax, or its `topK` best candidates
 * (logits / temperature, with the log-sum-exp) for sampling.
 */
export type ForwardOutput = 'none' | 'last-logits' | 'all-logits' | 'argmax' | TopKOutput;

export interface TopKOutput {
  /** 1..maxTopK candidates. */
  topK: number;
  /** > 0. */
  temperature: number;
}

export interface ForwardResult {
  /** [rows][vocab]: one row ('last-logits') or one per token ('all-logits'). */
  logits?: Float32Array[];
  /** Id of the largest logit of the last token ('argmax'). */
  argmax?: number;
  /** The last token's best candidates (a TopKOutput). */
  candidates?: TopKCandidates;
}

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
  /** Pre-gate router bindings by target layer and distance (decode only). */
  private readonly pregateBindings = new Map<string, RouterBinding>();
  private expertAccessCount = 0;
  /** Counters while every expert is resident (each access a hit). */
  private residentStats: ExpertLayerStats[];
  private recorder: RoutingRecorder | undefined;
  /** [lookahead] routing buffers the pre-gate writes, [1, 2k] words each. */
  private readonly pregateRouting: GPUBuffer[] = [];
  private readonly pregateScratch: GPUBuffer | undefined;

  private constructor(
    private readonly device: GPUDevice,
    readonly config: ModelConfig,
    readonly spec: MoeGraphSpec,
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
    if (streaming?.config.prefetch?.predictor === 'pregate') {
      const k = Math.max(1, config.nExpertUsed);
      for (let d = 0; d < streaming.lookahead; d++) this.pregateRouting.push(createEmptyStorageBuffer(device, routingBytes(1, k), `pre-gate routing ${d + 1}`));
      this.pregateScratch = createEmptyStorageBuffer(device, 4 * state.sizes.maxBatchTokens, 'pre-gate shared gate');
    }
  }

  /** Reads the config and weights of a GGUF file, uploads them and builds every pipeline. */
  static async load(device: GPUDevice, file: GgufFile, source: ByteSource, options: MoeTransformerOptions = {}): Promise<MoeTransformer> {
    const config = modelConfigFromGguf(file);
    const spec = moeArchitectureFor(config.arch).graph(config);
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
    const weights = await uploadWeights(device, file, source, config, {
      maxBatchTokens, maxSlabBytes: options.maxSlabBytes, maxSlabBindings, skipRoutedExperts: stream,
    });
    let streaming: ExpertStreaming | undefined;
    if (stream) {
      const layout = layouts[moeLayers[0]]!;
      if (moeLayers.some((l) => layoutKey(layouts[l]!) !== layoutKey(layout))) {
        throw new ModelConfigError('BAD_CONFIG', 'streaming experts needs every MoE layer to share one expert slot layout');
      }
      const names = new Map<number, ExpertTensorNames>();
      for (const l of moeLayers) {
        const ffn = config.tensors.layers[l].ffn;
        if (ffn.kind === 'moe') names.set(l, { gate: ffn.gateExps, up: ffn.upExps, down: ffn.downExps });
      }
      streaming = await ExpertStreaming.create(device, {
        layout,
        nLayers: config.nLayer,
        nExperts: config.nExpert,
        topK: config.nExpertUsed,
        moeLayers,
        budgetBytes: options.expertBudgetBytes!,
        policy: options.expertPolicy ?? 'lru',
        source: options.expertSource ?? ggufExpertSource(file, source, names, config.nExpert),
        slabLimitBytes: Math.min(options.maxSlabBytes ?? 128 * 1024 * 1024, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
        maxSlabBindings,
        pinned: options.pinnedExperts ?? [],
        prefetch: options.prefetch,
        loadConcurrency: options.expertLoadConcurrency,
      });
      for (const l of moeLayers) weights.layers[l].experts!.slabs = streaming.cache.slabs;
    }
    const kernels = await createForwardKernels(device, config, spec, weights);
    const maxFfnWidth = Math.max(1, ...weights.layers.flatMap((l) => [l.experts, l.single]).map((e) => e?.layout.ffn ?? 0));
    const state = new RunState(device, config, { maxBatchTokens, maxContext, maxFfnWidth, maxTopK: kernels.sampleTopK.maxK });
    const table = (pick: (l: GpuModelWeights['layers'][number]) => LayerExperts | undefined, width: number): GPUBuffer => {
      const refs: (ExpertSlotRef | undefined)[] = weights.layers.flatMap((l) => pick(l)?.refs ?? Array<undefined>(width).fill(undefined));
      return createStorageBuffer(device, packSlotRefs(refs), 'expert slot table');
    };
    const expertTable = streaming ? streaming.cache.table : table((l) => l.experts, Math.max(1, config.nExpert));
    const singleTable = table((l) => l.single, 1);
    return new MoeTransformer(device, config, spec, weights, kernels, state, expertTable, singleTable, streaming, moeLayers);
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

    // Token embedding: x [T, hidden] = tokenEmbd rows of ids.
    const embd = this.weights.tokenEmbd;
    this.kernels.embedding.encode(rec.pass, { table: embd.buffer, ids: s.ids, out: s.x }, { tokens: T, vocab: embd.rows, hidden: embd.cols });

    for (let l = 0; l < this.config.nLayer; l++) {
      this.encodeAttention(rec.pass, l, T, startPosition);
      await this.encodeFfn(rec, l, T, traceRouting);
    }

    // Final norm and output projection: logits [rows, vocab] of the last token or of all.
    const c = this.config;
    this.kernels.rmsNorm.encode(rec.pass, { x: s.x, y: s.xb, weight: this.weights.outputNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });
    const outRows = output === 'all-logits' ? T : 1;
    if (output !== 'none') {
      const xOffset = output === 'all-logits' ? 0 : (T - 1) * c.hidden;
      this.project(rec.pass, this.weights.output, s.xb, s.logits, outRows, { xOffset });
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
      const perHead = this.spec.qkNorm === 'per-head';
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
    k.attention.encode(pass, { q, kCache: s.kCache[l], vCache: s.vCache[l], out: s.attOut }, { ...cache, nHeads: c.nHead, tokens: T, startPosition });

    // Output projection added to the residual: x += wo · attOut (+ bias).
    this.project(pass, w.attnOut, s.attOut, s.x, T, { accumulate: true });
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
    if (experts && this.streaming) {
      await this.streamExperts(rec, l, T, experts);
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

  /**
   * Routed experts of layer l through the expert cache: the pre-gate guesses
   * for the next layers are computed with the router, the routing (and
   * guesses) read back, prefetch started, the layer's experts made resident,
   * and the FFN submitted, in pieces of tokens when they do not fit at once.
   */
  private async streamExperts(rec: Recording, l: number, T: number, experts: ExpertFfnBinding): Promise<void> {
    const streaming = this.streaming!;
    const { cache } = streaming;
    const s = this.state;
    const k = this.config.nExpertUsed;
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
    this.recorder?.setLayer(index, routing.ids, routing.weights);

    // Predictions for the next layers (decode only): pre-gate ids, or affinity learned so far.
    const predictions: { layer: number; experts: number[] }[] = [];
    pregate.forEach((p, i) => {
      const ids = Array.from(unpackRouting(words.subarray((bytes + i * routingBytes(1, k)) / 4), 1, k).ids).slice(0, streaming.width);
      predictions.push({ layer: p.layer, experts: ids });
      this.recorder?.setPredicted(0, streaming.moeIndex[p.layer], ids);
    });
    const predictor = streaming.predictor;
    if (predictor && decode) {
      const from = { token: streaming.tokenCount, layer: index };
      predictor.observe(from.token, from.layer, Array.from(routing.ids));
      const n = this.moeLayers.length;
      for (let d = 1; d <= streaming.lookahead; d++) {
        const flat = index + d;
        const target = { token: from.token + Math.floor(flat / n), layer: flat % n };
        predictions.push({ layer: this.moeLayers[target.layer], experts: predictor.predict(from, target, streaming.width) });
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
      layerExpertKernel(this.kernels, this.weights.layers[l].experts!).encode(rec.pass, experts);
      rec.submit();
      cache.release();
    }
    if (predictor && !decode) for (let t = 0; t < T; t++) predictor.observe(streaming.tokenCount + t, index, Array.from(routing.ids.subarray(t * k, (t + 1) * k)));
  }

  /** Pre-gating: the routers of the next `lookahead` MoE layers applied to this layer's FFN input xb. */
  private encodePregate(pass: GPUComputePassEncoder, l: number): { layer: number; buffer: GPUBuffer }[] {
    const streaming = this.streaming!;
    const index = streaming.moeIndex[l];
    const out: { layer: number; buffer: GPUBuffer }[] = [];
    for (let d = 1; d <= streaming.lookahead && index + d < this.moeLayers.length; d++) {
      const target = this.moeLayers[index + d];
      const key = `${target}/${d}`;
      let binding = this.pregateBindings.get(key);
      if (!binding) {
        const w = this.weights.layers[target];
        const s = this.state;
        binding = this.kernels.router(target).bind(
          {
            x: s.xb,
            weight: w.router!.buffer,
            logits: s.routerLogits,
            routing: this.pregateRouting[d - 1],
            sharedGateWeight: w.sharedGate,
            sharedGate: w.sharedGate ? this.pregateScratch : undefined,
          },
          { tokens: 1, hidden: this.config.hidden, nExperts: this.config.nExpert, topK: this.config.nExpertUsed },
        );
        this.pregateBindings.set(key, binding);
      }
      this.kernels.router(target).encode(pass, binding);
      out.push({ layer: target, buffer: this.pregateRouting[d - 1] });
    }
    return out;
  }

  /** y (+)= W x for T tokens: matvec for one token, matmul for more. */
  private project(pass: GPUComputePassEncoder, m: GpuMatrix, x: BufferRef, y: BufferRef, T: number, opts: { accumulate?: boolean; xOffset?: number } = {}): void {
    const shape = { rows: m.rows, cols: m.cols, xOffset: opts.xOffset ?? 0, accumulate: opts.accumulate ?? false };
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
              sharedGateWeight: w.sharedGate,
              sharedGate: w.sharedGate ? s.sharedGate : undefined,
            },
            { tokens: T, hidden: c.hidden, nExperts: c.nExpert, topK: c.nExpertUsed },
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
    if (this.streaming) this.streaming.destroy();
    else this.expertTable.destroy();
    this.singleTable.destroy();
    this.pregateRouting.forEach((b) => b.destroy());
    this.pregateScratch?.destroy();
  }
}

/** A command encoder and its open compute pass, restarted between passes and submissions. */
class Recording {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder;
  private passEnded = false;

  constructor(private readonly device: GPUDevice, private readonly label: string) {
    this.encoder = device.createCommandEncoder({ label });
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
  }

  endPass(): void {
    this.pass.end();
    this.passEnded = true;
  }

  /** Opens a new pass in the same encoder (after the previous one was ended). */
  beginPass(): void {
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
    this.passEnded = false;
  }

  /** Submits what was recorded (ending the open pass if `pass` is still open) and starts anew. */
  submit(): void {
    if (!this.passEnded) this.pass.end();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = this.device.createCommandEncoder({ label: this.label });
    this.beginPass();
  }
}

/** The most positions a layer's K (or V) cache can hold within one binding on `device`. */
export function largestContext(device: GPUDevice, config: ModelConfig): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return Math.floor(limit / (config.nHeadKv * config.headDimK * 4));
}
