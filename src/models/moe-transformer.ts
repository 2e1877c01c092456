/**
 * The forward pass of a Mixture-of-Experts decoder on the GPU, written with
 * the kernels of src/kernels and shared by every supported architecture:
 * what differs between them is data in the ModelConfig (src/models/archs).
 *
 * One `forward` call runs a batch of tokens (one for a decode step, many for
 * prefill) at consecutive positions through every layer, recorded into one
 * command encoder; only what the caller asks for comes back (the logits of
 * the last or every token, or just the argmax id). Routed experts belong to
 * the expert scheduler (src/experts/scheduler.ts): all resident, read through
 * a slot table on the GPU with one submission per batch, or streamed through
 * an expert cache, with a submission per MoE layer. The pass below is the
 * same either way, and so are its outputs. A batch of several tokens
 * (prefill) gathers its routed pairs by expert on the GPU and reads each
 * expert's weights once per group of its tokens; one token (decode) reads
 * its k experts through the table directly. Both give the same bits.
 */

import type { ByteSource } from '../gguf/source';
import type { GgufFile } from '../gguf/types';
import { createStorageBuffer } from '../gpu/buffers';
import { costCounterOf, writeBufferCounted } from '../gpu/cost-counter';
import type { CostCounter } from '../gpu/cost-counter';
import { UniformArena } from '../gpu/uniform-arena';
import { Recording } from '../gpu/recording';
import { MAX_SLAB_BINDINGS } from '../kernels/expert-ffn';
import type { ExpertFfnBinding } from '../kernels/expert-ffn';
import { countGroups, MAX_GROUP_LIST_EXPERTS } from '../kernels/expert-group-list';
import { packSlotRefs } from '../kernels/expert-slots';
import { routingKnobsProblem } from '../kernels/router';
import type { RouterBinding, RoutingKnobs } from '../kernels/router';
import { SampleTopKKernel, topKResultBytes } from '../kernels/sample-topk';
import { decodeTopKResult } from '../kernels/sampling';
import type { ExpertCacheStats } from '../experts/cache-stats';
import { ResidentExperts } from '../experts/resident-scheduler';
import type { ExpertScheduler, SchedulerModel } from '../experts/scheduler';
import { StreamingExperts } from '../experts/streaming-scheduler';
import type { RoutingTrace, TokenRouting } from '../experts/trace';
import { ModelConfigError } from './config';
import type { ModelConfig } from './config';
import { StandardAttention } from './moe-transformer-attention';
import type { AttentionBlock } from './moe-transformer-attention';
import { LatentAttention } from './moe-transformer-latent';
import { createForwardKernels, projectRowSplit } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import { RunState } from './moe-transformer-state';
import type { ForwardOutput, ForwardResult, MemoryReport, MoeTransformerOptions } from './moe-transformer-types';
import { checkSlotFits, fileExpertSource, routedExpertLayouts, uploadWeights } from './moe-transformer-weights';
import type { GpuModelWeights } from './moe-transformer-weights';
import { checkGpuReadable } from './gpu-readable';
import { modelConfigFromGguf } from './registry';

export type { ForwardOutput, ForwardResult, MemoryReport, MoeTransformerOptions, TopKOutput } from './moe-transformer-types';

const DEFAULT_MAX_CONTEXT = 4096;
const DEFAULT_MAX_BATCH_TOKENS = 128;
/**
 * Most logits rows kept on the GPU: only 'all-logits' (perplexity, the logits
 * CLI) returns more than one row per batch, so its batches are cut to this
 * rather than holding [maxBatchTokens, vocab] floats (77 MB for a 150k
 * vocabulary at 128 tokens) for every model.
 */
const MAX_LOGIT_ROWS = 32;
const DEFAULT_MAX_SLAB_BYTES = 128 * 1024 * 1024;

/** Bindings that depend on the batch size, made once per size. */
interface BatchBindings {
  router: (RouterBinding | undefined)[];
  experts: (ExpertFfnBinding | undefined)[];
  single: (ExpertFfnBinding | undefined)[];
}

