/**
 * The dequant kernel, through each block-format decoder, reproduces src/quant's
 * CPU dequantisation bit for bit, for every GPU weight type.
 *
 * Exact equality is the right expectation: each decoder performs the CPU's
 * f32 operations in the CPU's order (f16 scales decoded exactly from their
 * bits; products of a scale and a small integer are exact; where a sum or a
 * larger product is rounded, both sides round it once, correctly).
 *
 * Three kinds of data: blocks of entirely random bytes (every quant value, every
 * packed-scale bit, grid index and sign bit, f16 scales of every exponent
 * including subnormal ones), keeping only blocks whose values are finite
 * normal f32 or zero, since GPUs may flush f32 subnormals and need not honour
 * Inf and NaN; realistic blocks from randomBlocks; and, for the i-quants and
 * ternary types, the unit tests' llama.cpp fixture (blocks made by llama.cpp's
 * quantizers and random blocks, with the f32 bits llama.cpp's
 * dequantize_row_* gave them).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { DequantKernel } from '../../src/kernels/dequant';
import type { DequantOutput } from '../../src/kernels/dequant';
import { GPU_WEIGHT_TYPES, quantDecoder } from '../../src/kernels/quant-decoders';
import { dequantize } from '../../src/quant/dequant';
import { GgmlType, ggmlTypeName } from '../../src/quant/formats';
import { f16BitsToF32, f32ToF16Bits } from '../../src/quant/half';
import { mulberry32, randomBlocks } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import iqFixtures from '../unit/quant/fixtures/dequant-iq.json';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

const SMALLEST_NORMAL_F32 = 2 ** -126;

function isFiniteNormalOrZero(value: number): boolean {
  return Number.isFinite(value) && (value === 0 || Math.abs(value) >= SMALLEST_NORMAL_F32);
}

/** `nBlocks` decoder blocks of random bytes, each redrawn until all its values are finite normal f32 or zero. */
function randomByteBlocks(type: GgmlType, nBlocks: number, rng: Rng): Uint8Array {
  const { blockElements, blockBytes } = quantDecoder(type);
  const bytes = new Uint8Array(nBlocks * blockBytes);
  for (let b = 0; b < nBlocks; b++) {
    const block = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
    do {
      for (let i = 0; i < blockBytes; i++) block[i] = Math.floor(rng() * 256);
    } while (!dequantize(type, block, blockElements).every(isFiniteNormalOrZero));
  }
  return bytes;
}

function base64Bytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The f16 rounding of each value (nearest even), as a number. */
function roundedToF16(values: Float32Array): Float32Array {
  return values.map((v) => f16BitsToF32(f32ToF16Bits(v)));
}

