/**
 * The matvec kernel (y (+)= W x with W read in its stored blocks) matches the
 * CPU reference for every GPU weight type, over row counts that are and are
 * not multiples of the rows per workgroup, weights at unaligned byte offsets,
 * vector offsets, accumulation, other workgroup geometries and a 2-D grid.
 *
 * Tolerance: |gpu - ref| <= (cols + 2) * 2^-24 * (sum_c |W[r, c] x[c]| + |y0[r]|).
 * The decoders reproduce the CPU's weights bit for bit (dequant tests), so the
 * only difference is rounding: the reference is the f32 rounding of an f64
 * sum (within 2^-24 of exact), while the kernel rounds each product and each
 * addition in f32, in its own order. Any order of summing n terms, with at
 * most n roundings on any path, stays within n * 2^-24 * sum |terms| (to first
 * order); cols bounds the number of products plus additions on any path, and
 * the accumulated y0 adds one more addition. A real fault (a wrong group,
 * scale or row) is off by a sizeable fraction of the row's magnitude, orders
 * of magnitude above 3e-5.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { isSoftwareDevice } from '../../src/gpu/adapter-kind';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { pipelineCacheFor } from '../../src/gpu/pipelines';
import { MatvecKernel } from '../../src/kernels/matvec';
import type { MatvecOptions } from '../../src/kernels/matvec';
import { GPU_WEIGHT_TYPES, quantDecoder } from '../../src/kernels/quant-decoders';
import { GgmlType, ggmlTypeName } from '../../src/quant/formats';
import { mulberry32, randomBlocks, randomNormal } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import { matvec, matvecAbs } from '../../src/ref/matvec';
import { acquireTestGpu } from './support/gpu';

const ROW_COUNTS = [1, 5, 67];
/** Weight offsets in bytes, one per row count: aligned, odd, and 2 mod 4. */
const W_OFFSETS = [0, 3, 18];

/** Two row lengths per block size: a single block and a few. */
function colsFor(type: GgmlType): number[] {
  const { blockElements } = quantDecoder(type);
  if (blockElements === 256) return [256, 512];
  if (blockElements === 32) return [32, 96];
  return [8, 40];
}

function randomVector(length: number, rng: Rng): Float32Array {
  return Float32Array.from({ length }, () => randomNormal(rng));
}

interface Problem {
  type: GgmlType;
  rows: number;
  cols: number;
  weights: Uint8Array;
  x: Float32Array;
}

function randomProblem(type: GgmlType, rows: number, cols: number, seed: number): Problem {
  const rng = mulberry32(seed);
  return { type, rows, cols, weights: randomBlocks(type, rows * cols, rng), x: randomVector(cols, rng) };
}

/** Indices where |actual - expected| exceeds (cols + 2) 2^-24 magnitude, with the values, for messages. */
function outOfTolerance(actual: Float32Array, expected: Float32Array, magnitude: Float32Array, cols: number): string[] {
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const bound = (cols + 2) * 2 ** -24 * magnitude[i];
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) bad.push(`[${i}] ${actual[i]} vs ${expected[i]} (bound ${bound})`);
  }
  return bad;
}