/**
 * Batch sizes whose router and FFN bindings are kept: decode's 1 and a few
 * prompt chunk sizes; each size holds a few uniform buffers per layer, so an
 * unbounded cache would grow with every new prompt length.
 */
const MAX_BATCH_BINDINGS = 4;

export class MoeTransformer {
  private readonly bindingsByTokens = new Map<number, BatchBindings>();
  /** Pre-gate router bindings by target layer and output buffer. */
  private readonly pregateBindings = new Map<string, RouterBinding>();
  private readonly pregateScratch: GPUBuffer;
  /** The routers' knobs (MoeTransformerOptions.routing), set once at load. */
  private routingKnobs: RoutingKnobs = {};
  /** Every dispatch's parameters, written once per submission (kept across batches). */
  private readonly uniforms: UniformArena;

  private constructor(
    private readonly device: GPUDevice,
    readonly config: ModelConfig,
    private readonly weights: GpuModelWeights,
    private readonly kernels: ForwardKernels,
    private readonly state: RunState,
    private readonly experts: ExpertScheduler,
    /** [layers, 1] slot refs of each layer's shared expert or dense FFN. */
    private readonly singleTable: GPUBuffer,
    /** The attention sub-block (standard, or latent), with its KV cache. */
    private readonly attention: AttentionBlock,
    /** Whether batches of several tokens run the routed experts grouped by expert. */
    private readonly groupedPrefill: boolean,
  ) {
    this.pregateScratch = createStorageBuffer(device, new Uint32Array(2), 'pre-gate shared routing');
    this.uniforms = new UniformArena(device, 'forward params');
  }

