/**
 * The fused rope_kv_write kernel gives the bits of the three dispatches it
 * replaces (rope on q, rope on k, kv_write), themselves held to the CPU
 * reference in rope.test.ts and kv-write.test.ts: q rotated in place, the
 * rotated keys and the values at their cache positions, every other cache
 * position and k untouched; in both orderings, with partial rotation, GQA,
 * YaRN and frequency factors, for one token and for a batch.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { KvWriteKernel } from '../../src/kernels/kv-write';
import { RopeKernel } from '../../src/kernels/rope';
import type { RopeOrdering, RopeParams } from '../../src/kernels/rope';
import { RopeKvWriteKernel } from '../../src/kernels/rope-kv-write';
import { mulberry32, randomNormal } from '../../src/quant/random';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

interface Case {
  name: string;
  ordering: RopeOrdering;
  tokens: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  startPosition: number;
  params: RopeParams;
  freqFactors?: Float32Array;
}

const MAX_CONTEXT = 48;
const CASES: Case[] = [];
for (const ordering of ['normal', 'neox'] as const) {
  CASES.push(
    { name: 'one token, GQA 8/2, head_dim 64', ordering, tokens: 1, nHeads: 8, nKvHeads: 2, headDim: 64, startPosition: 37, params: { nRot: 64, freqBase: 10000 } },
    { name: '5 tokens, partial rotation 32 of 64', ordering, tokens: 5, nHeads: 4, nKvHeads: 4, headDim: 64, startPosition: 3, params: { nRot: 32, freqBase: 500000 } },
    {
      name: '3 tokens, YaRN, head_dim 128',
      ordering, tokens: 3, nHeads: 2, nKvHeads: 1, headDim: 128, startPosition: 40,
      params: { nRot: 96, freqBase: 10000, freqScale: 0.125, extFactor: 1, attnFactor: 0.9, nCtxOrig: 4096 },
    },
    {
      name: '2 tokens, frequency factors',
      ordering, tokens: 2, nHeads: 4, nKvHeads: 2, headDim: 64, startPosition: 10, params: { nRot: 64, freqBase: 500000 },
      freqFactors: Float32Array.from({ length: 32 }, (_, i) => (i < 8 ? 1 : i < 24 ? 1 + i / 4 : 8)),
    },
  );
}

function random(length: number, rng: () => number): Float32Array {
  return Float32Array.from({ length }, () => randomNormal(rng));
}

describe('rope_kv_write kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  for (const c of CASES) {
    it(`${c.ordering}, ${c.name}: the bits of rope q, rope k and kv_write`, async () => {
      const { device } = gpu;
      const rng = mulberry32(c.tokens * 100 + c.headDim + (c.ordering === 'neox' ? 1 : 0));
      const q = random(c.tokens * c.nHeads * c.headDim, rng);
      const k = random(c.tokens * c.nKvHeads * c.headDim, rng);
      const v = random(c.tokens * c.nKvHeads * c.headDim, rng);
      const cacheElements = c.nKvHeads * MAX_CONTEXT * c.headDim;
      const kCache0 = random(cacheElements, rng);
      const vCache0 = random(cacheElements, rng);
      const positions = Uint32Array.from({ length: c.tokens }, (_, t) => c.startPosition + t);
      const variant = { ordering: c.ordering, hasFreqFactors: c.freqFactors !== undefined };
      const cache = { nKvHeads: c.nKvHeads, maxContext: MAX_CONTEXT, headDim: c.headDim };

      const run = async (fused: boolean) => {
        const buffers = {
          q: createStorageBuffer(device, q),
          k: createStorageBuffer(device, k),
          v: createStorageBuffer(device, v),
          positions: createStorageBuffer(device, positions),
          kCache: createStorageBuffer(device, kCache0),
          vCache: createStorageBuffer(device, vCache0),
          freqFactors: c.freqFactors && createStorageBuffer(device, c.freqFactors),
        };
        const ropeKernel = await RopeKernel.create(device, variant);
        const kvWrite = await KvWriteKernel.create(device);
        const ropeKvWrite = await RopeKvWriteKernel.create(device, variant);
        await withGpuErrorScope(device, 'rope + kv write', () =>
          submitComputePass(device, 'rope + kv write', (pass) => {
            if (fused) {
              ropeKvWrite.encode(pass, buffers, { ...cache, tokens: c.tokens, nHeads: c.nHeads, startPosition: c.startPosition }, c.params);
              return;
            }
            const { positions: at, freqFactors } = buffers;
            ropeKernel.encode(pass, { x: buffers.q, positions: at, freqFactors }, { tokens: c.tokens, heads: c.nHeads, headDim: c.headDim }, c.params);
            ropeKernel.encode(pass, { x: buffers.k, positions: at, freqFactors }, { tokens: c.tokens, heads: c.nKvHeads, headDim: c.headDim }, c.params);
            kvWrite.encode(pass, buffers, { ...cache, tokens: c.tokens, startPosition: c.startPosition });
          }),
        );
        return {
          q: await readFloat32(device, buffers.q, q.length),
          k: await readFloat32(device, buffers.k, k.length),
          kCache: await readFloat32(device, buffers.kCache, cacheElements),
          vCache: await readFloat32(device, buffers.vCache, cacheElements),
        };
      };

      const separate = await run(false);
      const fused = await run(true);
      expect(firstMismatch(separate.q, q), 'q was rotated').toBeDefined();
      expect(firstMismatch(fused.q, separate.q), 'q').toBeUndefined();
      expect(firstMismatch(fused.kCache, separate.kCache), 'k cache').toBeUndefined();
      expect(firstMismatch(fused.vCache, separate.vCache), 'v cache').toBeUndefined();
      expect(firstMismatch(fused.k, k), 'k itself is left as it was').toBeUndefined();
      // Outside the written positions the caches keep their old contents.
      const written = new Set<number>();
      for (let h = 0; h < c.nKvHeads; h++) {
        for (let t = 0; t < c.tokens; t++) for (let d = 0; d < c.headDim; d++) written.add((h * MAX_CONTEXT + c.startPosition + t) * c.headDim + d);
      }
      const untouched = (a: Float32Array, b: Float32Array) => a.every((x, i) => written.has(i) || Object.is(x, b[i]));
      expect(untouched(fused.kCache, kCache0) && untouched(fused.vCache, vCache0)).toBe(true);
    });
  }

  it('refuses positions past the cache and a missing frequency-factor buffer', async () => {
    const { device } = gpu;
    const kernel = await RopeKvWriteKernel.create(device, { ordering: 'normal', hasFreqFactors: true });
    const buffer = (floats: number) => createStorageBuffer(device, new Float32Array(floats));
    const buffers = { q: buffer(64), k: buffer(64), v: buffer(64), positions: buffer(1), kCache: buffer(64 * 4), vCache: buffer(64 * 4) };
    const shape = { tokens: 1, nHeads: 1, nKvHeads: 1, headDim: 64, maxContext: 4, startPosition: 0 };
    submitComputePass(device, 'refusals', (pass) => {
      expect(() => kernel.encode(pass, buffers, shape, { nRot: 64, freqBase: 10000 })).toThrow(/freqFactors/);
      expect(() => kernel.encode(pass, { ...buffers, freqFactors: buffer(32) }, { ...shape, startPosition: 4 }, { nRot: 64, freqBase: 10000 })).toThrow(/exceed/);
      expect(() => kernel.encode(pass, { ...buffers, freqFactors: buffer(32) }, shape, { nRot: 66, freqBase: 10000 })).toThrow(/nRot/);
    });
  });
});
