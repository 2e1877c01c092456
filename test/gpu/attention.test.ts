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
 * Tolerance. The kernel accumulates in f32, the reference in f64. A provable
 * worst case (each score off by (headDim + 1) 2^-24 scale sum|q_d k_d|, the
 * softmax weights by twice that plus WGSL's exp error, n f32 additions in
 * numerator and denominator) comes to about 1e-3 of max|v| over a 600-key
 * context: looser than what a real fault causes, since one key dropped from
 * 600 moves outputs by about 1e-3 of max|v|. So the bound is the measured
 * error with a margin instead: at most 8.0e-7 of max|v| on lavapipe and
 * SwiftShader over every case below (each case prints its own), bounded at
 * 4e-6 of max|v|. The last test shows the bound sees a single key dropped
 * anywhere in a long, split context.
 */
const RELATIVE_BOUND = 4e-6;

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

function maxAbs(values: Float32Array): number {
  return values.reduce((m, v) => (Number.isNaN(v) ? m : Math.max(m, Math.abs(v))), 0);
}

function worstError(actual: Float32Array, expected: Float32Array): { index: number; actual: number; expected: number; error: number } {
  let worst = { index: -1, actual: 0, expected: 0, error: 0 };
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    if (!(error <= worst.error)) worst = { index: i, actual: actual[i], expected: expected[i], error };
  }
  return worst;
}

/** A cache of one KV head without position `drop`: the positions after it move down by one. */
function withoutPosition(cache: Float32Array, maxContext: number, headDim: number, drop: number): Float32Array {
  const out = new Float32Array(cache.length - headDim);
  out.set(cache.subarray(0, drop * headDim));
  out.set(cache.subarray((drop + 1) * headDim, maxContext * headDim), drop * headDim);
  return out;
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

      const bound = RELATIVE_BOUND * maxAbs(vCache);
      const worst = worstError(actual, expected);
      console.log(`${c.name}: error ${(worst.error / maxAbs(vCache)).toExponential(2)} of max|v|`);
      expect(worst.error, `worst ${JSON.stringify(worst)}, bound ${bound}`).toBeLessThanOrEqual(bound);
    });
  });

  it('fails the bound when any one key of a long, split context is left out', async () => {
    // A flat softmax (small queries) gives every key a weight near 1/600, so
    // leaving any one out is a fault the comparison must see, at a split
    // boundary or not.
    const c: Case = { name: 'drop one key', shape: decodeCase(64, 4, 1, 600) };
    const { shape } = c;
    const rng = mulberry32(77);
    const q = randomArray(shape.nHeads * shape.headDim, rng, 0.05);
    const kCache = randomCache(shape, rng);
    const vCache = randomCache(shape, rng);
    const actual = await attentionOnGpu(c, q, kCache, vCache);
    const bound = RELATIVE_BOUND * maxAbs(vCache);
    expect(worstError(actual, attention(q, kCache, vCache, shape)).error).toBeLessThanOrEqual(bound);

    const keys = shape.startPosition + 1;
    let smallest = { key: -1, error: Infinity };
    for (let key = 0; key < keys; key++) {
      const dropped = { ...shape, startPosition: shape.startPosition - 1, maxContext: shape.maxContext - 1 };
      const expected = attention(q, withoutPosition(kCache, shape.maxContext, 64, key), withoutPosition(vCache, shape.maxContext, 64, key), dropped);
      const { error } = worstError(actual, expected);
      if (error < smallest.error) smallest = { key, error };
    }
    console.log(`dropping one of ${keys} keys: the smallest change is ${(smallest.error / maxAbs(vCache)).toExponential(2)} of max|v| (key ${smallest.key}), bound ${RELATIVE_BOUND}`);
    expect(smallest.error, `key ${smallest.key}`).toBeGreaterThan(bound);
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