describe('dequant kernel', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  /** Runs the kernel on `bytes` placed `srcOffsetBytes` into a buffer of 0xa5 filler; returns all of dst. */
  async function dequantOnGpu(
    type: GgmlType,
    bytes: Uint8Array,
    nElements: number,
    { output = 'f32' as DequantOutput, srcOffsetBytes = 0, dstOffsetElements = 0 } = {},
  ): Promise<Float32Array> {
    const { device } = gpu;
    const kernel = await DequantKernel.create(device, type, { output });
    const padded = new Uint8Array(srcOffsetBytes + bytes.length + 8).fill(0xa5);
    padded.set(bytes, srcOffsetBytes);
    const src = createStorageBuffer(device, padded, 'blocks');
    const nOutput = dstOffsetElements + nElements;
    const elementBytes = output === 'f16' ? 2 : 4;
    const dst = createEmptyStorageBuffer(device, nOutput * elementBytes, 'dequantized');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) =>
        kernel.encode(pass, { src, dst }, { nElements, srcOffsetBytes, dstOffsetElements }),
      ),
    );
    if (output === 'f32') return readFloat32(device, dst, nOutput);
    const halves = new Uint16Array(await readBuffer(device, dst), 0, nOutput);
    return Float32Array.from(halves, f16BitsToF32);
  }

  for (const type of GPU_WEIGHT_TYPES) {
    const name = ggmlTypeName(type);
    const { blockElements } = quantDecoder(type);

    it(`${name}: random-byte blocks at odd byte and element offsets equal the CPU reference bit for bit`, async () => {
      const nBlocks = blockElements === 256 ? 9 : 37;
      const nElements = nBlocks * blockElements;
      const bytes = randomByteBlocks(type, nBlocks, mulberry32(1000 + type));
      const dstOffset = 5;
      const actual = await dequantOnGpu(type, bytes, nElements, { srcOffsetBytes: 3, dstOffsetElements: dstOffset });
      expect([...actual.subarray(0, dstOffset)]).toEqual(new Array(dstOffset).fill(0));
      expect(firstMismatch(actual.subarray(dstOffset), dequantize(type, bytes, nElements))).toBeUndefined();
    });

    it(`${name}: realistic blocks (1, 2 and 67 blocks, offsets 0 to 3) equal the CPU reference bit for bit`, async () => {
      for (const [nBlocks, srcOffsetBytes] of [[1, 0], [2, 1], [67, 2], [3, 3]]) {
        const nElements = nBlocks * blockElements;
        const bytes = randomBlocks(type, nElements, mulberry32(nBlocks * 100 + type));
        const actual = await dequantOnGpu(type, bytes, nElements, { srcOffsetBytes });
        const mismatch = firstMismatch(actual, dequantize(type, bytes, nElements));
        expect(mismatch, `${nBlocks} blocks at byte ${srcOffsetBytes}`).toBeUndefined();
      }
    });

    it(`${name}: f16 output equals the f16 rounding of the reference where shader-f16 exists, and is refused elsewhere`, async () => {
      const nElements = 3 * blockElements;
      const bytes = randomBlocks(type, nElements, mulberry32(7 + type));
      if (!gpu.features.has('shader-f16')) {
        await expect(DequantKernel.create(gpu.device, type, { output: 'f16' })).rejects.toThrow(/shader-f16/);
        return;
      }
      const actual = await dequantOnGpu(type, bytes, nElements, { output: 'f16', srcOffsetBytes: 1, dstOffsetElements: 3 });
      expect(firstMismatch(actual.subarray(3), roundedToF16(dequantize(type, bytes, nElements)))).toBeUndefined();
    });
  }

  for (const [name, fixture] of Object.entries(iqFixtures)) {
    it(`${name}: llama.cpp's fixture blocks (quantizer-made and random) decode to llama.cpp's values`, async () => {
      const type = GgmlType[name as keyof typeof GgmlType];
      const bytes = base64Bytes(fixture.blocks);
      const expected = new Float32Array(base64Bytes(fixture.expected).buffer);
      const actual = await dequantOnGpu(type, bytes, expected.length, { srcOffsetBytes: 1 });
      expect(firstMismatch(actual, expected), fixture.picked).toBeUndefined();
    });
  }

  it('decodes extreme Q8_0 scales exactly (subnormal, largest, negative, zero) and every quant byte', async () => {
    const scales = [2 ** -24, 65504, -1.5, 2 ** -14, 1 / 3, -1023 * 2 ** -24, 1, 0];
    const bytes = new Uint8Array(scales.length * 34);
    let quantByte = 0;
    scales.forEach((scale, b) => {
      const bits = f32ToF16Bits(scale);
      bytes[b * 34] = bits & 0xff;
      bytes[b * 34 + 1] = bits >> 8;
      // 8 blocks hold 256 quant bytes: counting up covers every byte value.
      for (let j = 2; j < 34; j++) bytes[b * 34 + j] = quantByte++ & 0xff;
    });
    const actual = await dequantOnGpu(GgmlType.Q8_0, bytes, scales.length * 32);
    expect(firstMismatch(actual, dequantize(GgmlType.Q8_0, bytes, scales.length * 32))).toBeUndefined();
    expect(actual[1]).not.toBe(0); // the subnormal scale was not flushed to zero
  });

  it('always runs the f32 output path, and f16 compiles exactly where shader-f16 exists', async () => {
    const f32 = await DequantKernel.create(gpu.device, GgmlType.Q4_K);
    expect(f32.label).toBe('dequant_q4_k_f32_wg64');
    const f16 = DequantKernel.create(gpu.device, GgmlType.Q4_K, { output: 'f16' });
    if (gpu.features.has('shader-f16')) await expect(f16).resolves.toBeDefined();
    else await expect(f16).rejects.toThrow(/shader-f16/);
  });

  it('rejects a type without a decoder, naming it and the supported ones', async () => {
    await expect(DequantKernel.create(gpu.device, GgmlType.Q8_1)).rejects.toThrow(/Q8_1.*supported: F32, F16/);
  });

  it('rejects a count that is not a whole number of blocks, and a too-small destination', async () => {
    const kernel = await DequantKernel.create(gpu.device, GgmlType.Q4_0);
    const src = createEmptyStorageBuffer(gpu.device, 18 * 4);
    const dst = createEmptyStorageBuffer(gpu.device, 64 * 4);
    const encode = (nElements: number) =>
      submitComputePass(gpu.device, 'bad shape', (pass) => kernel.encode(pass, { src, dst }, { nElements }));
    expect(() => encode(40)).toThrow(/not a whole number of 32-element blocks/);
    expect(() => encode(96)).toThrow(/dst needs 384 bytes/);
  });
});
