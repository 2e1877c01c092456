/**
 * The attention kernel matches the f64 CPU reference for decode steps and
 * prefill blocks: head_dim 64 and 128, grouped-query heads (4 over 1 and 2),
 * contexts 1, 7, 33 and 100, sliding windows, sinks, split-K, prefill of
 * 1, 5 and 17 tokens after earlier ones, queries inside fused QKV rows, and
 * latent attention (deepseek2's MLA: values are the first dimensions of the
 * key rows, one cache bound twice).
 * Cache positions a query must not see hold NaN, so reading one shows.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { AttentionKernel } from '../../src/kernels/attention';
import type { AttentionShape } from '../../src/kernels/attention';
import { mulberry32, randomNormal } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import { attention } from '../../src/ref/attention';
import { acquireTestGpu } from './support/gpu';

/*
 * Tolerance, derived from the data of each case. The kernel accumulates in
 * f32, the reference in f64. A score s = scale * q.k summed in f32 over
 * headDim terms is off by at most delta = (headDim + 1) 2^-24 scale sum|q_d k_d|;
 * a softmax weight exp(s - M) then carries a relative error of at most
 * 2 delta, plus WGSL's exp error (3 + 2|x| ulp, under 1e-6 relative for the
 * weights that matter) and one such error per online rescaling. Perturbing
 * every weight by a relative eps moves the weighted mean of the values by at
 * most 2 eps max|v|, and summing n weighted values in f32 adds n 2^-24 max|v|
 * to numerator and denominator. So
 *   |gpu - ref| <= max|v| (4 delta_max + 1e-5 + 4 n 2^-24).
 * That bound is a worst case (about 1e-3 here; the errors measured on
 * lavapipe and SwiftShader are at most 2.5e-6), yet well below what any real
 * fault causes: a key too many or too few, the wrong head or a missing sink
 * moves outputs by a few percent of max|v|.
 */
function tolerance(q: Float32Array, kCache: Float32Array, vMaxAbs: number, shape: AttentionShape): number {
  const { headDim, nHeads, nKvHeads, maxContext, tokens, startPosition } = shape;
  const scale = shape.scale ?? 1 / Math.sqrt(headDim);
  const group = nHeads / nKvHeads;
  const qStride = shape.qTokenStride ?? nHeads * headDim;
  let worstAbsDot = 0;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < nHeads; h++) {
      const qBase = (shape.qOffset ?? 0) + t * qStride + h * headDim;
      for (let j = 0; j <= startPosition + t; j++) {
        const kBase = (Math.floor(h / group) * maxContext + j) * headDim;
        let absDot = 0;
        for (let d = 0; d < headDim; d++) absDot += Math.abs(q[qBase + d] * kCache[kBase + d]);
        if (Number.isFinite(absDot)) worstAbsDot = Math.max(worstAbsDot, absDot);
      }
    }
  }
  const delta = (headDim + 1) * 2 ** -24 * Math.abs(scale) * worstAbsDot;
  const n = startPosition + tokens;
  return vMaxAbs * (4 * delta + 1e-5 + 4 * n * 2 ** -24);
}

interface Case {
  name: string;
  shape: AttentionShape;
  sinks?: boolean;
  splits?: number;
  /** Latent attention: values are the first `latent` dimensions of each key row (the key cache bound as value cache too). */
  latent?: number;
}

function decodeCase(headDim: number, nHeads: number, nKvHeads: number, context: number, extra: Partial<AttentionShape> = {}): AttentionShape {
  return { tokens: 1, startPosition: context - 1, nHeads, nKvHeads, headDim, maxContext: context + 3, ...extra };
}

