/**
 * The GPU forward pass at real layer shapes: two layers of OLMoE-1B-7B
 * (hidden 2048, 16 heads of 128, 64 experts of FFN width 1024, top-8; the
 * generated 459-token vocabulary), against the CPU reference and llama.cpp.
 *
 * - q4_0, 64 experts (452 MiB; each layer's experts span two slabs under
 *   lavapipe's 128 MiB binding limit): 16 tokens prefilled, then the last
 *   one again as a decode step. GPU vs CPU reference below 1e-5 (measured
 *   3.1e-7, decode 1.5e-7). GPU vs llama.cpp (which rounds activations to
 *   Q8_0): top-1 >= 85% (measured 100%), and no position further from
 *   llama.cpp than the exact CPU reference (+1e-5); measured max 3.7e-3,
 *   median 1.9e-3. With that rounding emulated the CPU reference meets
 *   llama.cpp at a median 2.3e-7 (max 6.9e-4, one rounding flip). q4_0 and
 *   q4_k ran at the same speed here; q4_0 is the format whose activation
 *   rounding the CPU reference emulates exactly.
 * - f32, 16 experts (903 MiB; 64 would be 3.3 GB), the q4_0 weights widened
 *   to f32: 8 tokens. GPU vs CPU reference and GPU vs llama.cpp both below
 *   1e-5 with the same top-1 everywhere (measured 2.6e-7 each).
 *
 * Seed 8: with 64 experts about 1% of (token, layer) routings have a router
 * near tie (relative margin below 1e-4; seed 7 has one at position 5), and
 * comparison stops at the first; this seed has none in these 16 tokens, and
 * at least 8 compared positions are required.
 *
 * gpu-node only (vitest.config.ts GPU_NODE_ONLY): measured 127 s on two
 * lavapipe cores (drawing the q4_0 weights 19 s, the CPU reference 22 s,
 * the GPU prefill of 16 tokens 23 s, the f32 case 27 s); SwiftShader is
 * several times slower at the expert FFN.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import type { GpuContext } from '../../src/gpu/device';
import { MoeTransformer } from '../../src/models/moe-transformer';
import { firstNearTie, loadReferenceModel } from '../../src/ref/forward';
import type { ReferenceModel } from '../../src/ref/forward';
import { compareLogits } from '../../src/ref/forward-compare';
import { kvU32, writeGguf } from '../../src/gguf/writer';
import { GgmlType } from '../../src/quant/formats';
import { dequantize } from '../../src/quant/dequant';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import type { TinyModelOptions } from '../../src/tiny/make-tiny';
import { loadReference } from '../../tools/reference/llama-cpp';
import { acquireTestGpu } from './support/gpu';

const SENTENCE =
  'The river ran past the old mill, and the miller sang a song about the water and the wheel that turned all day long.';
const TOKENS = 16;
/** OLMoE-1B-7B's layer shapes, two layers of them, and the generated vocabulary. */
const OLMOE_SHAPE: TinyModelOptions = {
  arch: 'olmoe',
  type: 'q4_0',
  seed: 8,
  layers: 2,
  hidden: 2048,
  heads: 16,
  kvHeads: 16,
  headDim: 128,
  experts: 64,
  topK: 8,
  expertFF: 1024,
};
/**
 * The same layer shapes in F32 with 16 experts (64 would be 3.3 GB), built by
 * widening a generated q4_0 model's weights to f32 (makeTinyModel's own f32
 * weights take over 2 minutes to draw at this size).
 */
const F32_SOURCE: TinyModelOptions = { ...OLMOE_SHAPE, experts: 16 };
/** F32 is 4x the bytes per expert and the slowest on lavapipe: 8 tokens. */
const F32_TOKENS = 8;
const NEAR_TIE = 1e-4;
const MIN_COMPARED = 8;
const GPU_BOUND = 1e-5;
const F32_LLAMA_BOUND = 1e-5;
const TOP1_FLOOR = 0.85;
const TIMEOUT_MS = 600_000;

const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** The model with every tensor stored as F32 (the same values) and general.file_type 0. */
async function widenedToF32(bytes: Uint8Array): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const tensors = file.tensors.map((t) => {
    const start = file.dataOffset + t.offset;
    const data = bytes.subarray(start, start + t.nBytes);
    const n = t.dims.reduce((a, b) => a * b, 1);
    const f32 = t.type === GgmlType.F32 ? data : new Uint8Array(dequantize(t.type, data, n).buffer);
    return { name: t.name, type: GgmlType.F32, dims: [...t.dims], data: f32 };
  });
  const metadata = [...file.metadata.values()].filter((kv) => kv.key !== 'general.file_type');
  metadata.push(kvU32('general.file_type', 0));
  return writeGguf({ version: 3, metadata, tensors });
}

interface Case {
  name: string;
  /** The quantized model it is, or (f32) whose weights it widens. */
  source: TinyModelOptions;
  f32: boolean;
  tokens: number;
}

const CASES: Case[] = [
  { name: 'q4_0, 64 experts', source: OLMOE_SHAPE, f32: false, tokens: TOKENS },
  { name: 'f32, 16 experts', source: F32_SOURCE, f32: true, tokens: F32_TOKENS },
];

interface Prepared {
  bytes: Uint8Array;
  tokens: number[];
  llamaLogits: Float32Array[];
  reference: ReferenceModel;
}

