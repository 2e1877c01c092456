/**
 * The rope kernel matches the CPU reference (ggml's rope semantics) for both
 * pair orderings, partial rotation, linear scaling, YaRN, frequency factors,
 * strided rows and large positions, and leaves the unrotated dimensions and
 * everything outside the rows untouched.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { RopeKernel } from '../../src/kernels/rope';
import type { RopeOrdering, RopeParams, RopeShape } from '../../src/kernels/rope';
import { mulberry32, randomNormal } from '../../src/quant/random';
import { rope, ropeMscale } from '../../src/ref/rope';
import { acquireTestGpu } from './support/gpu';

/*
 * Tolerance. The kernel computes every angle with the same f32 operations as
 * the reference, and multiplication is correctly rounded in WGSL, so without
 * YaRN or frequency factors the angles agree bit for bit. WGSL's division
 * (2.5 ulp; used by frequency factors and the YaRN ramp) and a fused
 * multiply-add in the YaRN mix may round differently: allow 4 ulp of the
 * angle there, 4 * 2^-23 * angle. sin and cos are then evaluated on the GPU
 * by a polynomial accurate to about 1.5e-7 (the reference uses f64), and the
 * rotation adds two roundings. As sin and cos are 1-Lipschitz, an output of
 * token t is within
 *   mscale * 2 * max|x| * (4e-7 + angleSlack(t))
 * of the reference (measured: at most 4.8e-7 absolute on lavapipe and
 * SwiftShader, x standard normal). A wrong pairing, frequency or scale is off
 * by O(|x|).
 */
function tolerance(maxAbsX: number, mscale: number, angleSlack: number): number {
  return mscale * 2 * maxAbsX * (4e-7 + angleSlack);
}

/** 4 ulp of the largest angle of a token at `position`, where division or YaRN is involved. */
function angleSlack(c: Case, position: number): number {
  const inexact = c.freqFactors !== undefined || (c.params.extFactor ?? 0) !== 0;
  const minFactor = c.freqFactors ? Math.min(...c.freqFactors) : 1;
  return inexact ? 4 * 2 ** -23 * (position / minFactor) : 0;
}

interface Case {
  name: string;
  ordering: RopeOrdering;
  shape: RopeShape;
  params: RopeParams;
  positions: number[];
  freqFactors?: Float32Array;
}

