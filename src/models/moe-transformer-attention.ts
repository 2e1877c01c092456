/**
 * The attention sub-block of the shared pre-norm decoder step, on the GPU:
 * input norm, Q/K/V projections (with biases), QK-norm, RoPE, the KV cache
 * write, causal attention (GQA, sliding window, sinks) and the output
 * projection added to the residual.
 */

import { project, ropeParamsOf } from './moe-transformer-kernels';
import type { ForwardKernels } from './moe-transformer-kernels';
import type { ModelConfig } from './config';
import type { RunState } from './moe-transformer-state';
import type { GpuModelWeights } from './moe-transformer-weights';

/** What a sub-block reads: the config, the weights, the kernels and the run state. */
export interface PassContext {
  config: ModelConfig;
  weights: GpuModelWeights;
  kernels: ForwardKernels;
  state: RunState;
}

/** Attention sub-block of layer l: x += wo · attention(rope(norm(q, k)), cache) (+ bias). */
export function encodeAttention(ctx: PassContext, pass: GPUComputePassEncoder, l: number, T: number, startPosition: number): void {
  const c = ctx.config;
  const w = ctx.weights.layers[l];
  const s = ctx.state;
  const k = ctx.kernels;
  const D = c.headDimK;
  const qDim = c.nHead * D;
  const kvDim = c.nHeadKv * D;

  // Input norm: xb [T, hidden] = rmsnorm(x) * attnNorm.
  k.rmsNorm.encode(pass, { x: s.x, y: s.xb, weight: w.attnNorm }, { rows: T, cols: c.hidden, eps: c.rmsEps });

  // Q, K, V projections (+ biases): q [T, qDim], k and v [T, kvDim].
  project(k, pass, w.q, s.xb, s.q, T);
  project(k, pass, w.k, s.xb, s.k, T);
  project(k, pass, w.v, s.xb, s.v, T);
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
  const freqFactors = ctx.weights.ropeFreqs;
  k.rope.encode(pass, { x: q, positions: s.positions, freqFactors }, { tokens: T, heads: c.nHead, headDim: D }, rope);
  k.rope.encode(pass, { x: key, positions: s.positions, freqFactors }, { tokens: T, heads: c.nHeadKv, headDim: D }, rope);

  // Keys and values into the cache at startPosition.., then causal attention: attOut [T, qDim].
  const cache = { nKvHeads: c.nHeadKv, maxContext: s.sizes.maxContext, headDim: D };
  k.kvWrite.encode(pass, { k: key, v: s.v, kCache: s.kCache[l], vCache: s.vCache[l] }, { ...cache, tokens: T, startPosition });
  // The layer's sliding window and sink logits, where it has them.
  const window = c.attentionWindow[l];
  k.attention.encode(pass, { q, kCache: s.kCache[l], vCache: s.vCache[l], out: s.attOut, sinks: w.attnSinks }, { ...cache, nHeads: c.nHead, tokens: T, startPosition, scale: c.scales.attention, window });

  // Output projection added to the residual: x += (wo · attOut) * residual scale (+ bias).
  project(k, pass, w.attnOut, s.attOut, s.x, T, { accumulate: true, scale: c.scales.residual });
  if (w.attnOutBias) k.add.encode(pass, { y: s.x, b: w.attnOutBias }, { length: T * c.hidden });
}
