/**
 * The Q8_0 and Q4_0 dequant kernels reproduce the CPU reference exactly.
 * Exact equality is the right expectation: each output is an f16 scale
 * (exactly representable in f32, decoded from its bits by the shader)
 * times a small integer (|q| <= 128), a product of at most 11 + 8
 * significant bits, which f32's 24 bits hold without rounding.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { DequantKernel } from '../../src/kernels/dequant';
import { dequantize } from '../../src/quant/dequant';
import { blockFormat, GgmlType, ggmlTypeName } from '../../src/quant/formats';
import { f32ToF16Bits } from '../../src/quant/half';
import { mulberry32, randomBlocks } from '../../src/quant/random';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

const TYPES = [GgmlType.Q8_0, GgmlType.Q4_0] as const;
const BLOCK_COUNTS = [1, 2, 3, 5, 64, 333];

describe('dequant kernels', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  /** Runs the kernel on `bytes` placed `srcOffsetBytes` into the source buffer. */
  async function dequantOnGpu(
    type: GgmlType,
    bytes: Uint8Array,
    nBlocks: number,
    srcOffsetBytes = 0,
    dstOffsetElements = 0,
  ): Promise<Float32Array> {
    const { device } = gpu;
    const kernel = await DequantKernel.create(device, type);
    const padded = new Uint8Array(srcOffsetBytes + bytes.length).fill(0xa5);
    padded.set(bytes, srcOffsetBytes);
    const src = createStorageBuffer(device, padded, 'blocks');
    const nOutput = dstOffsetElements + nBlocks * 32;
    const dst = createEmptyStorageBuffer(device, nOutput * 4, 'dequantized');
    await withGpuErrorScope(device, kernel.label, () =>
      submitComputePass(device, kernel.label, (pass) =>
        kernel.encode(pass, { src, dst }, { nBlocks, srcOffsetBytes, dstOffsetElements }),
      ),
    );
    return readFloat32(device, dst, nOutput);
  }

  for (const type of TYPES) {
    const name = ggmlTypeName(type);
    const { blockBytes } = blockFormat(type)!;

    for (const nBlocks of BLOCK_COUNTS) {
      it(`${name}: ${nBlocks} random block(s) equal the CPU reference bit for bit`, async () => {
        const bytes = randomBlocks(type, nBlocks * 32, mulberry32(nBlocks * 100 + type));
        const actual = await dequantOnGpu(type, bytes, nBlocks);
        expect(firstMismatch(actual, dequantize(type, bytes, nBlocks * 32))).toBeUndefined();
      });
    }

    it(`${name}: reads blocks at an odd byte offset and writes at an element offset`, async () => {
      const nBlocks = 4;
      const bytes = randomBlocks(type, nBlocks * 32, mulberry32(42 + type));
      const dstOffset = 5;
      const actual = await dequantOnGpu(type, bytes, nBlocks, 3, dstOffset);
      expect([...actual.subarray(0, dstOffset)]).toEqual(new Array(dstOffset).fill(0));
      expect(firstMismatch(actual.subarray(dstOffset), dequantize(type, bytes, nBlocks * 32))).toBeUndefined();
    });

    it(`${name}: decodes extreme scales (subnormal, largest, negative, zero) and every quant value`, async () => {
      // Zero scale last: it would hide the quants of its block, and block 4 holds byte 128 (-128).
      const scales = [2 ** -24, 65504, -1.5, 2 ** -14, 1 / 3, -1023 * 2 ** -24, 1, 0];
      const bytes = new Uint8Array(scales.length * blockBytes);
      let quantByte = 0;
      scales.forEach((scale, b) => {
        const bits = f32ToF16Bits(scale);
        bytes[b * blockBytes] = bits & 0xff;
        bytes[b * blockBytes + 1] = bits >> 8;
        // 8 blocks hold 256 Q8_0 quant bytes: counting up covers every byte value.
        for (let j = 2; j < blockBytes; j++) bytes[b * blockBytes + j] = quantByte++ & 0xff;
      });
      const actual = await dequantOnGpu(type, bytes, scales.length);
      expect(firstMismatch(actual, dequantize(type, bytes, scales.length * 32))).toBeUndefined();
      expect(actual[1]).not.toBe(0); // the subnormal scale was not flushed to zero
    });
  }

  it('rejects a block type without a GPU kernel, naming it', async () => {
    await expect(DequantKernel.create(gpu.device, GgmlType.Q6_K)).rejects.toThrow(/Q6_K.*supported: Q8_0, Q4_0/);
  });
});
