/**
 * writeGguf refuses specs that would produce an invalid or unreadable file,
 * naming the offending field.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufKv } from '../../../src/gguf/types';
import { kv, kvString, kvU32, utf8ByteLength, writeGguf } from '../../../src/gguf/writer';
import type { GgufTensorSpec } from '../../../src/gguf/writer';
import { expectGgufError } from './fixtures';

const f32Tensor = (name: string, n: number): GgufTensorSpec => ({ name, type: GgmlType.F32, dims: [n], data: new Uint8Array(4 * n) });
const write = (metadata: GgufKv[], tensors: GgufTensorSpec[] = [], alignment?: number) => () =>
  Promise.resolve().then(() => writeGguf({ metadata, tensors, alignment }));

describe('writeGguf validation', () => {
  it('rejects data whose length does not match type and dims', async () => {
    const tensor = { name: 'w', type: GgmlType.Q8_0, dims: [64], data: new Uint8Array(67) };
    const error = await expectGgufError(write([], [tensor]), 'BAD_TENSOR', "tensor 'w'.data", 24);
    expect(error.message).toMatch(/expected 68 bytes of Q8_0/);
  });

  it('rejects bad shapes, unknown types and duplicate names', async () => {
    await expectGgufError(write([], [{ ...f32Tensor('w', 4), dims: [] }]), 'BAD_TENSOR', "tensor 'w'.dims");
    await expectGgufError(write([], [{ ...f32Tensor('w', 4), dims: [4, 0] }]), 'BAD_TENSOR', "tensor 'w'.dims");
    await expectGgufError(write([], [{ ...f32Tensor('w', 4), type: 200 }]), 'BAD_TENSOR', "tensor 'w'.type");
    const q4 = { name: 'q', type: GgmlType.Q4_0, dims: [16, 2], data: new Uint8Array(18) };
    await expectGgufError(write([], [q4]), 'BAD_TENSOR', "tensor 'q'.dims");
    await expectGgufError(write([], [f32Tensor('w', 4), f32Tensor('w', 4)]), 'BAD_TENSOR', "tensor 'w'.name");
  });

  it('rejects values that do not fit their declared type', async () => {
    await expectGgufError(write([kv('k', GgufValueType.UINT8, 256)]), 'BAD_VALUE', 'metadata[0].value', 24 + 9 + 4);
    await expectGgufError(write([kv('k', GgufValueType.INT32, 1.5)]), 'BAD_VALUE', 'metadata[0].value');
    await expectGgufError(write([kv('k', GgufValueType.UINT64, -1n)]), 'BAD_VALUE', 'metadata[0].value');
    await expectGgufError(write([kv('k', GgufValueType.STRING, 3)]), 'BAD_VALUE', 'metadata[0].value');
    const badItem = kv('k', GgufValueType.ARRAY, { itemType: GgufValueType.BOOL, items: [true, 1] });
    await expectGgufError(write([badItem]), 'BAD_VALUE', 'metadata[0].value[1]');
    await expectGgufError(write([kv('k', 42 as GgufValueType, 1)]), 'BAD_VALUE', 'metadata[0].type');
  });

  it('rejects duplicate and empty keys', async () => {
    await expectGgufError(write([kvU32('a', 1), kvU32('a', 2)]), 'BAD_VALUE', 'metadata[1].key');
    await expectGgufError(write([kvU32('', 1)]), 'BAD_VALUE', 'metadata[0].key');
  });

  it('uses general.alignment from metadata and requires any other alignment to agree with it', async () => {
    const bytes = writeGguf({ metadata: [kvU32('general.alignment', 128)], tensors: [f32Tensor('a', 3), f32Tensor('b', 3)] });
    const file = await readGguf(sourceFromBytes(bytes));
    expect(file.alignment).toBe(128);
    expect(file.tensors.map((t) => t.offset)).toEqual([0, 128]);
    await expectGgufError(write([kvU32('general.alignment', 128)], [], 64), 'BAD_VALUE', 'metadata[0].value');
    await expectGgufError(write([], [], 64), 'BAD_VALUE', 'alignment');
    await expectGgufError(write([kvU32('general.alignment', 24)]), 'BAD_VALUE', 'alignment');
    await expectGgufError(write([kv('general.alignment', GgufValueType.UINT64, 32n)]), 'BAD_VALUE', 'metadata[0].type');
  });

  it('accepts 64-bit values given as safe integer numbers', async () => {
    const bytes = writeGguf({ metadata: [kv('n', GgufValueType.INT64, -7)], tensors: [] });
    expect((await readGguf(sourceFromBytes(bytes))).metadata.get('n')?.value).toBe(-7n);
  });

  it('measures UTF-8 exactly as it encodes, lone surrogates included', async () => {
    for (const s of ['', 'abc', 'é', '世界', '🎉', 'a\ud800b', '\udc00']) {
      expect(utf8ByteLength(s)).toBe(new TextEncoder().encode(s).byteLength);
    }
    const bytes = writeGguf({ metadata: [kvString('s', 'x\ud800y')], tensors: [] });
    expect((await readGguf(sourceFromBytes(bytes))).metadata.get('s')?.value).toBe('x\ufffdy');
  });
});