const CASES: Case[] = [];
for (const headDim of [64, 128]) {
  for (const nKvHeads of [1, 2]) {
    for (const context of [1, 7, 33, 100]) {
      CASES.push({ name: `decode, head_dim ${headDim}, 4 heads over ${nKvHeads}, context ${context}`, shape: decodeCase(headDim, 4, nKvHeads, context) });
    }
  }
}
CASES.push(
  { name: 'decode with a sliding window of 16 over 100', shape: decodeCase(64, 4, 2, 100, { window: 16 }) },
  { name: 'decode with a window larger than the context', shape: decodeCase(64, 4, 2, 10, { window: 64 }) },
  { name: 'decode with a window of 1 (only itself)', shape: decodeCase(64, 4, 1, 20, { window: 1 }) },
  { name: 'decode with sinks', shape: decodeCase(64, 4, 2, 33), sinks: true },
  { name: 'decode with sinks and a window of 8', shape: decodeCase(64, 4, 2, 100, { window: 8 }), sinks: true },
  { name: 'decode split over 2 workgroups', shape: decodeCase(64, 4, 2, 100), splits: 2 },
  { name: 'decode split over 5 workgroups with sinks and a window', shape: decodeCase(64, 4, 2, 333, { window: 300 }), sinks: true, splits: 5 },
  { name: 'decode split by default over a long context', shape: decodeCase(64, 4, 1, 600) },
  { name: 'decode, 8 heads over 1 (group 8), given scale', shape: decodeCase(64, 8, 1, 40, { scale: 0.3 }) },
  { name: 'decode, 2 heads over 2 (no grouping)', shape: decodeCase(64, 2, 2, 9) },
  { name: 'prefill of 1 token at position 4', shape: { tokens: 1, startPosition: 4, nHeads: 4, nKvHeads: 2, headDim: 64, maxContext: 8 } },
  { name: 'prefill of 5 tokens from position 0', shape: { tokens: 5, startPosition: 0, nHeads: 4, nKvHeads: 1, headDim: 64, maxContext: 8 } },
  { name: 'prefill of 5 tokens after 3', shape: { tokens: 5, startPosition: 3, nHeads: 4, nKvHeads: 2, headDim: 128, maxContext: 10 } },
  { name: 'prefill of 17 tokens after 20', shape: { tokens: 17, startPosition: 20, nHeads: 4, nKvHeads: 1, headDim: 64, maxContext: 40 } },
  { name: 'prefill of 17 tokens after 50, head_dim 128, 4 over 2', shape: { tokens: 17, startPosition: 50, nHeads: 4, nKvHeads: 2, headDim: 128, maxContext: 70 } },
  { name: 'prefill of 17 tokens with a window of 6', shape: { tokens: 17, startPosition: 9, nHeads: 4, nKvHeads: 2, headDim: 64, maxContext: 30, window: 6 } },
  { name: 'prefill of 17 tokens with sinks', shape: { tokens: 17, startPosition: 2, nHeads: 4, nKvHeads: 2, headDim: 64, maxContext: 20 }, sinks: true },
  { name: 'prefill of 17 tokens after 200, split over 4 workgroups', shape: { tokens: 17, startPosition: 200, nHeads: 4, nKvHeads: 2, headDim: 64, maxContext: 220 }, splits: 4 },
  { name: 'latent decode, 4 heads over 1 latent row of 64 + 32, context 33', shape: decodeCase(96, 4, 1, 33, { scale: 0.15 }), latent: 64 },
  { name: 'latent decode split over a long context', shape: decodeCase(96, 4, 1, 600, { scale: 0.15 }), latent: 64 },
  { name: 'latent prefill of 17 tokens after 5', shape: { tokens: 17, startPosition: 5, nHeads: 4, nKvHeads: 1, headDim: 96, maxContext: 24, scale: 0.15 }, latent: 64 },
  {
    name: 'prefill reading Q from fused QKV rows',
    shape: { tokens: 5, startPosition: 3, nHeads: 4, nKvHeads: 2, headDim: 64, maxContext: 8, qTokenStride: 8 * 64, qOffset: 64 },
  },
);

function randomArray(length: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length }, () => scale * randomNormal(rng));
}

/** A cache with random values at the positions some query sees and NaN everywhere else. */
function randomCache(shape: AttentionShape, rng: Rng): Float32Array {
  const { nKvHeads, maxContext, headDim, startPosition, tokens } = shape;
  const window = shape.window ?? 0;
  const lo = window === 0 ? 0 : Math.max(0, startPosition + 1 - window);
  const cache = new Float32Array(nKvHeads * maxContext * headDim).fill(NaN);
  for (let h = 0; h < nKvHeads; h++) {
    for (let p = lo; p < startPosition + tokens; p++) {
      for (let d = 0; d < headDim; d++) cache[(h * maxContext + p) * headDim + d] = randomNormal(rng);
    }
  }
  return cache;
}

