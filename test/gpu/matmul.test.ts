/**
 * The matmul kernel (Y (+)= X W^T with W read in its stored blocks, decoded
 * once per tile of tokens) matches the CPU reference for every GPU weight
 * type, over token counts below, at and past a tile, row counts that are and
 * are not multiples of the rows per workgroup, weights at unaligned byte
 * offsets, matrix offsets, accumulation, other geometries and a 2-D grid.
 *
 * Tolerance, as for matvec: |gpu - ref| <= (cols + 2) * 2^-24 *
 * (sum_c |W[r, c] X[t, c]| + |Y0[t, r]|). The decoded weights equal the CPU's
 * bit for bit (dequant tests); the reference rounds an f64 sum once, the
 * kernel rounds every product and addition in f32 in its own order, and any
 * summation order of n terms stays within n * 2^-24 * sum |terms| (first
 * order), with cols bounding the roundings on any path plus one for the
 * accumulated Y0. Real faults (wrong token, group, scale) are off by a
 * sizeable fraction of the magnitude, far above 3e-5.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { isSoftwareDevice } from '../../src/gpu/adapter-kind';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { MatmulKernel } from '../../src/kernels/matmul';
import type { MatmulOptions } from '../../src/kernels/matmul';
import { GPU_WEIGHT_TYPES, quantDecoder } from '../../src/kernels/quant-decoders';
import { GgmlType, ggmlTypeName } from '../../src/quant/formats';
import { mulberry32, randomBlocks, randomNormal } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import { matmul, matmulAbs } from '../../src/ref/matmul';
import { acquireTestGpu } from './support/gpu';

/** [rows, tokens, weight byte offset] per row length; together they cover rows {1, 5, 67} and tokens {1, 3, 17}. */
const CASES_FIRST_COLS: ReadonlyArray<readonly [number, number, number]> = [
  [1, 1, 0],
  [5, 3, 3],
  [67, 17, 18],
];
const CASES_SECOND_COLS: ReadonlyArray<readonly [number, number, number]> = [
  [1, 17, 1],
  [5, 1, 0],
  [67, 3, 2],
];

function colsFor(type: GgmlType): [number, number] {
  const { blockElements } = quantDecoder(type);
  if (blockElements === 256) return [256, 512];
  if (blockElements === 32) return [32, 96];
  return [8, 40];
}

function randomMatrix(length: number, rng: Rng): Float32Array {
  return Float32Array.from({ length }, () => randomNormal(rng));
}

interface Problem {
  type: GgmlType;
  rows: number;
  cols: number;
  tokens: number;
  weights: Uint8Array;
  /** X [tokens, cols]. */
  x: Float32Array;
}

function randomProblem(type: GgmlType, rows: number, cols: number, tokens: number, seed: number): Problem {
  const rng = mulberry32(seed);
  return { type, rows, cols, tokens, weights: randomBlocks(type, rows * cols, rng), x: randomMatrix(tokens * cols, rng) };
}

/** Entries where |actual - expected| exceeds (cols + 2) 2^-24 magnitude, described for messages. */
function outOfTolerance(actual: Float32Array, expected: Float32Array, magnitude: Float32Array, cols: number): string[] {
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const bound = (cols + 2) * 2 ** -24 * magnitude[i];
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) bad.push(`[${i}] ${actual[i]} vs ${expected[i]} (bound ${bound})`);
  }
  return bad;
}

