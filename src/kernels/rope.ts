/**
 * Rotary position embedding kernel (shaders/rope.wgsl): rotates Q or K in
 * place, [tokens][heads][headDim] f32, by each token's position, with ggml's
 * semantics (normal or NeoX pairs, partial rotation, linear scaling, YaRN,
 * frequency factors). The scalar constants (theta scale, YaRN range and
 * magnitude) are computed here in f32 as ggml computes them, once per call.
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef, UniformScalar } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkU32Index, checkWorkgroupSize, encodeDispatch } from './kernel-support';

/** Which dimensions form a rotation pair: (2i, 2i+1) normal, (i, i + nRot/2) NeoX. */
export type RopeOrdering = 'normal' | 'neox';

/** ggml's rope parameters (llama.cpp's rope_ext arguments). */
export interface RopeParams {
  /** Dimensions rotated at the start of each head (ggml's n_dims): even, 2..headDim. */
  nRot: number;
  /** Theta base (rope.freq_base), e.g. 10000. */
  freqBase: number;
  /** Linear scaling of positions (1 / rope.scaling.factor); default 1. */
  freqScale?: number;
  /** YaRN extrapolation mix; 0 (default) turns YaRN off. */
  extFactor?: number;
  /** Scale of cos and sin; default 1. */
  attnFactor?: number;
  /** YaRN: rotations at which extrapolation ends; default 32. */
  betaFast?: number;
  /** YaRN: rotations at which interpolation begins; default 1. */
  betaSlow?: number;
  /** YaRN: the context length the model was trained with; needed when extFactor != 0. */
  nCtxOrig?: number;
}

export interface RopeShape {
  tokens: number;
  heads: number;
  headDim: number;
  /** Elements from one token's first head to the next's; default heads * headDim (a fused QKV row is longer). */
  tokenStride?: number;
  /** Element index of token 0's first head in x; default 0. */
  offset?: number;
}

export interface RopeBuffers {
  /** f32, rotated in place. */
  x: BufferRef;
  /** u32 [tokens], the position of each token. */
  positions: BufferRef;
  /** f32 [nRot / 2]; required exactly when the variant has frequency factors. */
  freqFactors?: BufferRef;
}

export interface RopeVariant {
  ordering: RopeOrdering;
  hasFreqFactors: boolean;
  /** Threads per workgroup (default 64), one per rotation pair. */
  workgroupSize?: number;
}

const DEFAULT_WORKGROUP_SIZE = 64;
const f = Math.fround;

/** The f32 constants the shader needs, derived from `params` as ggml derives them. */
export function ropeConstants(params: RopeParams): { thetaScale: number; mscale: number; corrLow: number; corrHigh: number } {
  const { nRot } = params;
  const base = f(params.freqBase);
  const freqScale = f(params.freqScale ?? 1);
  const extFactor = f(params.extFactor ?? 0);
  const thetaScale = f(Math.pow(base, f(-2 / nRot)));
  const attnFactor = f(params.attnFactor ?? 1);
  if (extFactor === 0) return { thetaScale, mscale: attnFactor, corrLow: 0, corrHigh: 0 };
  const nCtxOrig = params.nCtxOrig ?? 0;
  // ggml_rope_yarn_corr_dim: the pair whose wavelength fits `rotations` times in the original context.
  const corrDim = (rotations: number) =>
    f(f(nRot * f(Math.log(f(nCtxOrig / f(f(f(rotations) * 2) * f(Math.PI)))))) / f(2 * f(Math.log(base))));
  return {
    thetaScale,
    mscale: f(attnFactor * f(1 + f(f(0.1) * f(Math.log(f(1 / freqScale)))))),
    corrLow: Math.max(0, Math.floor(corrDim(params.betaFast ?? 32))),
    corrHigh: Math.min(nRot - 1, Math.ceil(corrDim(params.betaSlow ?? 1))),
  };
}

/** The rotation fields of a rope kernel's Params (theta_scale .. corr_high), from `params`. */
export function ropeUniformFields(params: RopeParams): UniformScalar[] {
  const constants = ropeConstants(params);
  return [
    ['f32', constants.thetaScale],
    ['f32', params.freqScale ?? 1],
    ['f32', params.extFactor ?? 0],
    ['f32', constants.mscale],
    ['f32', constants.corrLow],
    ['f32', constants.corrHigh],
  ];
}