/** Generates the model, runs llama.cpp on it from a temporary file, and loads the CPU reference. */
async function prepare(c: Case): Promise<Prepared> {
  let t = performance.now();
  const bytes = c.f32 ? await widenedToF32(makeTinyModel(c.source)) : makeTinyModel(c.source);
  console.log(`${c.name}: generated ${(bytes.length / 2 ** 20).toFixed(0)} MiB in ${seconds(t)}`);
  const dir = mkdtempSync(join(tmpdir(), 'webmoe-olmoe-shape-'));
  try {
    const path = join(dir, 'olmoe-shape.gguf');
    writeFileSync(path, bytes);
    t = performance.now();
    const llama = await loadReference(path, 32);
    try {
      const tokens = llama.tokenize(SENTENCE).slice(0, c.tokens);
      const llamaLogits = await llama.logits(tokens);
      console.log(`${c.name}: llama.cpp ${seconds(t)}`);
      t = performance.now();
      const reference = await loadReferenceModel(bytes);
      console.log(`${c.name}: CPU reference loaded in ${seconds(t)}`);
      return { bytes, tokens, llamaLogits, reference };
    } finally {
      await llama.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the GPU model (prefill, then the last token again as a decode step) and compares with both references. */
async function compare(gpu: GpuContext, c: Case, { bytes, tokens, llamaLogits, reference }: Prepared) {
  const T = c.tokens;
  expect(tokens.length).toBe(T);
  let t = performance.now();
  const exact = reference.evaluate(tokens);
  console.log(`${c.name}: CPU reference ${seconds(t)}`);
  const compared = firstNearTie(exact.routes, NEAR_TIE) ?? T;
  expect(compared).toBeGreaterThanOrEqual(Math.min(T, MIN_COMPARED));

  t = performance.now();
  const file = await readGguf(sourceFromBytes(bytes));
  const model = await MoeTransformer.load(gpu.device, file, sourceFromBytes(bytes), { maxContext: T, maxBatchTokens: T });
  try {
    console.log(`${c.name}: GPU load ${seconds(t)}, ${(model.weightBytes / 2 ** 20).toFixed(0)} MiB of weights`);
    t = performance.now();
    const { logits } = await model.forward(tokens, 0, 'all-logits');
    console.log(`${c.name}: GPU prefill of ${T} tokens ${seconds(t)}`);
    t = performance.now();
    const decoded = (await model.forward([tokens[T - 1]], T - 1, 'last-logits')).logits![0];
    console.log(`${c.name}: GPU decode of one token ${seconds(t)}`);

    const gpuVsCpu = compareLogits(logits!, exact.logits, compared);
    const decodeVsCpu = compareLogits([decoded], [exact.logits[T - 1]]);
    const gpuVsLlama = compareLogits(logits!, llamaLogits, compared);
    const exactVsLlama = compareLogits(exact.logits, llamaLogits, compared);
    let emulated = '';
    if (!c.f32) {
      const rounded = reference.evaluate(tokens, { activations: 'llama.cpp' });
      const roundedVsLlama = compareLogits(rounded.logits, llamaLogits, Math.min(compared, firstNearTie(rounded.routes, NEAR_TIE) ?? T));
      emulated =
        `; CPU reference with llama.cpp's rounding vs llama.cpp: max ${roundedVsLlama.maxRelativeDiff.toExponential(2)}, ` +
        `median ${roundedVsLlama.medianRelativeDiff.toExponential(2)}, top-1 ${(roundedVsLlama.top1Agreement * 100).toFixed(0)}%`;
    }
    console.log(
      `${c.name}: ${compared}/${T} positions; GPU vs CPU reference: max ${gpuVsCpu.maxRelativeDiff.toExponential(2)} ` +
        `(decode ${decodeVsCpu.maxRelativeDiff.toExponential(2)}); GPU vs llama.cpp: max ${gpuVsLlama.maxRelativeDiff.toExponential(2)}, ` +
        `median ${gpuVsLlama.medianRelativeDiff.toExponential(2)}, top-1 ${(gpuVsLlama.top1Agreement * 100).toFixed(0)}%${emulated}`,
    );

    expect(gpuVsCpu.maxRelativeDiff).toBeLessThan(GPU_BOUND);
    expect(decodeVsCpu.maxRelativeDiff).toBeLessThan(GPU_BOUND);
    expect(gpuVsCpu.top1Agreement).toBe(1);
    if (c.f32) {
      expect(gpuVsLlama.maxRelativeDiff).toBeLessThan(F32_LLAMA_BOUND);
      expect(gpuVsLlama.top1Agreement).toBe(1);
    } else {
      expect(gpuVsLlama.top1Agreement).toBeGreaterThanOrEqual(TOP1_FLOOR);
      gpuVsLlama.positions.forEach((p, i) => {
        expect(p.relativeDiff, `position ${i}`).toBeLessThanOrEqual(exactVsLlama.positions[i].relativeDiff + GPU_BOUND);
      });
    }
  } finally {
    model.destroy();
  }
}

describe('GPU forward pass at OLMoE-1B-7B layer shapes, against the CPU reference and llama.cpp', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  describe.each(CASES)('$name', (c) => {
    let prepared: Prepared | undefined;
    beforeAll(async () => {
      prepared = await prepare(c);
    }, TIMEOUT_MS);
    afterAll(() => {
      prepared = undefined;
    });

    it('prefilled and decoded logits match the CPU reference tightly, and llama.cpp', { timeout: TIMEOUT_MS }, async () => {
      await compare(gpu, c, prepared!);
    });
  });
});
