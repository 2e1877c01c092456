/**
 * The rmsnorm kernel matches the CPU reference over row lengths that are and
 * are not multiples of the workgroup size, with and without a weight.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { pipelineCacheFor } from '../../src/gpu/pipelines';
import { RmsNormKernel } from '../../src/kernels/rmsnorm';
import type { RmsNormVariant } from '../../src/kernels/rmsnorm';
import { mulberry32, randomNormal } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import { rmsNorm } from '../../src/ref/rmsnorm';
import { worstRelativeError } from './support/compare';
import { acquireTestGpu } from './support/gpu';

/*
 * Tolerance: relative, per element. The reference sums squares in f64; the
 * kernel sums them in f32, each thread over cols/WG terms and then a tree of
 * log2(WG) levels. All terms are non-negative, so there is no cancellation and
 * the sum's relative error is below (cols/WG + log2 WG) * 2^-24, about 1.3e-6
 * for 1024 columns; the square root halves it, and the reciprocal and the two
 * products add a few ulps (WGSL allows 2.5 ulp for division and sqrt). That
 * puts every element within 2e-6 of the reference; 1e-5 leaves headroom while
 * any real fault (wrong column, missing eps, mean over the wrong count) is off
 * by 1e-3 or more.
 */
const RELATIVE_TOLERANCE = 1e-5;
const EPS = 1e-6;

const SHAPES: ReadonlyArray<readonly [rows: number, cols: number]> = [
  [1, 1],
  [1, 7],
  [3, 33],
  [4, 257],
  [2, 1024],
];

function randomArray(length: number, rng: Rng, map: (normal: number) => number): Float32Array {
  return Float32Array.from({ length }, () => map(randomNormal(rng)));
}

describe('rmsnorm kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function runRmsNorm(
    variant: RmsNormVariant,
    rows: number,
    cols: number,
    x: Float32Array,
    weight?: Float32Array,
  ): Promise<Float32Array> {
    const { device } = gpu;
    const kernel = await RmsNormKernel.create(device, variant);
    const xBuffer = createStorageBuffer(device, x, 'x');
    const yBuffer = createEmptyStorageBuffer(device, rows * cols * 4, 'y');
    const weightBuffer = weight && createStorageBuffer(device, weight, 'weight');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) =>
        kernel.encode(pass, { x: xBuffer, y: yBuffer, weight: weightBuffer }, { rows, cols, eps: EPS }),
      ),
    );
    return readFloat32(device, yBuffer, rows * cols);
  }

  for (const hasWeight of [false, true]) {
    for (const [rows, cols] of SHAPES) {
      it(`normalises ${rows}x${cols} ${hasWeight ? 'with' : 'without'} a weight within ${RELATIVE_TOLERANCE} relative`, async () => {
        const rng = mulberry32(rows * 10_000 + cols * 10 + Number(hasWeight));
        // Rows with an offset and a scale of their own, so each row's rms differs.
        const x = randomArray(rows * cols, rng, (n) => 3 * n + 0.5);
        const weight = hasWeight ? randomArray(cols, rng, (n) => 1 + 0.5 * n) : undefined;

        const actual = await runRmsNorm({ hasWeight }, rows, cols, x, weight);

        const worst = worstRelativeError(actual, rmsNorm(x, rows, cols, EPS, weight));
        expect(worst.relativeError, JSON.stringify(worst)).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
      });
    }
  }

  it('gives the same result with other workgroup sizes', async () => {
    const [rows, cols] = [3, 100];
    const x = randomArray(rows * cols, mulberry32(7), (n) => n);
    const expected = rmsNorm(x, rows, cols, EPS);
    for (const workgroupSize of [1, 32, 256]) {
      const worst = worstRelativeError(await runRmsNorm({ hasWeight: false, workgroupSize }, rows, cols, x), expected);
      expect(worst.relativeError, `WG ${workgroupSize}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(
        RELATIVE_TOLERANCE,
      );
    }
  });

  it('normalises the leading columns of wider rows into rows of another width at an offset, leaving the rest', async () => {
    const { device } = gpu;
    // x: 3 rows of 40 (normalise the first 24); y: rows of 30 from element 5, pre-filled with 7s.
    const [rows, cols, xStride, yStride, yOffset] = [3, 24, 40, 30, 5];
    const rng = mulberry32(21);
    const x = randomArray(rows * xStride, rng, (n) => 2 * n + 0.25);
    const weight = randomArray(cols, rng, (n) => 1 + 0.5 * n);
    const kernel = await RmsNormKernel.create(device, { hasWeight: true });
    const yLength = yOffset + rows * yStride;
    const yBuffer = createStorageBuffer(device, new Float32Array(yLength).fill(7), 'y');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) =>
        kernel.encode(pass, { x: createStorageBuffer(device, x, 'x'), y: yBuffer, weight: createStorageBuffer(device, weight, 'w') }, { rows, cols, eps: EPS, xStride, yStride, yOffset }),
      ),
    );
    const actual = await readFloat32(device, yBuffer, yLength);
    const leading = Float32Array.from({ length: rows * cols }, (_, i) => x[Math.floor(i / cols) * xStride + (i % cols)]);
    const expected = rmsNorm(leading, rows, cols, EPS, weight);
    const got = Float32Array.from({ length: rows * cols }, (_, i) => actual[yOffset + Math.floor(i / cols) * yStride + (i % cols)]);
    const worst = worstRelativeError(got, expected);
    expect(worst.relativeError, JSON.stringify(worst)).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
    const untouched = actual.filter((_, i) => i < yOffset || (i - yOffset) % yStride >= cols);
    expect(untouched.length).toBe(yLength - rows * cols);
    expect(untouched.every((v) => v === 7)).toBe(true);
  });

  it('maps a row of zeros to zeros (eps keeps the scale finite)', async () => {
    const actual = await runRmsNorm({ hasWeight: false }, 2, 5, new Float32Array(10));
    expect([...actual]).toEqual(new Array(10).fill(0));
  });

  it('builds each variant once per device and names it by its key', async () => {
    const cache = pipelineCacheFor(gpu.device);
    const first = await RmsNormKernel.create(gpu.device, { hasWeight: true, workgroupSize: 64 });
    const sizeAfterFirst = cache.size;
    const second = await RmsNormKernel.create(gpu.device, { hasWeight: true });
    expect(cache.size).toBe(sizeAfterFirst);
    expect(second.label).toBe(first.label);
    expect(first.label).toBe('rmsnorm_f32_wg64_weight');
  });

  it('refuses buffers smaller than the shape', async () => {
    const kernel = await RmsNormKernel.create(gpu.device, { hasWeight: false });
    const x = createEmptyStorageBuffer(gpu.device, 4 * 4);
    const y = createEmptyStorageBuffer(gpu.device, 4 * 4);
    expect(() =>
      submitComputePass(gpu.device, 'too small', (pass) => kernel.encode(pass, { x, y }, { rows: 2, cols: 4, eps: EPS })),
    ).toThrow(/rmsnorm x needs 32 bytes/);
  });
});
