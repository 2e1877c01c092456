/**
 * Multi-head latent attention (deepseek2's MLA) on the GPU, in the absorbed
 * form llama.cpp computes, so the KV cache holds per position one row of
 * L + r values, the RMS-normed compressed KV c and the RoPE'd shared key
 * k_pe, instead of full keys and values per head:
 *
 *   q       = Wq xb, or Wq_b rmsnorm(Wq_a xb)                (T, heads, n + r)
 *   kvp     = Wkv_a xb                                       (T, L + r)
 *   cache   = [rmsnorm(kvp[:L]) | rope(kvp[L:])] at the batch's positions
 *   Q[h]    = [Wk_b[h] q_nope[h] | rope(q_pe[h])]             (T, heads, L + r)
 *   o_lat   = attention(Q, cache rows as keys, their first L as values)
 *   x      += Wo [Wv_b[h] o_lat[h] for each h] * residual scale
 *
 * The per-head products (Wk_b, Wv_b) are one batched matvec each; q_pe is
 * copied beside the absorbed query by the same kernel with an identity
 * matrix (1 x + 0s: exact), then rotated in place.
 */

import { createEmptyStorageBuffer, createStorageBuffer } from '../gpu/buffers';
import { AttentionKernel } from '../kernels/attention';
import { KvWriteKernel } from '../kernels/kv-write';
import type { MatvecBatch } from '../kernels/matvec';
import { quantDecoder, rowBytes } from '../kernels/quant-decoders';
import { RopeKernel } from '../kernels/rope';
import { GgmlType } from '../quant/formats';
import type { LatentAttentionConfig, LatentAttentionTensors, ModelConfig } from './config';
import { ModelConfigError } from './config';
import type { AttentionBlock, AttentionContext } from './moe-transformer-attention';
import { project, ropeParamsOf } from './moe-transformer-kernels';
import type { GpuMatrix, WeightReader } from './moe-transformer-weights';

export interface GpuLatentAttention {
  kind: 'latent';
  q?: GpuMatrix; // (heads dk, hidden), without a query LoRA
  qA?: GpuMatrix; // (qLoraRank, hidden)
  qANorm?: GPUBuffer; // f32 (qLoraRank)
  qB?: GpuMatrix; // (heads dk, qLoraRank)
  kvA: GpuMatrix; // (L + r, hidden)
  kvANorm: GPUBuffer; // f32 (L)
  /** Per head h, an (L, n) matrix; heads back to back, `headBytes` apart. */
  kB: GpuMatrix & { headBytes: number };
  /** Per head h, a (dv, L) matrix. */
  vB: GpuMatrix & { headBytes: number };
  attnOut: GpuMatrix; // (hidden, heads dv)
}

/** Reads one layer's latent attention tensors onto the GPU. */
export async function uploadLatentAttention(r: WeightReader, a: LatentAttentionTensors, config: ModelConfig): Promise<GpuLatentAttention> {
  const latent = latentOf(config);
  const perHead = async (name: string, rows: number, cols: number) => {
    const m = await r.matrix(name);
    return { ...m, rows, cols, headBytes: rows * rowBytes(quantDecoder(m.type, 'latent attention'), cols) };
  };
  return {
    kind: 'latent',
    q: a.q === undefined ? undefined : await r.matrix(a.q),
    qA: a.qA === undefined ? undefined : await r.matrix(a.qA),
    qANorm: await r.optVector(a.qANorm),
    qB: a.qB === undefined ? undefined : await r.matrix(a.qB),
    kvA: await r.matrix(a.kvAMqa),
    kvANorm: await r.vector(a.kvANorm),
    kB: await perHead(a.kB, latent.kvLoraRank, latent.nopeDim),
    vB: await perHead(a.vB, latent.valueDim, latent.kvLoraRank),
    attnOut: await r.matrix(a.attnOut),
  };
}

function latentOf(config: ModelConfig): LatentAttentionConfig {
  if (!config.latent) throw new ModelConfigError('BAD_CONFIG', `${config.arch}: latent attention without its sizes`);
  return config.latent;
}

export class LatentAttention implements AttentionBlock {
  private readonly buffers: GPUBuffer[] = [];
  private readonly qa: GPUBuffer; // [B, qLoraRank] (with a query LoRA)
  private readonly qaNormed: GPUBuffer; // [B, qLoraRank]
  private readonly q: GPUBuffer; // [B, heads, n + r]
  /** [B, L + r] (+ L: RoPE reads a head of L + r from offset L). */
  private readonly kvp: GPUBuffer;
  /** [B, heads, L + r] (+ L, likewise): the absorbed queries. */
  private readonly qAbs: GPUBuffer;
  private readonly latOut: GPUBuffer; // [B, heads, L]
  private readonly o: GPUBuffer; // [B, heads, dv]
  /** f32 [r, r]: copies q_pe through the batched matvec. */
  private readonly identity: GpuMatrix;
  /** Per layer: [maxContext, L + r]. */
  private readonly cache: GPUBuffer[];

