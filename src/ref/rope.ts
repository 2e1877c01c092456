/**
 * CPU reference of rotary position embedding (the rope kernel's twin),
 * following ggml's CPU rope (ggml_compute_forward_rope, rope_yarn) step by
 * step in f32 arithmetic (every operation rounded with Math.fround), so that
 * angles match the kernel's bit for bit and only sin/cos differ (here they
 * are computed in f64, then rounded).
 *
 * For each token t, head h and rotation pair i in [0, nRot/2):
 *
 *   theta_i   = pos[t] * s * s * ... * s     (i factors s = base^(-2/nRot),
 *                                             multiplied one at a time as ggml does)
 *   extrap    = theta_i / freq_factors[i]    (1 when there are none)
 *   interp    = freq_scale * extrap
 *   theta     = interp                                   if ext_factor = 0
 *             = interp * (1 - mix) + extrap * mix        otherwise (YaRN),
 *               mix = ramp(i) * ext_factor, ramp(i) = 1 - clamp((i - low) / max(0.001, high - low), 0, 1)
 *   mscale    = attn_factor (* (1 + 0.1 ln(1 / freq_scale)) with YaRN)
 *   (a, b)    = (x0 cos - x1 sin, x0 sin + x1 cos) * mscale
 *
 * The pair is (2i, 2i + 1) in the normal ordering and (i, i + nRot/2) in
 * NeoX's; dimensions from nRot to headDim pass through unchanged.
 */

import type { RopeOrdering, RopeParams, RopeShape } from '../kernels/rope';

const f = Math.fround;

/** base^(-2/nRot) in f32, ggml's theta_scale. */
export function ropeThetaScale(freqBase: number, nRot: number): number {
  return f(Math.pow(f(freqBase), f(-2 / nRot)));
}

/**
 * The YaRN correction range [low, high] of rotation pairs (ggml's corr_dims):
 * pairs below low are extrapolated, above high interpolated, ramped between.
 */
export function ropeYarnCorrDims(
  nRot: number,
  nCtxOrig: number,
  freqBase: number,
  betaFast: number,
  betaSlow: number,
): [number, number] {
  const corrDim = (rotations: number): number => {
    const wavelengthsRatio = f(nCtxOrig / f(f(f(rotations) * 2) * f(Math.PI)));
    return f(f(nRot * f(Math.log(wavelengthsRatio))) / f(2 * f(Math.log(f(freqBase)))));
  };
  return [Math.max(0, Math.floor(corrDim(betaFast))), Math.min(nRot - 1, Math.ceil(corrDim(betaSlow)))];
}

/** The factor applied to cos and sin: attn_factor, times YaRN's magnitude correction when YaRN is on. */
export function ropeMscale(params: RopeParams): number {
  const attnFactor = f(params.attnFactor ?? 1);
  if ((params.extFactor ?? 0) === 0) return attnFactor;
  const freqScale = f(params.freqScale ?? 1);
  return f(attnFactor * f(1 + f(f(0.1) * f(Math.log(f(1 / freqScale))))));
}

function yarnRamp(low: number, high: number, pair: number): number {
  const y = f(f(pair - low) / Math.max(f(0.001), f(high - low)));
  return f(1 - Math.min(1, Math.max(0, y)));
}

/** The rotation angle of pair `pair` at `position`, before sin/cos. */
function ropeAngle(position: number, pair: number, params: RopeParams, thetaScale: number, corrDims: [number, number], freqFactors?: Float32Array): number {
  let theta = f(position);
  for (let j = 0; j < pair; j++) theta = f(theta * thetaScale);
  const extrapolated = freqFactors ? f(theta / freqFactors[pair]) : theta;
  const interpolated = f(f(params.freqScale ?? 1) * extrapolated);
  const extFactor = f(params.extFactor ?? 0);
  if (extFactor === 0) return interpolated;
  const mix = f(yarnRamp(corrDims[0], corrDims[1], pair) * extFactor);
  return f(f(interpolated * f(1 - mix)) + f(extrapolated * mix));
}

/**
 * `x` [tokens][heads][headDim] rotated by position (see the module comment);
 * rows `tokenStride` apart starting at `offset`, as the kernel reads them.
 * Returns a copy of `x` with the rotated values; elements outside the rows
 * are copied unchanged.
 */
export function rope(
  x: Float32Array,
  positions: ArrayLike<number>,
  shape: RopeShape,
  params: RopeParams & { ordering: RopeOrdering },
  freqFactors?: Float32Array,
): Float32Array {
  const { tokens, heads, headDim } = shape;
  const tokenStride = shape.tokenStride ?? heads * headDim;
  const offset = shape.offset ?? 0;
  const { nRot } = params;
  if (positions.length < tokens) throw new RangeError(`${positions.length} positions for ${tokens} tokens`);
  if (nRot % 2 !== 0 || nRot > headDim || nRot < 2) throw new RangeError(`nRot ${nRot} must be even, in [2, headDim]`);
  if (freqFactors && freqFactors.length < nRot / 2) throw new RangeError(`need ${nRot / 2} frequency factors`);
  if (tokens > 0 && offset + (tokens - 1) * tokenStride + heads * headDim > x.length) {
    throw new RangeError(`x has ${x.length} values, too few for the shape`);
  }
  const thetaScale = ropeThetaScale(params.freqBase, nRot);
  const corrDims = ropeYarnCorrDims(nRot, params.nCtxOrig ?? 0, params.freqBase, params.betaFast ?? 32, params.betaSlow ?? 1);
  const mscale = ropeMscale(params);
  const halfRot = nRot / 2;
  const y = Float32Array.from(x);
  for (let t = 0; t < tokens; t++) {
    for (let pair = 0; pair < halfRot; pair++) {
      const theta = ropeAngle(positions[t], pair, params, thetaScale, corrDims, freqFactors);
      const cos = f(f(Math.cos(theta)) * mscale);
      const sin = f(f(Math.sin(theta)) * mscale);
      for (let h = 0; h < heads; h++) {
        const base = offset + t * tokenStride + h * headDim;
        const i0 = params.ordering === 'neox' ? base + pair : base + 2 * pair;
        const i1 = params.ordering === 'neox' ? i0 + halfRot : i0 + 1;
        const x0 = x[i0];
        const x1 = x[i1];
        y[i0] = f(f(x0 * cos) - f(x1 * sin));
        y[i1] = f(f(x0 * sin) + f(x1 * cos));
      }
    }
  }
  return y;
}
