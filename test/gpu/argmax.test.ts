/**
 * The argmax kernel returns the index of the largest value, the lowest index
 * among equal ones, exactly as the CPU reference does, for vectors from one
 * value to a 262,144-entry vocabulary.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readBuffer } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { ArgmaxKernel } from '../../src/kernels/argmax';
import { mulberry32, randomNormal } from '../../src/quant/random';
import { argmax } from '../../src/ref/argmax';
import { acquireTestGpu } from './support/gpu';

function randomLogits(length: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length }, () => 5 * randomNormal(rng));
}

describe('argmax kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function argmaxOnGpu(values: Float32Array): Promise<number> {
    const { device } = gpu;
    const kernel = await ArgmaxKernel.create(device);
    const valuesBuffer = createStorageBuffer(device, values, 'logits');
    const result = createEmptyStorageBuffer(device, 4, 'argmax');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { values: valuesBuffer, result }, values.length)),
    );
    return new Uint32Array(await readBuffer(device, result))[0];
  }

  for (const length of [1, 2, 255, 4096, 4097, 50_000]) {
    it(`finds the maximum of ${length} random value(s)`, async () => {
      const values = randomLogits(length, length);
      expect(await argmaxOnGpu(values)).toBe(argmax(values));
    });
  }

  it('finds a maximum in the last slice of a 262,144-entry vocabulary', async () => {
    const values = randomLogits(262_144, 9);
    values[262_100] = 100;
    expect(await argmaxOnGpu(values)).toBe(262_100);
  });

  it('breaks ties toward the lowest index, across threads and slices', async () => {
    const values = randomLogits(50_000, 10);
    for (const i of [40_000, 7, 4096, 12_345]) values[i] = 50;
    expect(await argmaxOnGpu(values)).toBe(7);
    values[7] = 0;
    expect(await argmaxOnGpu(values)).toBe(4096);
  });

  it('returns 0 when all values are equal, and treats -0 and +0 as equal', async () => {
    expect(await argmaxOnGpu(new Float32Array(10_000).fill(-3))).toBe(0);
    expect(await argmaxOnGpu(Float32Array.of(-1, -0, 0, -2))).toBe(1);
  });

  it('handles all-negative values and a maximum at the very end', async () => {
    const values = Float32Array.from({ length: 4097 }, (_, i) => -1000 - i);
    values[4096] = -1;
    expect(await argmaxOnGpu(values)).toBe(4096);
  });
});