function positionsFrom(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

const CASES: Case[] = [];
for (const ordering of ['normal', 'neox'] as const) {
  CASES.push(
    { name: 'one token, head_dim 64, full rotation', ordering, shape: { tokens: 1, heads: 4, headDim: 64 }, params: { nRot: 64, freqBase: 10000 }, positions: [37] },
    { name: '5 tokens from position 3, head_dim 128', ordering, shape: { tokens: 5, heads: 4, headDim: 128 }, params: { nRot: 128, freqBase: 500000 }, positions: positionsFrom(3, 5) },
    { name: 'partial rotation (n_rot 32 of 64), 7 heads', ordering, shape: { tokens: 3, heads: 7, headDim: 64 }, params: { nRot: 32, freqBase: 10000 }, positions: [0, 9, 100] },
    { name: 'linear scaling (freq_scale 0.25)', ordering, shape: { tokens: 4, heads: 2, headDim: 64 }, params: { nRot: 64, freqBase: 10000, freqScale: 0.25 }, positions: [1, 2, 500, 1023] },
    {
      name: 'YaRN (ext_factor 1, freq_scale 1/8, attn_factor 0.9), n_rot 48 of 64',
      ordering,
      shape: { tokens: 6, heads: 3, headDim: 64 },
      params: { nRot: 48, freqBase: 10000, freqScale: 0.125, extFactor: 1, attnFactor: 0.9, betaFast: 32, betaSlow: 1, nCtxOrig: 4096 },
      positions: [0, 1, 17, 4095, 8000, 30000],
    },
    {
      name: 'frequency factors',
      ordering,
      shape: { tokens: 2, heads: 4, headDim: 64 },
      params: { nRot: 64, freqBase: 500000 },
      positions: [11, 300],
      freqFactors: Float32Array.from({ length: 32 }, (_, i) => (i < 8 ? 1 : i < 24 ? 1 + i / 4 : 8)),
    },
    { name: 'large positions (up to 131071)', ordering, shape: { tokens: 3, heads: 1, headDim: 64 }, params: { nRot: 64, freqBase: 10000 }, positions: [65535, 100000, 131071] },
    {
      name: 'K inside a fused QKV row (token stride and offset)',
      ordering,
      shape: { tokens: 3, heads: 2, headDim: 64, tokenStride: 8 * 64, offset: 4 * 64 },
      params: { nRot: 64, freqBase: 10000 },
      positions: [5, 6, 7],
    },
  );
}

describe('rope kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function ropeOnGpu(c: Case, x: Float32Array): Promise<Float32Array> {
    const { device } = gpu;
    const kernel = await RopeKernel.create(device, { ordering: c.ordering, hasFreqFactors: c.freqFactors !== undefined });
    const xBuffer = createStorageBuffer(device, x, 'x');
    const positions = createStorageBuffer(device, Uint32Array.from(c.positions), 'positions');
    const freqFactors = c.freqFactors && createStorageBuffer(device, c.freqFactors, 'freq factors');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { x: xBuffer, positions, freqFactors }, c.shape, c.params)),
    );
    return readFloat32(device, xBuffer, x.length);
  }

  CASES.forEach((c, index) => {
    it(`${c.ordering}: ${c.name}`, async () => {
      const { tokens, heads, headDim } = c.shape;
      const stride = c.shape.tokenStride ?? heads * headDim;
      const length = (c.shape.offset ?? 0) + tokens * stride;
      const rng = mulberry32(1000 + index);
      const x = Float32Array.from({ length }, () => randomNormal(rng));

      const actual = await ropeOnGpu(c, x);
      const expected = rope(x, c.positions, c.shape, { ...c.params, ordering: c.ordering }, c.freqFactors);

      const maxAbsX = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const offset = c.shape.offset ?? 0;
      let worst = { index: -1, error: 0, bound: 0 };
      for (let i = offset; i < length; i++) {
        const token = Math.floor((i - offset) / stride);
        const bound = tolerance(maxAbsX, ropeMscale(c.params), angleSlack(c, c.positions[token]));
        const error = Math.abs(actual[i] - expected[i]);
        if (error / bound > worst.error / Math.max(worst.bound, 1e-30)) worst = { index: i, error, bound };
      }
      expect(worst.error, `worst ${JSON.stringify(worst)}`).toBeLessThanOrEqual(worst.bound);
      // Unrotated dimensions and gaps between rows are copied bit for bit.
      const nRot = c.params.nRot;
      for (let i = 0; i < length; i++) {
        const inRow = i >= (c.shape.offset ?? 0) && (i - (c.shape.offset ?? 0)) % stride < heads * headDim;
        const rotated = inRow && ((i - (c.shape.offset ?? 0)) % stride) % headDim < nRot;
        if (!rotated) expect(actual[i], `element ${i} should be untouched`).toBe(x[i]);
      }
    });
  });

  it('leaves position 0 unrotated (scaled by attn_factor only)', async () => {
    const c: Case = { name: 'p0', ordering: 'normal', shape: { tokens: 1, heads: 1, headDim: 8 }, params: { nRot: 8, freqBase: 10000 }, positions: [0] };
    const x = Float32Array.of(1, -2, 3, -4, 5, -6, 7, -8);
    expect([...(await ropeOnGpu(c, x))]).toEqual([...x]);
  });

  it('rejects an odd n_rot and a missing frequency-factor buffer', async () => {
    const kernel = await RopeKernel.create(gpu.device, { ordering: 'neox', hasFreqFactors: true });
    const x = createStorageBuffer(gpu.device, new Float32Array(64));
    const positions = createStorageBuffer(gpu.device, new Uint32Array(1));
    const shape = { tokens: 1, heads: 1, headDim: 64 };
    expect(() => submitComputePass(gpu.device, 'odd', (pass) => kernel.encode(pass, { x, positions }, shape, { nRot: 63, freqBase: 1e4 }))).toThrow(/nRot must be even/);
    expect(() => submitComputePass(gpu.device, 'missing', (pass) => kernel.encode(pass, { x, positions }, shape, { nRot: 64, freqBase: 1e4 }))).toThrow(/freqFactors buffer/);
  });
});
