/**
 * The kernels one model's forward pass uses, built (or taken from the
 * device's pipeline cache) at load: one per weight format for projections,
 * one expert FFN per layer (the pipeline cache shares equal ones), one router per layer's router format, and
 * the shape-specific ones (attention, RoPE) for the model's head geometry.
 */

import { AddKernel } from '../kernels/add';
import { ArgmaxKernel } from '../kernels/argmax';
import { EmbeddingKernel } from '../kernels/embedding';
import { ExpertFfnKernel } from '../kernels/expert-ffn';
import { ExpertGroupListKernel } from '../kernels/expert-group-list';
import type { FfnActivation } from '../kernels/expert-ffn';
import { MatmulKernel } from '../kernels/matmul';
import { MatvecKernel } from '../kernels/matvec';
import { RmsNormKernel } from '../kernels/rmsnorm';
import type { RopeParams } from '../kernels/rope';
import { RouterKernel } from '../kernels/router';
import { SampleTopKKernel } from '../kernels/sample-topk';
import { GgmlType } from '../quant/formats';
import { ModelConfigError } from './config';
import type { ModelConfig, RopeConfig } from './config';
import type { GpuLayerWeights, GpuMatrix, GpuModelWeights, RowSplitMatrix } from './moe-transformer-weights';
import type { BufferRef } from '../gpu/buffers';
import type { ExpertSlotLayout } from '../kernels/expert-slots';

export interface ForwardKernels {
  embedding: EmbeddingKernel;
  rmsNorm: RmsNormKernel;
  add: AddKernel;
  argmax: ArgmaxKernel;
  sampleTopK: SampleTopKKernel;
  matvec(type: GgmlType): MatvecKernel;
  matmul(type: GgmlType): MatmulKernel;
  /** The router of MoE layer `layer`. */
  router(layer: number): RouterKernel;
  /** The routed experts' FFN of layer `layer`, one token at a time (decode). */
  routedFfn(layer: number): ExpertFfnKernel;
  /** The same FFN grouped by expert (prefill): each expert's weights read once per tile of tokens. */
  routedFfnGrouped(layer: number): ExpertFfnKernel;
  /** Builds the grouped FFN's group list on the GPU. */
  groupList(): ExpertGroupListKernel;
  /** The FFN of layer `layer`'s shared expert or dense FFN. */
  singleFfn(layer: number): ExpertFfnKernel;
}

/**
 * `routed`: each MoE layer's routed-expert slot layout and the number of
 * slabs its FFN binds; `grouped`: whether batches run the routed experts
 * grouped by expert (their pipelines are built only then: each is a slow
 * compile on software adapters).
 */
export async function createForwardKernels(
  device: GPUDevice,
  config: ModelConfig,
  weights: GpuModelWeights,
  routed: (undefined | { layout: ExpertSlotLayout; slabCount: number })[],
  sampleTopK: SampleTopKKernel,
  grouped: boolean,
): Promise<ForwardKernels> {
  const layers = weights.layers;
  const matrices = [weights.output, ...layers.flatMap((l) => attentionMatrices(l.attention))];
  // Latent attention copies q_pe through an f32 identity.
  const types = [...new Set([...matrices.map((m) => m.type), ...(config.latent ? [GgmlType.F32] : [])])];
  const matvecs = new Map(await Promise.all(types.map(async (t) => [t, await MatvecKernel.create(device, t)] as const)));
  const matmuls = new Map(await Promise.all(types.map(async (t) => [t, await MatmulKernel.create(device, t)] as const)));

  const routers = new Map<number, RouterKernel>();
  const routedFfns = new Map<number, ExpertFfnKernel>();
  const groupedFfns = new Map<number, ExpertFfnKernel>();
  const singleFfns = new Map<number, ExpertFfnKernel>();
  for (const [l, w] of layers.entries()) {
    if (w.router) {
      routers.set(l, await RouterKernel.create(device, {
        weightType: w.router.type,
        scoring: config.routing.scoring,
        normalize: config.routing.normalize,
        hasLogitBias: w.routerBias !== undefined,
        hasSelectionBias: w.selectionBias !== undefined,
        hasSharedGate: w.sharedGate !== undefined,
      }));
    }
    const ffn = (layout: ExpertSlotLayout, slabCount: number, topK: number, activation: FfnActivation, mode: 'expert-table' | 'grouped' = 'expert-table') =>
      ExpertFfnKernel.create(device, { layout, activation, topK, mode, slabCount });
    const r = routed[l];
    if (r) {
      routedFfns.set(l, await ffn(r.layout, r.slabCount, config.nExpertUsed, config.activation));
      if (grouped) groupedFfns.set(l, await ffn(r.layout, r.slabCount, config.nExpertUsed, config.activation, 'grouped'));
    }
    // Shared experts and dense FFNs are plain SwiGLU in every supported graph.
    if (w.single) singleFfns.set(l, await ffn(w.single.layout, 1, 1, 'silu'));
  }

  const groupList = grouped ? await ExpertGroupListKernel.create(device) : undefined;
  const pick = <K, V>(map: Map<K, V>, key: K, what: string): V => {
    const value = map.get(key);
    if (!value) throw new Error(`no ${what} kernel for ${String(key)}`);
    return value;
  };
  return {
    embedding: await EmbeddingKernel.create(device, weights.tokenEmbd.type),
    rmsNorm: await RmsNormKernel.create(device, { hasWeight: true }),
    add: await AddKernel.create(device, { inPlace: true }),
    argmax: await ArgmaxKernel.create(device),
    sampleTopK,
    matvec: (t) => pick(matvecs, t, 'matvec'),
    matmul: (t) => pick(matmuls, t, 'matmul'),
    router: (l) => pick(routers, l, 'router'),
    routedFfn: (l) => pick(routedFfns, l, 'routed expert FFN'),
    routedFfnGrouped: (l) => pick(groupedFfns, l, 'grouped routed expert FFN'),
    groupList: () => {
      if (!groupList) throw new Error('no group list kernel: this model does not run grouped batches');
      return groupList;
    },
    singleFfn: (l) => pick(singleFfns, l, 'single expert FFN'),
  };
}

