/**
 * The add kernel computes y = a + scale * b (or y += scale * b in place) over
 * any length. With scale 1 the result is exactly the f32 sum; with another
 * scale the GPU may fuse the multiply and add (one rounding instead of two),
 * so it is compared within one ulp of the larger term, the most a skipped
 * intermediate rounding can change the result.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { AddKernel } from '../../src/kernels/add';
import { mulberry32, randomNormal } from '../../src/quant/random';
import { add } from '../../src/ref/add';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

function randomArray(length: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length }, () => 10 * randomNormal(rng));
}

/** Largest |actual - expected| measured in ulps (2^-23 relative) of max(|a|, |scale b|). */
function worstUlps(actual: Float32Array, expected: Float32Array, a: Float32Array, b: Float32Array, scale: number): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const ulp = 2 ** -23 * Math.max(Math.abs(a[i]), Math.abs(scale * b[i]), 2 ** -126);
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / ulp);
  }
  return worst;
}

describe('add kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function addOnGpu(inPlace: boolean, a: Float32Array, b: Float32Array, scale?: number, workgroupSize?: number): Promise<Float32Array> {
    const { device } = gpu;
    const kernel = await AddKernel.create(device, { inPlace, workgroupSize });
    const bBuffer = createStorageBuffer(device, b, 'b');
    const y = inPlace ? createStorageBuffer(device, a, 'y') : createEmptyStorageBuffer(device, a.length * 4, 'y');
    const aBuffer = inPlace ? undefined : createStorageBuffer(device, a, 'a');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { y, b: bBuffer, a: aBuffer }, { length: a.length, scale })),
    );
    return readFloat32(device, y, a.length);
  }

  for (const inPlace of [false, true]) {
    const mode = inPlace ? 'y += b' : 'y = a + b';
    for (const length of [1, 7, 64, 1000, 100_003]) {
      it(`${mode}: ${length} element(s), exactly`, async () => {
        const a = randomArray(length, length);
        const b = randomArray(length, length + 1);
        expect(firstMismatch(await addOnGpu(inPlace, a, b), add(a, b))).toBeUndefined();
      });
    }
    it(`${mode} with scale 0.37, within 1 ulp`, async () => {
      const a = randomArray(777, 1);
      const b = randomArray(777, 2);
      const actual = await addOnGpu(inPlace, a, b, 0.37);
      expect(worstUlps(actual, add(a, b, 0.37), a, b, 0.37)).toBeLessThanOrEqual(1);
    });
  }

  it('covers lengths past 65,535 workgroups (a 2-D grid)', async () => {
    const length = 70_001;
    const a = randomArray(length, 3);
    const b = randomArray(length, 4);
    expect(firstMismatch(await addOnGpu(false, a, b, 1, 1), add(a, b))).toBeUndefined();
  });

  it('refuses a missing or superfluous a', async () => {
    const kernel = await AddKernel.create(gpu.device, { inPlace: true });
    const buffer = createEmptyStorageBuffer(gpu.device, 16);
    expect(() => submitComputePass(gpu.device, 'bad', (pass) => kernel.encode(pass, { y: buffer, b: buffer, a: buffer }, { length: 4 }))).toThrow(
      /exactly when the variant is not in place/,
    );
  });
});
