/**
 * Shared weights larger than one storage binding (src/models/moe-transformer-weights.ts):
 * with maxWeightBindingBytes forced to a third of token_embd, the token
 * embedding and output matrices are split by rows into 3 buffers, looked up
 * and projected one piece at a time, and the logits (teacher-forced prefill,
 * matmul path, and token-by-token decode, matvec path) are bit-identical to
 * the same model loaded whole; also with the output tied to token_embd.
 * Any other tensor past the limit fails the load with a TensorBindingError.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf, tensorDataRange } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { writeGguf } from '../../src/gguf/writer';
import type { GpuContext } from '../../src/gpu/device';
import { MoeTransformer } from '../../src/models/moe-transformer';
import type { MoeTransformerOptions } from '../../src/models/moe-transformer';
import { TensorBindingError } from '../../src/models/moe-transformer-weights';
import type { GpuModelWeights } from '../../src/models/moe-transformer-weights';
import { mulberry32 } from '../../src/quant/random';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { acquireTestGpu } from './support/gpu';

const PIECES = 3;
const OPTIONS: MoeTransformerOptions = { maxContext: 32, maxBatchTokens: 8 };

/** `bytes` without output.weight: the output projection is then token_embd (tied). */
async function withoutOutput(bytes: Uint8Array): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const tensors = file.tensors
    .filter((t) => t.name !== 'output.weight')
    .map((t) => {
      const { offset, length } = tensorDataRange(file, t);
      return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
    });
  return writeGguf({ version: file.version, alignment: file.alignment, metadata: [...file.metadata.values()], tensors });
}

/** A binding limit of a third of token_embd's rows (rounded up): it splits token_embd and output into PIECES pieces. */
async function splittingLimit(bytes: Uint8Array): Promise<number> {
  const file = await readGguf(sourceFromBytes(bytes));
  const t = file.tensors.find((x) => x.name === 'token_embd.weight')!;
  const rows = t.dims[1];
  const rowBytes = tensorDataRange(file, t).length / rows;
  return Math.ceil(rows / PIECES) * rowBytes;
}

function weightsOf(model: MoeTransformer): GpuModelWeights {
  return (model as unknown as { weights: GpuModelWeights }).weights;
}

/** Positions where two logit rows differ (bit for bit). */
function differences(a: Float32Array[], b: Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  a.forEach((row, r) => {
    const x = new Uint32Array(row.buffer, row.byteOffset, row.length);
    const y = new Uint32Array(b[r].buffer, b[r].byteOffset, b[r].length);
    expect(x.length).toBe(y.length);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  });
  return n;
}

describe('shared weights split by rows across buffers', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function run(bytes: Uint8Array, options: MoeTransformerOptions, tokens: number[]) {
    const model = await MoeTransformer.load(gpu.device, await readGguf(sourceFromBytes(bytes)), sourceFromBytes(bytes), { ...OPTIONS, ...options });
    try {
      const prefill = (await model.forward(tokens, 0, 'all-logits')).logits!;
      const decode: Float32Array[] = [];
      for (const [i, token] of tokens.entries()) decode.push((await model.forward([token], i, 'last-logits')).logits![0]);
      const argmax = (await model.forward([tokens[0]], 0, 'argmax')).argmax;
      const w = weightsOf(model);
      return { prefill, decode, argmax, pieces: [w.tokenEmbd.pieces.length, w.output.pieces.length], tied: w.output === w.tokenEmbd };
    } finally {
      model.destroy();
    }
  }

  it.each([
    ['qwen2moe', 'separate output'],
    ['qwen3moe', 'output tied to token_embd'],
  ] as const)('%s (%s): split logits are bit-identical to whole ones', async (arch, kind) => {
    const made = makeTinyModel({ arch, type: 'q8_0', seed: 1, layers: 2 });
    const bytes = kind === 'separate output' ? made : await withoutOutput(made);
    const limit = await splittingLimit(bytes);
    const vocab = (await readGguf(sourceFromBytes(bytes))).tensors.find((t) => t.name === 'token_embd.weight')!.dims[1];
    // The first and last ids of the vocabulary, ids on both sides of each piece boundary, and random ones.
    const rng = mulberry32(3);
    const perPiece = Math.ceil(vocab / PIECES);
    const tokens = [0, vocab - 1, perPiece - 1, perPiece, 2 * perPiece - 1, 2 * perPiece, ...Array.from({ length: 6 }, () => Math.floor(rng() * vocab))];

    const whole = await run(bytes, {}, tokens);
    const split = await run(bytes, { maxWeightBindingBytes: limit }, tokens);
    expect(whole.pieces).toEqual([1, 1]);
    expect(split.pieces).toEqual([PIECES, PIECES]);
    expect(split.tied).toBe(kind !== 'separate output');
    expect(whole.prefill.length).toBe(tokens.length);
    expect(whole.prefill[0].some((v) => v !== 0)).toBe(true);
    expect(differences(split.prefill, whole.prefill)).toBe(0);
    expect(differences(split.decode, whole.decode)).toBe(0);
    expect(split.argmax).toBe(whole.argmax);
  });

  it('a tensor past the limit that is not split fails the load, naming it', async () => {
    const bytes = makeTinyModel({ arch: 'qwen2moe', type: 'q8_0', seed: 1, layers: 2 });
    const file = await readGguf(sourceFromBytes(bytes));
    const error = await MoeTransformer.load(gpu.device, file, sourceFromBytes(bytes), { ...OPTIONS, maxWeightBindingBytes: 1024 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TensorBindingError);
    const e = error as TensorBindingError;
    expect(e.tensor).toMatch(/^blk\.0\./);
    expect(e.bytes).toBeGreaterThan(e.limitBytes);
    expect(e.limitBytes).toBe(1024);
    expect(e.message).toContain(e.tensor);
  });
});