/** The matrices an attention block projects with. */
function attentionMatrices(a: GpuLayerWeights['attention']): GpuMatrix[] {
  if (a.kind === 'standard') return [a.q, a.k, a.v, a.attnOut];
  return [a.q, a.qA, a.qB, a.kvA, a.kB, a.vB, a.attnOut].filter((m): m is GpuMatrix => m !== undefined);
}

/** y (+)= scale * W x for T tokens: matvec for one token, matmul for more. */
export function project(
  kernels: ForwardKernels,
  pass: GPUComputePassEncoder,
  m: GpuMatrix,
  x: BufferRef,
  y: BufferRef,
  T: number,
  opts: { accumulate?: boolean; xOffset?: number; scale?: number } = {},
): void {
  const shape = { rows: m.rows, cols: m.cols, xOffset: opts.xOffset ?? 0, accumulate: opts.accumulate ?? false, scale: opts.scale ?? 1 };
  if (T === 1) kernels.matvec(m.type).encode(pass, { w: m.buffer, x, y }, shape);
  else kernels.matmul(m.type).encode(pass, { w: m.buffer, x, y }, { ...shape, tokens: T });
}

/**
 * y = scale * W x for T tokens, W split by rows (src/models/moe-transformer-weights.ts):
 * one product per piece, each writing its rows' columns of y [T, W.rows]; one
 * dispatch, as `project`, when W is one piece.
 */
export function projectRowSplit(
  kernels: ForwardKernels,
  pass: GPUComputePassEncoder,
  m: RowSplitMatrix,
  x: BufferRef,
  y: BufferRef,
  T: number,
  opts: { xOffset?: number; scale?: number } = {},
): void {
  for (const piece of m.pieces) {
    const shape = { rows: piece.rows, cols: m.cols, xOffset: opts.xOffset ?? 0, yOffset: piece.firstRow, scale: opts.scale ?? 1 };
    if (T === 1) kernels.matvec(m.type).encode(pass, { w: piece.buffer, x, y }, shape);
    else kernels.matmul(m.type).encode(pass, { w: piece.buffer, x, y }, { ...shape, tokens: T, yStride: m.rows });
  }
}

const f = Math.fround;

/**
 * The rope operator's parameters from the model's rope metadata, derived as
 * llama.cpp's context setup derives them (YaRN's magnitude correction is
 * cancelled here because the operator applies it again).
 */
export function ropeParamsOf(rope: RopeConfig): RopeParams {
  if (rope.scalingType === 'longrope') throw new ModelConfigError('BAD_CONFIG', 'longrope scaling is not supported');
  const freqScale = rope.scalingType === 'none' ? 1 : f(1 / rope.scalingFactor);
  const extFactor = rope.yarn.extFactor ?? (rope.scalingType === 'yarn' ? 1 : 0);
  let attnFactor = rope.yarn.attnFactor;
  if (extFactor !== 0) {
    const mscale = (scale: number, m: number): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
    const factor = 1 / freqScale;
    attnFactor = rope.yarn.logMultiplier !== 0 ? mscale(factor, rope.yarn.mscale ?? 1) / mscale(factor, rope.yarn.logMultiplier) : mscale(factor, 1);
    attnFactor /= 1 + 0.1 * Math.log(factor);
  }
  return {
    nRot: rope.dims,
    freqBase: rope.freqBase,
    freqScale,
    extFactor,
    attnFactor: f(attnFactor * rope.attnFactor),
    betaFast: rope.yarn.betaFast,
    betaSlow: rope.yarn.betaSlow,
    nCtxOrig: rope.originalContextLength,
  };
}