describe('matvec kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  interface RunOptions extends MatvecOptions {
    wOffsetBytes?: number;
    xOffset?: number;
    yOffset?: number;
    /** Initial y (from yOffset); the kernel then accumulates into it. */
    accumulateInto?: Float32Array;
    /** Multiplies the product before it is written or added. */
    scale?: number;
  }

  /** Runs the kernel on `problem`; returns y (after yOffset). */
  async function matvecOnGpu(problem: Problem, options: RunOptions = {}): Promise<Float32Array> {
    const { device } = gpu;
    const { rows, cols, weights, x } = problem;
    const { wOffsetBytes = 0, xOffset = 0, yOffset = 0, accumulateInto, scale } = options;
    const kernel = await MatvecKernel.create(device, problem.type, options);
    const wBytes = new Uint8Array(wOffsetBytes + weights.length).fill(0x5a);
    wBytes.set(weights, wOffsetBytes);
    const xData = new Float32Array(xOffset + cols).fill(NaN);
    xData.set(x, xOffset);
    const yData = new Float32Array(yOffset + rows).fill(NaN);
    yData.set(accumulateInto ?? new Float32Array(rows).fill(-7), yOffset);
    const w = createStorageBuffer(device, wBytes, 'W');
    const xBuffer = createStorageBuffer(device, xData, 'x');
    const yBuffer = createStorageBuffer(device, yData, 'y');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) =>
        kernel.encode(
          pass,
          { w, x: xBuffer, y: yBuffer },
          { rows, cols, wOffsetBytes, xOffset, yOffset, accumulate: accumulateInto !== undefined, scale },
        ),
      ),
    );
    const y = await readFloat32(device, yBuffer, yOffset + rows);
    expect(y.subarray(0, yOffset).every(Number.isNaN), 'y before yOffset is untouched').toBe(true);
    return y.subarray(yOffset);
  }

  function expectClose(actual: Float32Array, problem: Problem, y0?: Float32Array, scale = 1): void {
    const { type, rows, cols, weights, x } = problem;
    let expected = matvec(type, weights, { rows, cols }, x).map((v) => v * scale);
    let magnitude = matvecAbs(type, weights, { rows, cols }, x).map((m) => m * Math.abs(scale));
    if (y0) {
      expected = expected.map((v, r) => v + y0[r]);
      magnitude = magnitude.map((m, r) => m + Math.abs(y0[r]));
    }
    expect(outOfTolerance(actual, expected, magnitude, cols), `${ggmlTypeName(type)} ${rows}x${cols}`).toEqual([]);
  }

  for (const type of GPU_WEIGHT_TYPES) {
    const name = ggmlTypeName(type);
    it(`${name}: rows ${ROW_COUNTS.join(', ')} x cols ${colsFor(type).join(', ')}, weights at byte offsets ${W_OFFSETS.join(', ')}`, async () => {
      for (const cols of colsFor(type)) {
        for (const [i, rows] of ROW_COUNTS.entries()) {
          const problem = randomProblem(type, rows, cols, type * 1000 + rows * 10 + cols);
          expectClose(await matvecOnGpu(problem, { wOffsetBytes: W_OFFSETS[i] }), problem);
        }
      }
    });
  }

  it('accumulates into y (a residual add) at x and y offsets', async () => {
    const problem = randomProblem(GgmlType.Q4_K, 7, 256, 11);
    const y0 = randomVector(7, mulberry32(12));
    const actual = await matvecOnGpu(problem, { accumulateInto: y0, xOffset: 8, yOffset: 3, wOffsetBytes: 5 });
    expectClose(actual, problem, y0);
  });

  it('scales the product before writing or adding it (granite)', async () => {
    const problem = randomProblem(GgmlType.Q8_0, 9, 64, 13);
    expectClose(await matvecOnGpu(problem, { scale: 1 / 6 }), problem, undefined, 1 / 6);
    const y0 = randomVector(9, mulberry32(14));
    expectClose(await matvecOnGpu(problem, { accumulateInto: y0, scale: 0.22 }), problem, y0, 0.22);
  });

  for (const type of [GgmlType.F32, GgmlType.Q8_0, GgmlType.Q4_K]) {
    it(`${ggmlTypeName(type)}: batched over heads and tokens, each head its own matrix, x and y moved by their strides (latent attention)`, async () => {
      const { device } = gpu;
      // 3 heads of [rows, cols] back to back; x rows [token][head] of `cols` within wider token rows; y likewise.
      const rows = 5;
      const cols = colsFor(type)[0];
      const [heads, tokens] = [3, 2];
      const rng = mulberry32(type * 31 + 7);
      const perHead = randomBlocks(type, rows * cols, rng).length;
      const weights = Array.from({ length: heads }, () => randomBlocks(type, rows * cols, rng));
      const wBytes = new Uint8Array(heads * perHead);
      weights.forEach((w, h) => wBytes.set(w, h * perHead));
      const xHeadStride = cols + 8;
      const xTokenStride = heads * xHeadStride + 4;
      const yHeadStride = rows + 2;
      const yTokenStride = heads * yHeadStride + 1;
      const x = randomVector(4 + tokens * xTokenStride, rng);
      const yLength = 3 + tokens * yTokenStride;
      const kernel = await MatvecKernel.create(device, type);
      const yBuffer = createStorageBuffer(device, new Float32Array(yLength).fill(NaN), 'y');
      const batch = { heads, tokens, wHeadStrideBytes: perHead, xHeadStride, xTokenStride, yHeadStride, yTokenStride };
      await withGpuErrorScope(device, kernel.label, () =>
        submitComputePass(device, kernel.label, (pass) =>
          kernel.encode(pass, { w: createStorageBuffer(device, wBytes, 'W'), x: createStorageBuffer(device, x, 'x'), y: yBuffer }, { rows, cols, xOffset: 4, yOffset: 3, batch }),
        ),
      );
      const y = await readFloat32(device, yBuffer, yLength);
      let written = 0;
      for (let t = 0; t < tokens; t++) {
        for (let h = 0; h < heads; h++) {
          const xs = x.slice(4 + t * xTokenStride + h * xHeadStride, 4 + t * xTokenStride + h * xHeadStride + cols);
          const at = 3 + t * yTokenStride + h * yHeadStride;
          const problem = { type, rows, cols, weights: weights[h], x: xs };
          const actual = y.slice(at, at + rows);
          expectClose(actual, problem);
          written += rows;
        }
      }
      expect(y.filter((v) => !Number.isNaN(v)).length, 'nothing else is written').toBe(written);
    });
  }

  it('gives the same results with other workgroup geometries', async () => {
    const problem = randomProblem(GgmlType.Q8_0, 13, 192, 21);
    const geometries: MatvecOptions[] = [
      { workgroupSize: 1, rowsPerWorkgroup: 1 },
      { workgroupSize: 4, rowsPerWorkgroup: 4 },
      { workgroupSize: 32, rowsPerWorkgroup: 1 },
      { workgroupSize: 256, rowsPerWorkgroup: 8 },
      // Both defaults, whichever adapter this runs on: 32 threads per row (GPUs), one (software adapters).
      { workgroupSize: 64, rowsPerWorkgroup: 2 },
      { workgroupSize: 64, rowsPerWorkgroup: 64 },
    ];
    for (const geometry of geometries) expectClose(await matvecOnGpu(problem, geometry), problem);
  });

  it('covers more rows than one grid dimension holds (2-D dispatch)', async () => {
    // 65,537 rows at one row per workgroup need more than 65,535 workgroups.
    const problem = randomProblem(GgmlType.F16, 65_537, 8, 31);
    expectClose(await matvecOnGpu(problem, { workgroupSize: 8, rowsPerWorkgroup: 1 }), problem);
  });

  it('names its variant and builds it once per device; by default one thread per row on a software adapter', async () => {
    const kernel = await MatvecKernel.create(gpu.device, GgmlType.Q6_K);
    const cacheSize = pipelineCacheFor(gpu.device).size;
    const rows = isSoftwareDevice(gpu.device) ? 64 : 2;
    const again = await MatvecKernel.create(gpu.device, GgmlType.Q6_K, { workgroupSize: 64, rowsPerWorkgroup: rows });
    expect(pipelineCacheFor(gpu.device).size).toBe(cacheSize);
    expect(again.label).toBe(kernel.label);
    expect(kernel.label).toBe(`matvec_q6_k_wg64_rows${rows}`);
  });

  it('refuses bad shapes, small bindings, bad geometries and types without a decoder', async () => {
    const { device } = gpu;
    const kernel = await MatvecKernel.create(device, GgmlType.Q4_0);
    const w = createEmptyStorageBuffer(device, 8 * 18);
    const x = createEmptyStorageBuffer(device, 64 * 4);
    const y = createEmptyStorageBuffer(device, 4 * 4);
    const encode = (rows: number, cols: number, xOffset = 0) =>
      submitComputePass(device, 'bad matvec', (pass) => kernel.encode(pass, { w, x, y }, { rows, cols, xOffset }));
    expect(() => encode(1, 48)).toThrow(/positive multiple of 32 elements, got 48/);
    expect(() => encode(5, 64)).toThrow(/weights need 180 bytes but their binding holds 144/);
    expect(() => encode(1, 32, 2)).toThrow(/xOffset must be .* a multiple of 4/);
    expect(() => encode(5, 32)).toThrow(/y needs 20 bytes/);
    await expect(MatvecKernel.create(device, GgmlType.Q4_0, { workgroupSize: 48, rowsPerWorkgroup: 1 })).rejects.toThrow(
      /power of two/,
    );
    await expect(MatvecKernel.create(device, GgmlType.Q8_1)).rejects.toThrow(/matvec: no GPU decoder for tensor type Q8_1/);
  });
});