describe('attention kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function attentionOnGpu(c: Case, q: Float32Array, kCache: Float32Array, vCache: Float32Array, sinks?: Float32Array): Promise<Float32Array> {
    const { device } = gpu;
    const { nHeads, nKvHeads, headDim, tokens } = c.shape;
    const value = c.latent === undefined ? {} : { valueDim: c.latent, valueRow: headDim };
    const kernel = await AttentionKernel.create(device, { nHeads, nKvHeads, headDim, ...value, hasSinks: sinks !== undefined });
    const outElements = tokens * nHeads * (c.latent ?? headDim);
    const kBuffer = createStorageBuffer(device, kCache, 'k cache');
    const buffers = {
      q: createStorageBuffer(device, q, 'q'),
      kCache: kBuffer,
      vCache: c.latent === undefined ? createStorageBuffer(device, vCache, 'v cache') : kBuffer,
      out: createEmptyStorageBuffer(device, outElements * 4, 'out'),
      sinks: sinks && createStorageBuffer(device, sinks, 'sinks'),
    };
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, buffers, c.shape, { splits: c.splits })),
    );
    return readFloat32(device, buffers.out, outElements);
  }

  CASES.forEach((c, index) => {
    it(c.name, async () => {
      const rng = mulberry32(500 + index);
      const { tokens, nHeads, headDim } = c.shape;
      const qElements = (c.shape.qOffset ?? 0) + tokens * (c.shape.qTokenStride ?? nHeads * headDim);
      // Queries of twice unit size make the softmax peaked rather than flat.
      const q = randomArray(qElements, rng, 2);
      const kCache = randomCache(c.shape, rng);
      // Latent attention reads its values from the key rows.
      const vCache = c.latent === undefined ? randomCache(c.shape, rng) : kCache;
      const sinks = c.sinks ? randomArray(nHeads, rng, 2) : undefined;

      const actual = await attentionOnGpu(c, q, kCache, vCache, sinks);
      const value = c.latent === undefined ? undefined : { dim: c.latent, row: c.shape.headDim };
      const expected = attention(q, kCache, vCache, c.shape, sinks, value);
      expect(actual.length).toBe(expected.length);

      const vMaxAbs = vCache.reduce((m, v) => (Number.isNaN(v) ? m : Math.max(m, Math.abs(v))), 0);
      const bound = tolerance(q, kCache, vMaxAbs, c.shape);
      let worst = { index: -1, actual: 0, expected: 0, error: 0 };
      for (let i = 0; i < expected.length; i++) {
        const error = Math.abs(actual[i] - expected[i]);
        if (!(error <= worst.error)) worst = { index: i, actual: actual[i], expected: expected[i], error };
      }
      expect(worst.error, `worst ${JSON.stringify(worst)}, bound ${bound}`).toBeLessThanOrEqual(bound);
    });
  });

  it('gives a one-position context its value exactly, weighted 1, in every head', async () => {
    const shape: AttentionShape = { tokens: 1, startPosition: 0, nHeads: 4, nKvHeads: 1, headDim: 64, maxContext: 1 };
    const rng = mulberry32(3);
    const v = randomArray(64, rng);
    const actual = await attentionOnGpu({ name: 'one', shape }, randomArray(4 * 64, rng), randomArray(64, rng), v);
    expect([...actual]).toEqual([...v, ...v, ...v, ...v]);
  });

  it('refuses a shape the kernel was not built for and positions past the cache', async () => {
    const kernel = await AttentionKernel.create(gpu.device, { nHeads: 4, nKvHeads: 2, headDim: 64, hasSinks: false });
    const buffer = createEmptyStorageBuffer(gpu.device, 4 * 64 * 64 * 4);
    const buffers = { q: buffer, kCache: buffer, vCache: buffer, out: createEmptyStorageBuffer(gpu.device, 4 * 64 * 4) };
    const shape: AttentionShape = { tokens: 1, startPosition: 7, nHeads: 4, nKvHeads: 2, headDim: 64, maxContext: 8 };
    const encode = (s: AttentionShape) => () => submitComputePass(gpu.device, 'bad', (pass) => kernel.encode(pass, buffers, s));
    expect(encode({ ...shape, nKvHeads: 1 })).toThrow(/built for 4\/2 heads of 64/);
    expect(encode({ ...shape, startPosition: 8 })).toThrow(/exceed the cache/);
  });
});
