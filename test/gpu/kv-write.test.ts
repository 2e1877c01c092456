/**
 * The kv_write kernel stores new keys and values at their positions of the
 * [nKvHeads][maxContext][headDim] caches exactly (it only copies), leaving
 * every other position as it was.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { KvWriteKernel } from '../../src/kernels/kv-write';
import type { KvWriteShape } from '../../src/kernels/kv-write';
import { mulberry32, randomNormal } from '../../src/quant/random';
import { kvWrite } from '../../src/ref/kv-write';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

function randomArray(length: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length }, () => randomNormal(rng));
}

describe('kv_write kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function writeOnGpu(shape: KvWriteShape, k: Float32Array, v: Float32Array, cacheK: Float32Array, cacheV: Float32Array) {
    const { device } = gpu;
    const kernel = await KvWriteKernel.create(device);
    const kCache = createStorageBuffer(device, cacheK, 'k cache');
    const vCache = createStorageBuffer(device, cacheV, 'v cache');
    const kBuffer = createStorageBuffer(device, k, 'k');
    const vBuffer = k === v ? kBuffer : createStorageBuffer(device, v, 'v');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { k: kBuffer, v: vBuffer, kCache, vCache }, shape)),
    );
    return [await readFloat32(device, kCache, cacheK.length), await readFloat32(device, vCache, cacheV.length)];
  }

  const SHAPES: KvWriteShape[] = [
    { tokens: 1, startPosition: 0, nKvHeads: 1, maxContext: 4, headDim: 64 },
    { tokens: 5, startPosition: 3, nKvHeads: 2, maxContext: 12, headDim: 64 },
    { tokens: 17, startPosition: 20, nKvHeads: 2, maxContext: 40, headDim: 128 },
    { tokens: 1, startPosition: 39, nKvHeads: 3, maxContext: 40, headDim: 8 },
  ];

  SHAPES.forEach((shape, index) => {
    it(`writes ${shape.tokens} token(s) at position ${shape.startPosition} of ${shape.nKvHeads} head(s) x ${shape.headDim}`, async () => {
      const rowElements = shape.tokens * shape.nKvHeads * shape.headDim;
      const cacheElements = shape.nKvHeads * shape.maxContext * shape.headDim;
      const k = randomArray(rowElements, 10 + index);
      const v = randomArray(rowElements, 20 + index);
      const oldK = randomArray(cacheElements, 30 + index);
      const oldV = randomArray(cacheElements, 40 + index);
      const [actualK, actualV] = await writeOnGpu(shape, k, v, oldK, oldV);
      expect(firstMismatch(actualK, kvWrite(Float32Array.from(oldK), k, shape))).toBeUndefined();
      expect(firstMismatch(actualV, kvWrite(Float32Array.from(oldV), v, shape))).toBeUndefined();
    });
  });

  it('takes K and V from one fused QKV buffer (token stride and offsets)', async () => {
    // Rows of [q: 4 heads | k: 2 heads | v: 2 heads] x 16 dims.
    const headDim = 16;
    const stride = 8 * headDim;
    const shape: KvWriteShape = { tokens: 3, startPosition: 2, nKvHeads: 2, maxContext: 6, headDim, srcTokenStride: stride, kOffset: 4 * headDim, vOffset: 6 * headDim };
    const qkv = randomArray(3 * stride, 7);
    const empty = new Float32Array(2 * 6 * headDim);
    const [actualK, actualV] = await writeOnGpu(shape, qkv, qkv, empty, empty);
    expect(firstMismatch(actualK, kvWrite(new Float32Array(empty.length), qkv, shape, shape.kOffset))).toBeUndefined();
    expect(firstMismatch(actualV, kvWrite(new Float32Array(empty.length), qkv, shape, shape.vOffset))).toBeUndefined();
    expect(actualK[(1 * 6 + 2) * headDim]).toBe(qkv[5 * headDim]); // token 0, KV head 1 -> head 1, position 2
  });

  it('keys only (a latent cache): writes the key rows and binds no values', async () => {
    const { device } = gpu;
    const kernel = await KvWriteKernel.create(device, { keysOnly: true });
    // Latent rows of 24 (16 latent + 8 rope) for 3 tokens at positions 4..6 of 8; position 3 keeps its old row.
    const shape: KvWriteShape = { tokens: 3, startPosition: 4, nKvHeads: 1, maxContext: 8, headDim: 24 };
    const rows = randomArray(3 * 24, 11);
    const old = randomArray(8 * 24, 12);
    const kCache = createStorageBuffer(device, old, 'latent cache');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { k: createStorageBuffer(device, rows, 'rows'), kCache }, shape)),
    );
    const actual = await readFloat32(device, kCache, 8 * 24);
    expect(firstMismatch(actual, kvWrite(Float32Array.from(old), rows, shape))).toBeUndefined();
    expect(() => submitComputePass(device, 'values', (pass) => kernel.encode(pass, { k: kCache, v: kCache, kCache, vCache: kCache }, shape))).toThrow(/exactly when the variant writes values/);
  });

  it('refuses positions past the end of the cache', async () => {
    const kernel = await KvWriteKernel.create(gpu.device);
    const buffer = createStorageBuffer(gpu.device, new Float32Array(64));
    const shape = { tokens: 2, startPosition: 3, nKvHeads: 1, maxContext: 4, headDim: 8 };
    expect(() =>
      submitComputePass(gpu.device, 'past end', (pass) => kernel.encode(pass, { k: buffer, v: buffer, kCache: buffer, vCache: buffer }, shape)),
    ).toThrow(/exceed the cache/);
  });
});
