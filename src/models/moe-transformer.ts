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
 * no routing is read back. A cache that streams experts would rewrite the
 * table and the slab contents between submissions; pipelines and bind
 * groups stay as they are.
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
import { topKResultBytes } from '../kernels/sample-topk';
import { decodeTopKResult } from '../kernels/sampling';
import type { TopKCandidates } from '../kernels/sampling';
import type { ModelConfig } from './config';
import type { MoeGraphSpec } from './moe-graph';
import { createForwardKernels, layerExpertKernel, ropeParamsOf } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import { RunState } from './moe-transformer-state';
import { uploadWeights } from './moe-transformer-weights';
import type { GpuMatrix, GpuModelWeights, LayerExperts } from './moe-transformer-weights';
import { modelConfigFromGguf, moeArchitectureFor } from './registry';

export interface MoeTransformerOptions {
  /** Positions the KV cache holds; default min(model context, 4096). */
  maxContext?: number;
  /** Most tokens per forward submission (prefill is cut into batches of this); default 32. */
  maxBatchTokens?: number;
  /** Largest expert slab buffer; default min(128 MiB, device limits). */
  maxSlabBytes?: number;
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
  private expertAccessCount = 0;

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
  ) {}

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
    const weights = await uploadWeights(device, file, source, config, { maxBatchTokens, maxSlabBytes: options.maxSlabBytes, maxSlabBindings });
    const kernels = await createForwardKernels(device, config, spec, weights);
    const maxFfnWidth = Math.max(1, ...weights.layers.flatMap((l) => [l.experts, l.single]).map((e) => e?.layout.ffn ?? 0));
    const state = new RunState(device, config, { maxBatchTokens, maxContext, maxFfnWidth, maxTopK: kernels.sampleTopK.maxK });
    const table = (pick: (l: GpuModelWeights['layers'][number]) => LayerExperts | undefined, width: number): GPUBuffer => {
      const refs: (ExpertSlotRef | undefined)[] = weights.layers.flatMap((l) => pick(l)?.refs ?? Array<undefined>(width).fill(undefined));
      return createStorageBuffer(device, packSlotRefs(refs), 'expert slot table');
    };
    const expertTable = table((l) => l.experts, Math.max(1, config.nExpert));
    const singleTable = table((l) => l.single, 1);
    return new MoeTransformer(device, config, spec, weights, kernels, state, expertTable, singleTable);
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

  /** One submission: embed, every layer, and the requested output, for at most maxBatchTokens tokens. */
  private async forwardBatch(tokens: readonly number[], startPosition: number, output: ForwardOutput): Promise<ForwardResult> {
    const T = tokens.length;
    const { device, state: s } = this;
    device.queue.writeBuffer(s.ids, 0, Uint32Array.from(tokens));
    device.queue.writeBuffer(s.positions, 0, Uint32Array.from(tokens, (_, t) => startPosition + t));
    const encoder = device.createCommandEncoder({ label: `forward ${T} tokens at ${startPosition}` });
    let pass = encoder.beginComputePass({ label: 'forward' });

    // Token embedding: x [T, hidden] = tokenEmbd rows of ids.
    const embd = this.weights.tokenEmbd;
    this.kernels.embedding.encode(pass, { table: embd.buffer, ids: s.ids, out: s.x }, { tokens: T, vocab: embd.rows, hidden: embd.cols });

    for (let l = 0; l < this.config.nLayer; l++) {
      this.encodeAttention(pass, l, T, startPosition);
      pass = this.encodeFfn(encoder, pass, l, T);
    }

    // Final norm and output projection: logits [rows, vocab] of the last token or of all.
    const c = this.config;
    this.kernels.rmsNorm.encode(pass, { x: s.x, y: s.xb, weight: this.weights.outputNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });
    const outRows = output === 'all-logits' ? T : 1;
    if (output !== 'none') {
      const xOffset = output === 'all-logits' ? 0 : (T - 1) * c.hidden;
      this.project(pass, this.weights.output, s.xb, s.logits, outRows, { xOffset });
    }
    let readFrom: GPUBuffer | undefined;
    let readBytes = 0;
    if (output === 'argmax') {
      this.kernels.argmax.encode(pass, { values: s.logits, result: s.argmax }, c.vocabSize);
      [readFrom, readBytes] = [s.argmax, 4];
    } else if (typeof output === 'object') {
      const topK = Math.min(output.topK, c.vocabSize);
      this.kernels.sampleTopK.encode(pass, { logits: s.logits, result: s.topK }, { length: c.vocabSize, k: topK, temperature: output.temperature });
      [readFrom, readBytes] = [s.topK, topKResultBytes(topK)];
    } else if (output !== 'none') {
      [readFrom, readBytes] = [s.logits, outRows * c.vocabSize * 4];
    }
    pass.end();

    // Read back only what was asked, in the same submission.
    const staging = readFrom && device.createBuffer({ label: 'forward readback', size: readBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (readFrom && staging) encoder.copyBufferToBuffer(readFrom, 0, staging, 0, readBytes);
    device.queue.submit([encoder.finish()]);
    this.expertAccessCount += T * c.tensors.layers.filter((l) => l.ffn.kind === 'moe').length * c.nExpertUsed;
    if (!staging) return {};
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const bytes = staging.getMappedRange().slice(0);
      if (output === 'argmax') return { argmax: new Uint32Array(bytes)[0] };
      if (typeof output === 'object') return { candidates: decodeTopKResult(bytes) };
      const all = new Float32Array(bytes);
      return { logits: Array.from({ length: outRows }, (_, r) => all.slice(r * c.vocabSize, (r + 1) * c.vocabSize)) };
    } finally {
      staging.destroy();
    }
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
   * expert), or x += dense(xb). Returns the pass to continue in (the shared
   * expert's routing is filled by buffer copies between passes).
   */
  private encodeFfn(encoder: GPUCommandEncoder, pass: GPUComputePassEncoder, l: number, T: number): GPUComputePassEncoder {
    const c = this.config;
    const w = this.weights.layers[l];
    const s = this.state;
    const bindings = this.bindingsFor(T);

    // Input norm: xb [T, hidden] = rmsnorm(x) * ffnNorm.
    this.kernels.rmsNorm.encode(pass, { x: s.x, y: s.xb, weight: w.ffnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

    // Router: routing [T, 2k] (ids and weights, no readback) and the shared gate [T].
    const router = bindings.router[l];
    if (router) this.kernels.router(l).encode(pass, router);

    // Routed experts, read through the slot table: x += sum_j w_j down_j(silu(gate_j xb) * up_j xb).
    const experts = bindings.experts[l];
    if (experts) layerExpertKernel(this.kernels, w.experts!).encode(pass, experts);

    // Shared expert (weight sigmoid(gate . xb), copied into its routing) or dense FFN (weight 1).
    const single = bindings.single[l];
    if (!single) return pass;
    if (w.sharedGate) {
      pass.end();
      for (let t = 0; t < T; t++) encoder.copyBufferToBuffer(s.sharedGate, t * 4, s.sharedRouting, t * 8 + 4, 4);
      pass = encoder.beginComputePass({ label: 'forward' });
    }
    layerExpertKernel(this.kernels, w.single!).encode(pass, single);
    return pass;
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

  /** Frees every GPU buffer of the model (weights, state, tables); the model is unusable afterwards. */
  destroy(): void {
    this.weights.buffers.forEach((b) => b.destroy());
    this.state.destroy();
    this.expertTable.destroy();
    this.singleTable.destroy();
  }
}

/** The most positions a layer's K (or V) cache can hold within one binding on `device`. */
export function largestContext(device: GPUDevice, config: ModelConfig): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return Math.floor(limit / (config.nHeadKv * config.headDimK * 4));
}