  /** Reads the config and weights of a GGUF file, uploads them and builds every pipeline. */
  static async load(device: GPUDevice, file: GgufFile, source: ByteSource, options: MoeTransformerOptions = {}): Promise<MoeTransformer> {
    const config = modelConfigFromGguf(file);
    checkGpuReadable(file, config);
    // The residual scale is folded into the attention output projection and bias, the routed experts' weights and the
    // single experts' unit routing; a sigmoid-gated shared expert would need it in its gate (no architecture has both).
    if (config.scales.residual !== 1 && config.routing.sharedExpertGate === 'sigmoid') {
      throw new ModelConfigError('BAD_CONFIG', `${config.arch}: a residual scale with a sigmoid-gated shared expert is not supported on the GPU`);
    }
    const maxBatchTokens = options.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS;
    // The logits rows must fit one binding.
    const logitRows = Math.min(maxBatchTokens, MAX_LOGIT_ROWS, Math.floor(device.limits.maxStorageBufferBindingSize / (config.vocabSize * 4)));
    const maxContext = Math.min(options.maxContext ?? DEFAULT_MAX_CONTEXT, config.contextLength, largestContext(device, config));
    if (!Number.isInteger(maxBatchTokens) || maxBatchTokens < 1) throw new RangeError(`maxBatchTokens must be an integer >= 1, got ${maxBatchTokens}`);
    if (logitRows < 1) throw new RangeError(`a row of ${config.vocabSize} logits does not fit one storage binding on this device`);
    if (!Number.isInteger(maxContext) || maxContext < 1) throw new RangeError(`maxContext must be an integer >= 1, got ${maxContext}`);
    const knobsProblem = routingKnobsProblem(options.routing);
    if (knobsProblem) throw new RangeError(`routing: ${knobsProblem}`);
    const slabLimitBytes = Math.min(options.maxSlabBytes ?? DEFAULT_MAX_SLAB_BYTES, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    const maxWeight = options.maxWeightBindingBytes;
    if (maxWeight !== undefined && (!Number.isInteger(maxWeight) || maxWeight < 4)) {
      throw new RangeError(`maxWeightBindingBytes must be an integer >= 4, got ${maxWeight}`);
    }
    const bindingLimitBytes = Math.min(maxWeight ?? Infinity, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    const maxSlabBindings = Math.min(MAX_SLAB_BINDINGS, device.limits.maxStorageBuffersPerShaderStage - 4);
    const moeLayers = config.tensors.layers.flatMap((l, i) => (l.ffn.kind === 'moe' ? [i] : []));
    const layouts = routedExpertLayouts(file, config);
    for (const layout of layouts) if (layout) checkSlotFits(layout, slabLimitBytes);
    const routedBytes = layouts.reduce((sum, l) => sum + (l ? l.slotBytes * config.nExpert : 0), 0);
    const budget = options.expertBudgetBytes;
    const stream = budget !== undefined && budget < routedBytes && moeLayers.length > 0;

    const weights = await uploadWeights(device, file, source, config, { maxBatchTokens, slabLimitBytes, bindingLimitBytes });
    const sampleTopK = await SampleTopKKernel.create(device);
    const maxFfnWidth = Math.max(1, ...layouts.map((l) => l?.ffn ?? 0), ...weights.layers.map((l) => l.single?.layout.ffn ?? 0));
    // Grouping needs a batch of several tokens, and a layer's experts counted in the group list's workgroup memory.
    const groupedPrefill = (options.groupedPrefill ?? true) && maxBatchTokens > 1 && config.nExpert <= MAX_GROUP_LIST_EXPERTS;
    const state = new RunState(device, config, { maxBatchTokens, logitRows, grouped: groupedPrefill, maxContext, maxFfnWidth, maxTopK: sampleTopK.maxK });
    let self: MoeTransformer | undefined;
    const schedulerModel: SchedulerModel = {
      nLayer: config.nLayer,
      nExpert: config.nExpert,
      topK: config.nExpertUsed,
      moeLayers,
      layouts,
      routing: state.routing,
      fileSource: fileExpertSource(file, source, config),
      slabLimitBytes,
      maxSlabBindings,
      encodeRouter: (pass, target, out) => self!.encodePregate(pass, target, out),
    };
    const experts = stream
      ? await StreamingExperts.create(device, schedulerModel, { ...options, expertBudgetBytes: budget })
      : await ResidentExperts.create(device, schedulerModel);
    const routed = layouts.map((layout, l) => layout && { layout, slabCount: experts.slabsOf(l).length });
    const kernels = await createForwardKernels(device, config, weights, routed, sampleTopK, groupedPrefill);
    const singleTable = createStorageBuffer(device, packSlotRefs(weights.layers.map((l) => l.single?.ref)), 'single expert slot table');
    const context = { config, weights, kernels, state };
    const attention = config.latent ? await LatentAttention.create(device, context) : await StandardAttention.create(device, context);
    self = new MoeTransformer(device, config, weights, kernels, state, experts, singleTable, attention, groupedPrefill);
    self.routingKnobs = { ...options.routing };
    return self;
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

  /** Bytes of weights on the GPU: shared tensors, single experts and routed-expert slots. */
  get weightBytes(): number {
    return this.weights.buffers.reduce((sum, b) => sum + b.size, 0) + this.experts.memory().expertBytes;
  }

  /**
   * Runs `tokens` at positions startPosition.. through the model, writing
   * their keys and values into the KV cache (positions from startPosition on
   * are overwritten), in batches of maxBatchTokens ('all-logits': of the
   * logits rows the GPU holds).
   */
  async forward(tokens: readonly number[], startPosition: number, output: ForwardOutput): Promise<ForwardResult> {
    this.checkTokens(tokens, startPosition);
    const rows: Float32Array[] = [];
    let last: ForwardResult = {};
    const step = output === 'all-logits' ? this.state.sizes.logitRows : this.maxBatchTokens;
    for (let start = 0; start < tokens.length; start += step) {
      const batch = tokens.slice(start, start + step);
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
   * requested output, read back in the batch's last submission.
   */
  private async forwardBatch(tokens: readonly number[], startPosition: number, output: ForwardOutput): Promise<ForwardResult> {
    // JS encode time runs from here to the last submission; submits and the awaits on the GPU or the store are left out.
    const cost = costCounterOf(this.device);
    cost.startEncode();
    try {
      return await this.recordBatch(tokens, startPosition, output, cost);
    } finally {
      cost.stopEncode();
    }
  }

  /** forwardBatch's work, with the clock of `cost` open until the last submission. */
  private async recordBatch(tokens: readonly number[], startPosition: number, output: ForwardOutput, cost: CostCounter): Promise<ForwardResult> {
    const T = tokens.length;
    const { device, state: s, config: c } = this;
    writeBufferCounted(device, s.ids, 0, Uint32Array.from(tokens));
    writeBufferCounted(device, s.positions, 0, Uint32Array.from(tokens, (_, t) => startPosition + t));
    const rec = new Recording(device, `forward ${T} tokens at ${startPosition}`, this.uniforms);
    this.experts.beginBatch(T, startPosition);

    // Token embedding: x [T, hidden] = tokenEmbd rows of ids * embedding scale, one lookup per piece of the table.
    const embd = this.weights.tokenEmbd;
    for (const piece of embd.pieces) {
      const shape = { tokens: T, vocab: embd.rows, firstRow: piece.firstRow, rows: piece.rows, hidden: embd.cols, scale: c.scales.embedding };
      this.kernels.embedding.encode(rec.pass, { table: piece.buffer, ids: s.ids, out: s.x }, shape);
    }

    for (let l = 0; l < c.nLayer; l++) {
      this.attention.encode(rec.pass, l, T, startPosition);
      await this.encodeFfn(rec, l, T);
    }

    // Final norm and output projection: logits [rows, vocab] of the last token or of all, / logit scale.
    this.kernels.rmsNorm.encode(rec.pass, { x: s.x, y: s.xb, weight: this.weights.outputNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });
    const outRows = output === 'all-logits' ? T : 1;
    if (output !== 'none') {
      const xOffset = output === 'all-logits' ? 0 : (T - 1) * c.hidden;
      projectRowSplit(this.kernels, rec.pass, this.weights.output, s.xb, s.logits, outRows, { xOffset, scale: Math.fround(1 / c.scales.logit) });
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
    this.experts.encodeBatchEnd(rec.encoder);
    rec.finish();
    cost.stopEncode();
    try {
      await this.experts.finishBatch();
      if (!staging) return {};
      await cost.roundTrip(staging.mapAsync(GPUMapMode.READ));
      const bytes = staging.getMappedRange().slice(0);
      if (output === 'argmax') return { argmax: new Uint32Array(bytes)[0] };
      if (typeof output === 'object') return { candidates: decodeTopKResult(bytes) };
      const all = new Float32Array(bytes);
      return { logits: Array.from({ length: outRows }, (_, r) => all.slice(r * c.vocabSize, (r + 1) * c.vocabSize)) };
    } finally {
      staging?.destroy();
    }
  }

  /**
   * FFN sub-block of layer l: x += sum_j w_j expert_j(xb) (+ the shared
   * expert, weighted by its gate), or x += dense(xb). The routed experts run
   * through the scheduler, which may submit (streaming).
   */
  private async encodeFfn(rec: Recording, l: number, T: number): Promise<void> {
    const c = this.config;
    const w = this.weights.layers[l];
    const s = this.state;
    const bindings = this.bindingsFor(T);

    // Input norm: xb [T, hidden] = rmsnorm(x) * ffnNorm.
    this.kernels.rmsNorm.encode(rec.pass, { x: s.x, y: s.xb, weight: w.ffnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

    // Router: routing [T, 2k] (ids and weights), and the shared expert's routing [T, 2] (id 0, its gate).
    const router = bindings.router[l];
    if (router) this.kernels.router(l).encode(rec.pass, router);

    // Routed experts, read through the slot table: x += sum_j w_j down_j(silu(gate_j xb) * up_j xb).
    // A batch of several tokens is gathered by expert on the GPU first, so each expert's weights are read once per tile of tokens.
    const experts = bindings.experts[l];
    if (experts) {
      await this.experts.runLayer(rec, l, T, (pass, liveTokens, liveIds) => {
        if (!this.grouped(T)) return this.kernels.routedFfn(l).encode(pass, experts, undefined, liveTokens);
        const ffn = this.kernels.routedFfnGrouped(l);
        const shape = { tokens: T, topK: c.nExpertUsed, nExperts: c.nExpert, layer: l, tile: ffn.pairTile };
        const bound = this.kernels.groupList().encode(pass, { routing: s.routing, table: this.experts.table, list: s.groupList }, shape);
        // The grid (and the weight bytes counted) is the exact group count where the scheduler read the routing back
        // (masked tokens form no groups), else the list's bound.
        const groups = liveIds ? countGroups(liveIds, c.nExpert, ffn.pairTile) : bound;
        ffn.encode(pass, experts, groups, liveTokens);
      });
    }

    // Shared expert or dense FFN, as one expert.
    const single = bindings.single[l];
    if (single) this.kernels.singleFfn(l).encode(rec.pass, single);
  }

  private grouped(T: number): boolean {
    return T > 1 && this.groupedPrefill;
  }

  /** Pre-gating (for the streaming scheduler): MoE layer `target`'s router on the current xb, one token, into `out`. */
  private encodePregate(pass: GPUComputePassEncoder, target: number, out: GPUBuffer): void {
    const key = `${target}/${out.label}`;
    let binding = this.pregateBindings.get(key);
    if (!binding) {
      const w = this.weights.layers[target];
      const s = this.state;
      binding = this.kernels.router(target).bind(
        {
          x: s.xb,
          weight: w.router!.buffer,
          logits: s.routerLogits,
          routing: out,
          logitBias: w.routerBias,
          selectionBias: w.selectionBias,
          sharedGateWeight: w.sharedGate,
          sharedGate: w.sharedGate ? this.pregateScratch : undefined,
        },
        { tokens: 1, hidden: this.config.hidden, nExperts: this.config.nExpert, topK: this.config.nExpertUsed, knobs: this.routingKnobs },
      );
      this.pregateBindings.set(key, binding);
    }
    this.kernels.router(target).encode(pass, binding);
  }


  /** Router and expert FFN bindings for batches of T tokens (made on first use). */
  private bindingsFor(T: number): BatchBindings {
    let b = this.bindingsByTokens.get(T);
    if (b) {
      // Most recently used last: the oldest batch size is the one to drop.
      this.bindingsByTokens.delete(T);
      this.bindingsByTokens.set(T, b);
      return b;
    }
    if (this.bindingsByTokens.size >= MAX_BATCH_BINDINGS) {
      // Every batch recorded with them has been submitted: destroyed buffers live until the GPU is done.
      const [oldest, evicted] = this.bindingsByTokens.entries().next().value as [number, BatchBindings];
      this.bindingsByTokens.delete(oldest);
      [...evicted.router, ...evicted.experts, ...evicted.single].forEach((binding) => destroyUniforms(binding));
    }
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
              selectionBias: w.selectionBias,
              sharedGateWeight: w.sharedGate,
              sharedGate: w.sharedGate ? s.sharedRouting : undefined,
            },
            // Granite's residual scale on the FFN output is folded into the routed experts' weights.
            {
              tokens: T, hidden: c.hidden, nExperts: c.nExpert, topK: c.nExpertUsed,
              weightScale: c.routing.weightsScale * c.scales.residual, knobs: this.routingKnobs,
            },
          ),
      );
      const buffers = { x: s.xb, y: s.x, hidden: s.ffnHidden };
      const routed = () => ({ ...buffers, routing: s.routing, slabs: this.experts.slabsOf(l) });
      b.experts.push(
        router &&
          (!this.grouped(T)
            ? k.routedFfn(l).bind({ ...routed(), slots: this.experts.table }, { tokens: T, nRealExperts: c.nExpert, layer: l, nExperts: c.nExpert })
            : k.routedFfnGrouped(l).bind({ ...routed(), slots: s.groupList, pairOutput: s.pairOutput }, { tokens: T, nRealExperts: c.nExpert })),
      );
      b.single.push(
        w.single &&
          k.singleFfn(l).bind(
            { ...buffers, routing: w.sharedGate ? s.sharedRouting : s.unitRouting, slots: this.singleTable, slabs: w.single.slabs },
            { tokens: T, nRealExperts: 1, layer: l, nExperts: 1 },
          ),
      );
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
    return this.experts.stats();
  }

  resetExpertStats(): void {
    this.experts.resetStats();
  }

  /** Where GPU memory goes: shared weights, routed experts (all, or the cache's slots) and the KV cache. */
  memory(): MemoryReport {
    const experts = this.experts.memory();
    return {
      sharedWeightBytes: this.weights.buffers.reduce((sum, b) => sum + b.size, 0),
      ...experts,
      moeLayers: this.config.tensors.layers.flatMap((layer, l) => (layer.ffn.kind === 'moe' ? [l] : [])),
      expertsPerLayer: this.config.nExpert,
      expertsPerToken: this.config.nExpertUsed,
      kvCacheBytes: this.attention.kvCacheBytes,
      streaming: this.experts.streaming,
    };
  }

  /** Starts recording the routing of every token from now on (MoE layers in order). */
  startRoutingTrace(name = 'webmoe engine'): void {
    this.experts.startTrace(name);
  }

  /** The routing recorded since `startRoutingTrace` (recording stops), or undefined when none was started. */
  takeRoutingTrace(): RoutingTrace | undefined {
    return this.experts.takeTrace();
  }

  /**
   * Starts a live record of every token's routing (MoE layers in order),
   * beside any trace: `drainRouting` hands over what each forward call ran.
   * While every expert is resident this adds a copy and a readback of the
   * routing to each batch; streaming reads it back anyway.
   */
  startRoutingStream(): void {
    this.experts.startRoutingStream();
  }

  /** The tokens run since the last drain (or startRoutingStream), in position order, each with its routing. */
  drainRouting(): TokenRouting[] {
    return this.experts.drainRoutingStream();
  }

  stopRoutingStream(): void {
    this.experts.stopRoutingStream();
  }

  /** Routed experts resident in GPU memory now: per MoE layer (memory().moeLayers), ascending ids. */
  residentExperts(): number[][] {
    return this.experts.residentExperts();
  }

  /** Waits for prefetches still in flight (before measuring, or before destroy). */
  async settleExperts(): Promise<void> {
    await this.experts.settle();
  }

  /** Frees every GPU buffer of the model (weights, state, tables, experts); the model is unusable afterwards. */
  destroy(): void {
    this.weights.buffers.forEach((b) => b.destroy());
    this.state.destroy();
    this.experts.destroy();
    this.singleTable.destroy();
    this.pregateScratch.destroy();
    this.attention.destroy();
    this.uniforms.destroy();
    this.kernels.argmax.destroy();
    this.kernels.sampleTopK.destroy();
    for (const b of this.bindingsByTokens.values()) [...b.router, ...b.experts, ...b.single].forEach((binding) => destroyUniforms(binding));
    for (const binding of this.pregateBindings.values()) destroyUniforms(binding);
  }
}

function destroyUniforms(binding: RouterBinding | ExpertFfnBinding | undefined): void {
  if (!binding) return;
  for (const buffer of Array.isArray(binding.uniforms) ? binding.uniforms : [binding.uniforms]) buffer.destroy();
}

/** The most positions a layer's K (or V) cache can hold within one binding on `device`. */
export function largestContext(device: GPUDevice, config: ModelConfig): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return Math.floor(limit / (config.nHeadKv * config.headDimK * 4));
}