/** Throws a RangeError naming the first of `params` a head of `headDim` cannot be rotated with. */
export function checkRopeParams(params: RopeParams, headDim: number): void {
  const { nRot } = params;
  if (!Number.isInteger(nRot) || nRot < 2 || nRot % 2 !== 0 || nRot > headDim) {
    throw new RangeError(`rope nRot must be even and in [2, headDim = ${headDim}], got ${nRot}`);
  }
  if (!(params.freqBase > 0)) throw new RangeError(`rope freqBase must be > 0, got ${params.freqBase}`);
  if (!((params.freqScale ?? 1) > 0)) throw new RangeError(`rope freqScale must be > 0, got ${params.freqScale}`);
  if ((params.extFactor ?? 0) !== 0 && !((params.nCtxOrig ?? 0) > 0)) {
    throw new RangeError('rope with YaRN (extFactor != 0) needs nCtxOrig > 0');
  }
}

export class RopeKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: Required<RopeVariant>,
  ) {}

  /** Builds (or takes from the device's cache) the pipeline of `variant`. */
  static async create(device: GPUDevice, variant: RopeVariant): Promise<RopeKernel> {
    const full = { workgroupSize: DEFAULT_WORKGROUP_SIZE, ...variant };
    checkWorkgroupSize(full.workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup, 'rope');
    const key = { op: 'rope', ordering: full.ordering, wg: full.workgroupSize, freqFactors: full.hasFreqFactors };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('rope.wgsl', { HAS_FREQ_FACTORS: full.hasFreqFactors }),
        bindings: ['uniform', 'storage', 'read-only-storage', ...(full.hasFreqFactors ? ['read-only-storage' as const] : [])],
        constants: { WG: full.workgroupSize, NEOX: full.ordering === 'neox' ? 1 : 0 },
      }),
    );
    return new RopeKernel(device, pipeline, full);
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the rotation of every (token, head) row of `shape` into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: RopeBuffers, shape: RopeShape, params: RopeParams): void {
    const { tokens, heads, headDim } = shape;
    const tokenStride = shape.tokenStride ?? heads * headDim;
    const offset = shape.offset ?? 0;
    this.check(buffers, { tokens, heads, headDim, tokenStride, offset }, params);
    const pairs = tokens * heads * (params.nRot / 2);
    if (pairs === 0) return;
    const uniforms = packUniformScalars([
      ['u32', tokens],
      ['u32', heads],
      ['u32', headDim],
      ['u32', params.nRot],
      ['u32', tokenStride],
      ['u32', offset],
      ...ropeUniformFields(params),
    ]);
    const bound = [buffers.x, buffers.positions, ...(buffers.freqFactors ? [buffers.freqFactors] : [])];
    const freqFactorBytes = buffers.freqFactors ? (params.nRot / 2) * 4 : 0;
    encodeDispatch(this.device, pass, this.pipeline, uniforms, bound, ceilDiv(pairs, this.variant.workgroupSize), freqFactorBytes);
  }

  private check(buffers: RopeBuffers, shape: Required<RopeShape>, params: RopeParams): void {
    const { tokens, heads, headDim, tokenStride, offset } = shape;
    checkInteger(tokens, 'rope tokens');
    checkInteger(heads, 'rope heads', 1);
    checkInteger(headDim, 'rope headDim', 2);
    checkInteger(tokenStride, 'rope tokenStride', heads * headDim);
    checkInteger(offset, 'rope offset');
    checkRopeParams(params, headDim);
    const { nRot } = params;
    if (this.variant.hasFreqFactors !== (buffers.freqFactors !== undefined)) {
      throw new Error(`${this.label}: a freqFactors buffer must be given exactly when the variant has frequency factors`);
    }
    const endElements = tokens === 0 ? 0 : offset + (tokens - 1) * tokenStride + heads * headDim;
    checkU32Index(endElements, 'rope x');
    checkBindingSize(buffers.x, endElements * 4, 'rope x');
    checkBindingSize(buffers.positions, tokens * 4, 'rope positions');
    if (buffers.freqFactors) checkBindingSize(buffers.freqFactors, (nRot / 2) * 4, 'rope freqFactors');
  }
}