  private constructor(
    device: GPUDevice,
    private readonly ctx: AttentionContext,
    private readonly latent: LatentAttentionConfig,
    private readonly attention: AttentionKernel,
    private readonly kvWrite: KvWriteKernel,
    private readonly rope: RopeKernel,
  ) {
    const c = ctx.config;
    const { kvLoraRank: L, ropeDim: r, nopeDim: n, valueDim: dv, qLoraRank } = latent;
    const B = ctx.state.sizes.maxBatchTokens;
    const H = c.nHead;
    const f32 = (elements: number, label: string): GPUBuffer => {
      const buffer = createEmptyStorageBuffer(device, Math.max(1, elements) * 4, label);
      this.buffers.push(buffer);
      return buffer;
    };
    this.qa = f32(B * qLoraRank, 'q lora');
    this.qaNormed = f32(B * qLoraRank, 'q lora normed');
    this.q = f32(B * H * (n + r), 'q');
    this.kvp = f32(B * (L + r) + L, 'compressed kv');
    this.qAbs = f32(B * H * (L + r) + L, 'absorbed q');
    this.latOut = f32(B * H * L, 'latent attention out');
    this.o = f32(B * H * dv, 'attention values');
    const eye = new Float32Array(r * r);
    for (let i = 0; i < r; i++) eye[i * r + i] = 1;
    const identity = createStorageBuffer(device, eye, 'rope copy identity');
    this.buffers.push(identity);
    this.identity = { buffer: identity, type: GgmlType.F32, rows: r, cols: r };
    this.cache = Array.from({ length: c.nLayer }, (_, l) => f32(ctx.state.sizes.maxContext * (L + r), `latent cache ${l}`));
  }

  static async create(device: GPUDevice, ctx: AttentionContext): Promise<LatentAttention> {
    const c = ctx.config;
    const latent = latentOf(c);
    const { kvLoraRank: L, ropeDim: r } = latent;
    const attention = await AttentionKernel.create(device, { nHeads: c.nHead, nKvHeads: 1, headDim: L + r, valueDim: L, valueRow: L + r, hasSinks: false });
    const rope = await RopeKernel.create(device, { ordering: c.rope.kind, hasFreqFactors: ctx.weights.ropeFreqs !== undefined });
    return new LatentAttention(device, ctx, latent, attention, await KvWriteKernel.create(device, { keysOnly: true }), rope);
  }

  get kvCacheBytes(): number {
    return this.cache.reduce((sum, b) => sum + b.size, 0);
  }

  encode(pass: GPUComputePassEncoder, l: number, T: number, startPosition: number): void {
    const { config: c, kernels: k, state: s } = this.ctx;
    const layer = this.ctx.weights.layers[l];
    const w = layer.attention;
    if (w.kind !== 'latent') throw new Error(`layer ${l} has no latent attention`);
    const { kvLoraRank: L, ropeDim: r, nopeDim: n, valueDim: dv, qLoraRank } = this.latent;
    const H = c.nHead;
    const dk = n + r;
    const row = L + r;
    const rope = ropeParamsOf(c.rope);
    const positions = s.positions;

    // Input norm: xb [T, hidden] = rmsnorm(x) * attnNorm.
    k.rmsNorm.encode(pass, { x: s.x, y: s.xb, weight: layer.attnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

    // Query heads [T, H, dk], directly or through the low-rank bottleneck.
    if (w.q) project(k, pass, w.q, s.xb, this.q, T);
    else {
      project(k, pass, w.qA!, s.xb, this.qa, T);
      k.rmsNorm.encode(pass, { x: this.qa, y: this.qaNormed, weight: w.qANorm! }, { rows: T, cols: qLoraRank, eps: c.rmsEps });
      project(k, pass, w.qB!, this.qaNormed, this.q, T);
    }

    // The batch's cache rows: kvp [T, L + r], its k_pe rotated, copied to the cache, then c normed in place there.
    project(k, pass, w.kvA, s.xb, this.kvp, T);
    this.rope.encode(pass, { x: this.kvp, positions }, { tokens: T, heads: 1, headDim: row, tokenStride: row, offset: L }, rope);
    const cache = this.cache[l];
    this.kvWrite.encode(pass, { k: this.kvp, kCache: cache }, { tokens: T, nKvHeads: 1, headDim: row, maxContext: s.sizes.maxContext, startPosition });
    k.rmsNorm.encode(pass, { x: this.kvp, y: cache, weight: w.kvANorm }, { rows: T, cols: L, eps: c.rmsEps, xStride: row, yStride: row, yOffset: startPosition * row });

    // Absorbed queries [T, H, L + r]: Wk_b[h] q_nope[h], then q_pe beside it, rotated.
    const perHead = (xHead: number, yHead: number, headBytes: number): MatvecBatch => ({
      heads: H, tokens: T, wHeadStrideBytes: headBytes, xHeadStride: xHead, xTokenStride: H * xHead, yHeadStride: yHead, yTokenStride: H * yHead,
    });
    const qBatch = { ...perHead(dk, row, w.kB.headBytes), xTokenStride: H * dk };
    k.matvec(w.kB.type).encode(pass, { w: w.kB.buffer, x: this.q, y: this.qAbs }, { rows: L, cols: n, batch: qBatch });
    k.matvec(GgmlType.F32).encode(pass, { w: this.identity.buffer, x: this.q, y: this.qAbs }, { rows: r, cols: r, xOffset: n, yOffset: L, batch: { ...qBatch, wHeadStrideBytes: 0 } });
    this.rope.encode(pass, { x: this.qAbs, positions }, { tokens: T, heads: H, headDim: row, tokenStride: H * row, offset: L }, rope);

    // Attention over the latent cache: o_lat [T, H, L], then each head back to values [T, H, dv].
    this.attention.encode(
      pass,
      { q: this.qAbs, kCache: cache, vCache: cache, out: this.latOut },
      { nHeads: H, nKvHeads: 1, headDim: row, maxContext: s.sizes.maxContext, tokens: T, startPosition, scale: c.scales.attention },
    );
    k.matvec(w.vB.type).encode(pass, { w: w.vB.buffer, x: this.latOut, y: this.o }, { rows: dv, cols: L, batch: perHead(L, dv, w.vB.headBytes) });

    // Output projection added to the residual: x += (wo · o) * residual scale.
    project(k, pass, w.attnOut, this.o, s.x, T, { accumulate: true, scale: c.scales.residual });
  }

  destroy(): void {
    this.buffers.forEach((b) => b.destroy());
  }
}