describe('matmul kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  interface RunOptions extends MatmulOptions {
    wOffsetBytes?: number;
    xOffset?: number;
    yOffset?: number;
    /** Initial Y [tokens, rows] (from yOffset); the kernel then accumulates into it. */
    accumulateInto?: Float32Array;
    /** Multiplies the product before it is written or added. */
    scale?: number;
  }

  /** Runs the kernel on `problem`; returns Y [tokens, rows] (after yOffset). */
  async function matmulOnGpu(problem: Problem, options: RunOptions = {}): Promise<Float32Array> {
    const { device } = gpu;
    const { rows, cols, tokens, weights, x } = problem;
    const { wOffsetBytes = 0, xOffset = 0, yOffset = 0, accumulateInto, scale } = options;
    const kernel = await MatmulKernel.create(device, problem.type, options);
    const wBytes = new Uint8Array(wOffsetBytes + weights.length).fill(0x5a);
    wBytes.set(weights, wOffsetBytes);
    // NaN filler around X would poison any sum that strays outside it.
    const xData = new Float32Array(xOffset + x.length + 8).fill(NaN);
    xData.set(x, xOffset);
    const yData = new Float32Array(yOffset + tokens * rows).fill(NaN);
    yData.set(accumulateInto ?? new Float32Array(tokens * rows).fill(-7), yOffset);
    const w = createStorageBuffer(device, wBytes, 'W');
    const xBuffer = createStorageBuffer(device, xData, 'X');
    const yBuffer = createStorageBuffer(device, yData, 'Y');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) =>
        kernel.encode(
          pass,
          { w, x: xBuffer, y: yBuffer },
          { rows, cols, tokens, wOffsetBytes, xOffset, yOffset, accumulate: accumulateInto !== undefined, scale },
        ),
      ),
    );
    const y = await readFloat32(device, yBuffer, yOffset + tokens * rows);
    expect(y.subarray(0, yOffset).every(Number.isNaN), 'Y before yOffset is untouched').toBe(true);
    return y.subarray(yOffset);
  }

  function expectClose(actual: Float32Array, problem: Problem, y0?: Float32Array, scale = 1): void {
    const { type, rows, cols, tokens, weights, x } = problem;
    let expected = matmul(type, weights, { rows, cols }, x, tokens).map((v) => v * scale);
    let magnitude = matmulAbs(type, weights, { rows, cols }, x, tokens).map((m) => m * Math.abs(scale));
    if (y0) {
      expected = expected.map((v, i) => v + y0[i]);
      magnitude = magnitude.map((m, i) => m + Math.abs(y0[i]));
    }
    const what = `${ggmlTypeName(type)} ${rows}x${cols}, ${tokens} tokens`;
    expect(outOfTolerance(actual, expected, magnitude, cols), what).toEqual([]);
  }

  for (const type of GPU_WEIGHT_TYPES) {
    const name = ggmlTypeName(type);
    const [firstCols, secondCols] = colsFor(type);
    it(`${name}: rows {1, 5, 67} x tokens {1, 3, 17} x cols {${firstCols}, ${secondCols}}, weights at unaligned offsets`, async () => {
      for (const [cols, cases] of [[firstCols, CASES_FIRST_COLS], [secondCols, CASES_SECOND_COLS]] as const) {
        for (const [rows, tokens, wOffsetBytes] of cases) {
          const problem = randomProblem(type, rows, cols, tokens, type * 10_000 + rows * 100 + tokens * 7 + cols);
          expectClose(await matmulOnGpu(problem, { wOffsetBytes }), problem);
        }
      }
    });
  }

  it('accumulates into Y (a residual add) for 33 tokens at X and Y offsets', async () => {
    const problem = randomProblem(GgmlType.Q4_K, 6, 256, 33, 41);
    const y0 = randomMatrix(33 * 6, mulberry32(42));
    const actual = await matmulOnGpu(problem, { accumulateInto: y0, xOffset: 12, yOffset: 5, wOffsetBytes: 7 });
    expectClose(actual, problem, y0);
  });

  it('scales the product before writing or adding it (granite)', async () => {
    const problem = randomProblem(GgmlType.Q8_0, 5, 64, 9, 43);
    expectClose(await matmulOnGpu(problem, { scale: 1 / 6 }), problem, undefined, 1 / 6);
    const y0 = randomMatrix(9 * 5, mulberry32(44));
    expectClose(await matmulOnGpu(problem, { accumulateInto: y0, scale: 0.22 }), problem, y0, 0.22);
  });

  it('writes a column slice of a wider Y (yStride: one piece of a row-split matrix), leaving the other columns', async () => {
    const { device } = gpu;
    const problem = randomProblem(GgmlType.Q8_0, 5, 64, 11, 45);
    const [width, first] = [9, 3];
    const kernel = await MatmulKernel.create(device, problem.type);
    const w = createStorageBuffer(device, problem.weights, 'W');
    const x = createStorageBuffer(device, problem.x, 'X');
    const y = createStorageBuffer(device, new Float32Array(problem.tokens * width).fill(-7), 'Y');
    const shape = { rows: problem.rows, cols: problem.cols, tokens: problem.tokens, yOffset: first, yStride: width };
    await withGpuErrorScope(device, kernel.label, () => submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, { w, x, y }, shape)));
    const wide = await readFloat32(device, y, problem.tokens * width);
    const inSlice = (i: number) => i % width >= first && i % width < first + problem.rows;
    expect(wide.filter((_, i) => !inSlice(i)).every((v) => v === -7)).toBe(true);
    expectClose(wide.filter((_, i) => inSlice(i)), problem);
    expect(() => kernel.encode({} as GPUComputePassEncoder, { w, x, y }, { ...shape, yStride: 4 })).toThrow(/yStride must be an integer >= rows/);
  });

  it('gives the same results with other geometries and tile sizes', async () => {
    const problem = randomProblem(GgmlType.Q5_0, 11, 160, 19, 51);
    const geometries: MatmulOptions[] = [
      { workgroupSize: 1, rowsPerWorkgroup: 1, tokensPerTile: 1 },
      { workgroupSize: 15, rowsPerWorkgroup: 3, tokensPerTile: 5 },
      // Tiles above the default 8 compile slowly on SwiftShader (seconds per pipeline), so none is tested here.
      { workgroupSize: 128, rowsPerWorkgroup: 8, tokensPerTile: 4 },
      // Both defaults, whichever adapter this runs on: 16 threads per row (GPUs), one (software adapters).
      { workgroupSize: 64, rowsPerWorkgroup: 4, tokensPerTile: 8 },
      { workgroupSize: 64, rowsPerWorkgroup: 64, tokensPerTile: 8 },
    ];
    for (const geometry of geometries) expectClose(await matmulOnGpu(problem, geometry), problem);
  });

  it('covers more workgroups than one grid dimension holds (2-D dispatch)', async () => {
    // 22,000 row groups x 3 token tiles = 66,000 workgroups.
    const problem = randomProblem(GgmlType.BF16, 22_000, 8, 24, 61);
    expectClose(await matmulOnGpu(problem, { workgroupSize: 1, rowsPerWorkgroup: 1, tokensPerTile: 8 }), problem);
  });

  it('names its variant by type and geometry; by default one thread per row on a software adapter', async () => {
    const kernel = await MatmulKernel.create(gpu.device, GgmlType.MXFP4);
    expect(kernel.label).toBe(`matmul_mxfp4_wg64_rows${isSoftwareDevice(gpu.device) ? 64 : 4}_tile8`);
  });

  it('refuses bad shapes, small bindings, bad geometries and types without a decoder', async () => {
    const { device } = gpu;
    const kernel = await MatmulKernel.create(device, GgmlType.Q8_0);
    const w = createEmptyStorageBuffer(device, 4 * 34);
    const x = createEmptyStorageBuffer(device, 2 * 32 * 4);
    const y = createEmptyStorageBuffer(device, 4 * 4);
    const encode = (rows: number, cols: number, tokens: number) =>
      submitComputePass(device, 'bad matmul', (pass) => kernel.encode(pass, { w, x, y }, { rows, cols, tokens }));
    expect(() => encode(1, 40, 1)).toThrow(/positive multiple of 32 elements, got 40/);
    expect(() => encode(2, 32, 3)).toThrow(/x needs 384 bytes/);
    expect(() => encode(3, 32, 2)).toThrow(/y needs 24 bytes/);
    await expect(MatmulKernel.create(device, GgmlType.Q8_0, { workgroupSize: 64, rowsPerWorkgroup: 3 })).rejects.toThrow(
      /rows must divide threads/,
    );
    await expect(
      MatmulKernel.create(device, GgmlType.Q8_0, { workgroupSize: 256, rowsPerWorkgroup: 1, tokensPerTile: 32 }),
    ).rejects.toThrow(/needs 294912 bytes of workgroup memory/);
    await expect(MatmulKernel.create(device, GgmlType.Q8_1)).rejects.toThrow(/matmul: no GPU decoder for tensor type Q8_1/);
  });
});
