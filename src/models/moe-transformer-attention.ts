/**
 * The attention sub-block of the shared pre-norm decoder step, on the GPU,
 * behind one interface with a class per variant: standard attention here
 * (Q/K/V projections with biases, QK-norm, RoPE, a K and a V cache per
 * layer, GQA, sliding windows, sinks), multi-head latent attention in
 * moe-transformer-latent.ts. A block owns its weights' layout, its kernels,
 * its scratch and its KV cache; the forward pass only calls `encode`.
 */

import { createEmptyStorageBuffer } from '../gpu/buffers';
import { AttentionKernel } from '../kernels/attention';
import { kvCacheBytes } from '../kernels/kv-write';
import { RopeKvWriteKernel } from '../kernels/rope-kv-write';
import type { ModelConfig, StandardAttentionTensors } from './config';
import { project, ropeParamsOf } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import type { RunState } from './moe-transformer-state';
import type { GpuMatrix, GpuModelWeights, WeightReader } from './moe-transformer-weights';

/** One layer kind's attention: x += attention(norm(x)) for a batch, and the KV cache it keeps. */
export interface AttentionBlock {
  /** Records layer l's sub-block for T tokens at startPosition.. (input norm included). */
  encode(pass: GPUComputePassEncoder, l: number, T: number, startPosition: number): void;
  /** Bytes of the KV cache, all layers. */
  readonly kvCacheBytes: number;
  destroy(): void;
}

/** What a block reads of the model: config, weights, shared kernels, run state. */
export interface AttentionContext {
  config: ModelConfig;
  weights: GpuModelWeights;
  kernels: ForwardKernels;
  state: RunState;
}

export interface GpuStandardAttention {
  kind: 'standard';
  q: GpuMatrix; // (nHead * headDim, hidden)
  k: GpuMatrix; // (nHeadKv * headDim, hidden)
  v: GpuMatrix; // (nHeadKv * headDim, hidden)
  qBias?: GPUBuffer; // f32 (maxBatch, nHead * headDim): the bias once per token
  kBias?: GPUBuffer; // f32 (maxBatch, nHeadKv * headDim)
  vBias?: GPUBuffer; // f32 (maxBatch, nHeadKv * headDim)
  qNorm?: GPUBuffer; // f32 (headDim) per head, or (nHead * headDim) whole
  kNorm?: GPUBuffer; // f32 (headDim) per head, or (nHeadKv * headDim) whole
  attnOut: GpuMatrix; // (hidden, nHead * headDim)
  attnOutBias?: GPUBuffer; // f32 (maxBatch, hidden), times the residual scale
  attnSinks?: GPUBuffer; // f32 (nHead)
}

/** Reads one layer's standard attention tensors onto the GPU. */
export async function uploadStandardAttention(r: WeightReader, a: StandardAttentionTensors, config: ModelConfig): Promise<GpuStandardAttention> {
  const batch = r.maxBatchTokens;
  return {
    kind: 'standard',
    q: await r.matrix(a.q),
    k: await r.matrix(a.k),
    v: await r.matrix(a.v),
    qBias: await r.optVector(a.qBias, batch),
    kBias: await r.optVector(a.kBias, batch),
    vBias: await r.optVector(a.vBias, batch),
    qNorm: await r.optVector(a.qNorm),
    kNorm: await r.optVector(a.kNorm),
    attnOut: await r.matrix(a.attnOut),
    // Granite scales the attention output, bias included, by the residual scale.
    attnOutBias: await r.optVector(a.attnOutBias, batch, config.scales.residual),
    attnSinks: await r.optVector(a.attnSinks),
  };
}

export class StandardAttention implements AttentionBlock {
  private readonly buffers: GPUBuffer[] = [];
  private readonly q: GPUBuffer; // [B, nHead * headDim]
  private readonly k: GPUBuffer; // [B, nHeadKv * headDim]
  private readonly v: GPUBuffer; // [B, nHeadKv * headDim]
  private readonly qNormed: GPUBuffer; // [B, nHead * headDim] q after QK-norm (when the model has it)
  private readonly kNormed: GPUBuffer; // [B, nHeadKv * headDim]
  private readonly attOut: GPUBuffer; // [B, nHead * headDim] attention output, heads concatenated
  /** Per layer: K and V caches, f32 [nHeadKv][maxContext][headDim] each. */
  private readonly kCache: GPUBuffer[];
  private readonly vCache: GPUBuffer[];

