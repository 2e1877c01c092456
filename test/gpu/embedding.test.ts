/**
 * The embedding kernel gathers table rows in every tested weight format
 * exactly as the CPU reference does. Exact equality is the right
 * expectation: the decoders reproduce src/quant's dequantisation bit for bit,
 * and the scale is one correctly rounded f32 product on both sides.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { EmbeddingKernel } from '../../src/kernels/embedding';
import type { EmbeddingShape } from '../../src/kernels/embedding';
import { GgmlType, ggmlTypeName } from '../../src/quant/formats';
import { mulberry32, randomBlocks } from '../../src/quant/random';
import { embeddingLookup } from '../../src/ref/embedding';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

const TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K];
const VOCAB = 37;
const HIDDEN = 512; // two blocks of the K-quants
const IDS = [0, 36, 5, 5, 17];

describe('embedding kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function lookupOnGpu(type: GgmlType, table: Uint8Array, ids: number[], shape: Omit<EmbeddingShape, 'tokens'>): Promise<Float32Array> {
    const { device } = gpu;
    const kernel = await EmbeddingKernel.create(device, type);
    const offset = shape.tableOffsetBytes ?? 0;
    const padded = new Uint8Array(offset + table.length).fill(0x5a);
    padded.set(table, offset);
    const buffers = {
      table: createStorageBuffer(device, padded, 'token_embd'),
      ids: createStorageBuffer(device, Uint32Array.from(ids), 'ids'),
      out: createEmptyStorageBuffer(device, ids.length * shape.hidden * 4, 'embeddings'),
    };
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => kernel.encode(pass, buffers, { tokens: ids.length, ...shape })),
    );
    return readFloat32(device, buffers.out, ids.length * shape.hidden);
  }

  for (const type of TYPES) {
    it(`${ggmlTypeName(type)}: gathers rows (one repeated) equal to the reference`, async () => {
      const table = randomBlocks(type, VOCAB * HIDDEN, mulberry32(type + 1));
      const actual = await lookupOnGpu(type, table, IDS, { vocab: VOCAB, hidden: HIDDEN });
      expect(firstMismatch(actual, embeddingLookup(type, table, VOCAB, HIDDEN, IDS))).toBeUndefined();
    });
  }

  it('scales the rows (granite embedding multiplier) and reads a table at an odd byte offset', async () => {
    const type = GgmlType.Q4_K;
    const table = randomBlocks(type, VOCAB * HIDDEN, mulberry32(99));
    const shape = { vocab: VOCAB, hidden: HIDDEN, scale: 12, tableOffsetBytes: 3 };
    const actual = await lookupOnGpu(type, table, IDS, shape);
    expect(firstMismatch(actual, embeddingLookup(type, table, VOCAB, HIDDEN, IDS, 12))).toBeUndefined();
  });

  it('looks up a single token, and gives zeros for an id past the vocabulary', async () => {
    const type = GgmlType.Q8_0;
    const table = randomBlocks(type, VOCAB * 64, mulberry32(5));
    const one = await lookupOnGpu(type, table, [VOCAB - 1], { vocab: VOCAB, hidden: 64 });
    expect(firstMismatch(one, embeddingLookup(type, table, VOCAB, 64, [VOCAB - 1]))).toBeUndefined();
    const outside = await lookupOnGpu(type, table, [VOCAB, 3], { vocab: VOCAB, hidden: 64 });
    expect([...outside.subarray(0, 64)]).toEqual(new Array(64).fill(0));
    expect(firstMismatch(outside.subarray(64), embeddingLookup(type, table, VOCAB, 64, [3]))).toBeUndefined();
  });

  it('looks up a table split by rows (one lookup per piece into the same output) as the whole table', async () => {
    const { device } = gpu;
    const type = GgmlType.Q6_K;
    const table = randomBlocks(type, VOCAB * HIDDEN, mulberry32(7));
    const rowBytes = table.length / VOCAB;
    const ids = [...IDS, VOCAB];
    const kernel = await EmbeddingKernel.create(device, type);
    const out = createStorageBuffer(device, new Float32Array(ids.length * HIDDEN).fill(NaN), 'embeddings');
    const idBuffer = createStorageBuffer(device, Uint32Array.from(ids), 'ids');
    const pieces = [[0, 20], [20, VOCAB - 20]].map(([firstRow, rows]) => ({
      firstRow,
      rows,
      table: createStorageBuffer(device, table.subarray(firstRow * rowBytes, (firstRow + rows) * rowBytes), `rows from ${firstRow}`),
    }));
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) => {
        for (const { table: piece, firstRow, rows } of pieces) {
          kernel.encode(pass, { table: piece, ids: idBuffer, out }, { tokens: ids.length, vocab: VOCAB, hidden: HIDDEN, firstRow, rows });
        }
      }),
    );
    const actual = await readFloat32(device, out, ids.length * HIDDEN);
    expect(firstMismatch(actual.subarray(0, IDS.length * HIDDEN), embeddingLookup(type, table, VOCAB, HIDDEN, IDS))).toBeUndefined();
    expect([...actual.subarray(IDS.length * HIDDEN)]).toEqual(new Array(HIDDEN).fill(0));
  });

  it('refuses a row length that is not a whole number of blocks, and a table too small', async () => {
    const kernel = await EmbeddingKernel.create(gpu.device, GgmlType.Q4_K);
    const buffer = createStorageBuffer(gpu.device, new Uint8Array(144 * 4));
    const out = createEmptyStorageBuffer(gpu.device, 4096);
    const encode = (shape: EmbeddingShape) => () =>
      submitComputePass(gpu.device, 'bad', (pass) => kernel.encode(pass, { table: buffer, ids: buffer, out }, shape));
    expect(encode({ tokens: 1, vocab: 4, hidden: 128 })).toThrow(/multiple of 256/);
    expect(encode({ tokens: 1, vocab: 5, hidden: 256 })).toThrow(/weights need 720 bytes/);
    expect(encode({ tokens: 1, vocab: 5, hidden: 256, firstRow: 3, rows: 3 })).toThrow(/rows 3..5 exceed the vocabulary of 5/);
  });
});
