/**
 * Rotary position embedding as llama.cpp applies it (ggml's rope with YaRN
 * support), including how llama.cpp turns the file's rope metadata into the
 * operator's parameters.
 *
 * The rotation angles are computed in f32 step by step, as ggml does
 * (theta_i = pos * base^(-2i/dims), by repeated multiplication): at position
 * 60 an f64 angle would differ from llama.cpp's by ~1e-5 rad, far above the
 * rest of the forward pass's disagreement.
 */

import { ModelConfigError, type RopeConfig } from '../models/config';

/** The parameters of one rope operator call. */
export interface RopeParams {
  kind: RopeConfig['kind'];
  dims: number;
  freqBase: number;
  freqScale: number;
  extFactor: number;
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
  originalContextLength: number;
}

const f = Math.fround;

/** llama.cpp's derivation of the operator's parameters from the model's rope metadata (llama_context setup). */
export function ropeParams(rope: RopeConfig): RopeParams {
  if (rope.scalingType === 'longrope') {
    throw new ModelConfigError('BAD_CONFIG', 'longrope scaling is not supported by the reference forward pass');
  }
  const freqScale = rope.scalingType === 'none' ? 1 : f(1 / rope.scalingFactor);
  const extFactor = rope.yarn.extFactor ?? (rope.scalingType === 'yarn' ? 1 : 0);
  let attnFactor = rope.yarn.attnFactor;
  if (extFactor !== 0) {
    const mscale = (scale: number, m: number): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
    const factor = 1 / freqScale;
    attnFactor = rope.yarn.logMultiplier !== 0 ? mscale(factor, rope.yarn.mscale ?? 1) / mscale(factor, rope.yarn.logMultiplier) : mscale(factor, 1);
    // ggml multiplies by this again inside the operator when extFactor != 0; llama.cpp cancels it here.
    attnFactor /= 1 + 0.1 * Math.log(factor);
  }
  attnFactor *= rope.attnFactor;
  return {
    kind: rope.kind,
    dims: rope.dims,
    freqBase: rope.freqBase,
    freqScale,
    extFactor,
    attnFactor: f(attnFactor),
    betaFast: rope.yarn.betaFast,
    betaSlow: rope.yarn.betaSlow,
    originalContextLength: rope.originalContextLength,
  };
}

/** cos and sin (times the magnitude scale) of each rotated pair at one position: [cos0, sin0, cos1, sin1, ...]. */
export function ropeCache(p: RopeParams, pos: number, freqFactors?: Float32Array): Float32Array {
  const cache = new Float32Array(p.dims);
  const thetaScale = f(Math.pow(f(p.freqBase), f(-2 / p.dims)));
  const [low, high] = yarnCorrectionDims(p);
  let theta = f(pos);
  for (let i0 = 0; i0 < p.dims; i0 += 2) {
    const thetaExtrap = freqFactors ? f(theta / freqFactors[i0 / 2]) : theta;
    const thetaInterp = f(p.freqScale * thetaExtrap);
    let angle = thetaInterp;
    let mscale = p.attnFactor;
    if (p.extFactor !== 0) {
      const ramp = 1 - Math.min(1, Math.max(0, (Math.floor(i0 / 2) - low) / Math.max(0.001, high - low)));
      const mix = ramp * p.extFactor;
      angle = f(thetaInterp * (1 - mix) + thetaExtrap * mix);
      mscale = f(mscale * (1 + 0.1 * Math.log(1 / p.freqScale)));
    }
    cache[i0] = f(Math.cos(angle)) * mscale;
    cache[i0 + 1] = f(Math.sin(angle)) * mscale;
    theta = f(theta * thetaScale);
  }
  return cache;
}

/** YaRN's first and last dimension to blend between interpolation and extrapolation. */
function yarnCorrectionDims(p: RopeParams): [number, number] {
  const corrDim = (nRot: number): number =>
    (p.dims * Math.log(p.originalContextLength / (nRot * 2 * Math.PI))) / (2 * Math.log(p.freqBase));
  const start = Math.floor(corrDim(p.betaFast));
  const end = Math.ceil(corrDim(p.betaSlow));
  return [Math.max(0, start), Math.min(p.dims - 1, end)];
}

/**
 * Rotates the first `dims` values of each of `heads` head vectors (length
 * headDim, consecutive in x) in place. NORM pairs (2i, 2i+1); NEOX pairs
 * (i, i + dims/2). Values past `dims` are left as they are.
 */
export function applyRope(x: Float32Array, heads: number, headDim: number, cache: Float32Array, kind: RopeParams['kind']): void {
  const dims = cache.length;
  const half = dims / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i0 = 0; i0 < dims; i0 += 2) {
      const a = base + (kind === 'normal' ? i0 : i0 / 2);
      const b = a + (kind === 'normal' ? 1 : half);
      const cos = cache[i0];
      const sin = cache[i0 + 1];
      const x0 = x[a];
      const x1 = x[b];
      x[a] = x0 * cos - x1 * sin;
      x[b] = x0 * sin + x1 * cos;
    }
  }
}