  private constructor(
    device: GPUDevice,
    private readonly ctx: AttentionContext,
    private readonly attention: AttentionKernel,
    private readonly ropeKvWrite: RopeKvWriteKernel,
  ) {
    const c = ctx.config;
    const B = ctx.state.sizes.maxBatchTokens;
    const qDim = c.nHead * c.headDimK;
    const kvDim = c.nHeadKv * c.headDimK;
    const f32 = (elements: number, label: string): GPUBuffer => {
      const buffer = createEmptyStorageBuffer(device, elements * 4, label);
      this.buffers.push(buffer);
      return buffer;
    };
    this.q = f32(B * qDim, 'q');
    this.k = f32(B * kvDim, 'k');
    this.v = f32(B * kvDim, 'v');
    const qkNorm = c.qkNorm !== 'none';
    this.qNormed = f32(qkNorm ? B * qDim : 1, 'q normed');
    this.kNormed = f32(qkNorm ? B * kvDim : 1, 'k normed');
    this.attOut = f32(B * qDim, 'attention out');
    const cacheElements = kvCacheBytes({ nKvHeads: c.nHeadKv, maxContext: ctx.state.sizes.maxContext, headDim: c.headDimK }) / 4;
    this.kCache = Array.from({ length: c.nLayer }, (_, l) => f32(cacheElements, `k cache ${l}`));
    this.vCache = Array.from({ length: c.nLayer }, (_, l) => f32(cacheElements, `v cache ${l}`));
  }

  static async create(device: GPUDevice, ctx: AttentionContext): Promise<StandardAttention> {
    const c = ctx.config;
    const hasSinks = ctx.weights.layers.some((l) => l.attention.kind === 'standard' && l.attention.attnSinks !== undefined);
    const attention = await AttentionKernel.create(device, { nHeads: c.nHead, nKvHeads: c.nHeadKv, headDim: c.headDimK, hasSinks });
    const ropeKvWrite = await RopeKvWriteKernel.create(device, { ordering: c.rope.kind, hasFreqFactors: ctx.weights.ropeFreqs !== undefined });
    return new StandardAttention(device, ctx, attention, ropeKvWrite);
  }

  get kvCacheBytes(): number {
    return [...this.kCache, ...this.vCache].reduce((sum, b) => sum + b.size, 0);
  }

  /** Layer l: x += wo · attention(rope(norm(q, k)), cache) (+ bias), times the residual scale. */
  encode(pass: GPUComputePassEncoder, l: number, T: number, startPosition: number): void {
    const { config: c, kernels: k, state: s } = this.ctx;
    const layer = this.ctx.weights.layers[l];
    const w = layer.attention;
    if (w.kind !== 'standard') throw new Error(`layer ${l} has no standard attention`);
    const D = c.headDimK;
    const qDim = c.nHead * D;
    const kvDim = c.nHeadKv * D;

    // Input norm: xb [T, hidden] = rmsnorm(x) * attnNorm.
    k.rmsNorm.encode(pass, { x: s.x, y: s.xb, weight: layer.attnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

    // Q, K, V projections (+ biases): q [T, qDim], k and v [T, kvDim].
    project(k, pass, w.q, s.xb, this.q, T);
    project(k, pass, w.k, s.xb, this.k, T);
    project(k, pass, w.v, s.xb, this.v, T);
    if (w.qBias) k.add.encode(pass, { y: this.q, b: w.qBias }, { length: T * qDim });
    if (w.kBias) k.add.encode(pass, { y: this.k, b: w.kBias }, { length: T * kvDim });
    if (w.vBias) k.add.encode(pass, { y: this.v, b: w.vBias }, { length: T * kvDim });

    // QK-norm before RoPE: each head on its own (per-head) or the whole projection (whole).
    let q = this.q;
    let key = this.k;
    if (w.qNorm && w.kNorm) {
      const perHead = c.qkNorm === 'per-head';
      k.rmsNorm.encode(pass, { x: this.q, y: this.qNormed, weight: w.qNorm }, { rows: T * (perHead ? c.nHead : 1), cols: perHead ? D : qDim, eps: c.rmsEps });
      k.rmsNorm.encode(pass, { x: this.k, y: this.kNormed, weight: w.kNorm }, { rows: T * (perHead ? c.nHeadKv : 1), cols: perHead ? D : kvDim, eps: c.rmsEps });
      q = this.qNormed;
      key = this.kNormed;
    }

    // RoPE on q (in place) and k at each token's position, with the keys and values written into the cache at
    // startPosition.. (one dispatch), then causal attention: attOut [T, qDim].
    const cache = { nKvHeads: c.nHeadKv, maxContext: s.sizes.maxContext, headDim: D };
    this.ropeKvWrite.encode(
      pass,
      { q, k: key, v: this.v, positions: s.positions, kCache: this.kCache[l], vCache: this.vCache[l], freqFactors: this.ctx.weights.ropeFreqs },
      { ...cache, tokens: T, nHeads: c.nHead, startPosition },
      ropeParamsOf(c.rope),
    );
    // The layer's sliding window and sink logits, where it has them.
    const window = c.attentionWindow[l];
    this.attention.encode(
      pass,
      { q, kCache: this.kCache[l], vCache: this.vCache[l], out: this.attOut, sinks: w.attnSinks },
      { ...cache, nHeads: c.nHead, tokens: T, startPosition, scale: c.scales.attention, window },
    );

    // Output projection added to the residual: x += (wo · attOut) * residual scale (+ bias).
    project(k, pass, w.attnOut, this.attOut, s.x, T, { accumulate: true, scale: c.scales.residual });
    if (w.attnOutBias) k.add.encode(pass, { y: s.x, b: w.attnOutBias }, { length: T * c.hidden });
  }

  destroy(): void {
    this.buffers.forEach((b) => b.destroy());
  }
}
