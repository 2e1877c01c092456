/**
 * Malformed and hostile files: each is rejected with a GgufError whose code,
 * field and byte offset point at the bad field, before any large allocation.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { readGguf } from '../../../src/gguf/reader';
import type { ReadGgufOptions } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { ByteSource } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import { kvString, writeGguf } from '../../../src/gguf/writer';
import { ByteBuilder, expectGgufError, handMade, richSpec, tensorInfo } from './fixtures';
import type { HandMadeOptions } from './fixtures';

const T = GgufValueType;
const read = (bytes: Uint8Array, options?: ReadGgufOptions) => () => readGguf(sourceFromBytes(bytes), options);
const build = (options: HandMadeOptions) => handMade(options);

/** One tensor 'w' whose info is written by `info`, 64 bytes of data. */
function oneTensor(info: (b: ByteBuilder) => void, dataBytes = 64) {
  return build({ tensorCount: 1, kvCount: 0, body: (b) => info(b.mark('t')), dataBytes });
}

describe('header', () => {
  it('rejects a bad magic', async () => {
    await expectGgufError(read(handMade({ magic: 'GGUX', tensorCount: 0, kvCount: 0 }).bytes), 'BAD_MAGIC', 'header.magic', 0);
  });

  it.each([1, 4, 0])('rejects version %i', async (version) => {
    const { bytes } = handMade({ version, tensorCount: 0, kvCount: 0 });
    const error = await expectGgufError(read(bytes), 'UNSUPPORTED_VERSION', 'header.version', 4);
    expect(error.message).toContain(String(version));
  });

  it('names byte-swapped (big-endian) files', async () => {
    const error = await expectGgufError(read(handMade({ version: 0x03000000, tensorCount: 0, kvCount: 0 }).bytes), 'UNSUPPORTED_VERSION');
    expect(error.message).toMatch(/big-endian/);
  });

  it('rejects a tensor count beyond the limit, and one the file cannot hold', async () => {
    await expectGgufError(read(handMade({ tensorCount: 2n ** 60n, kvCount: 0 }).bytes), 'LIMIT_EXCEEDED', 'header.tensor_count', 8);
    await expectGgufError(read(handMade({ tensorCount: 2n ** 64n - 1n, kvCount: 0 }).bytes), 'LIMIT_EXCEEDED', 'header.tensor_count', 8);
    await expectGgufError(read(handMade({ tensorCount: 1_000_000, kvCount: 0 }).bytes), 'TRUNCATED', 'header.tensor_count', 8);
    await expectGgufError(read(handMade({ tensorCount: 5, kvCount: 0 }).bytes, { maxTensors: 4 }), 'LIMIT_EXCEEDED', 'header.tensor_count', 8);
  });

  it('rejects a metadata count beyond the limit, and one the file cannot hold', async () => {
    await expectGgufError(read(handMade({ tensorCount: 0, kvCount: 2n ** 63n }).bytes), 'LIMIT_EXCEEDED', 'header.kv_count', 16);
    await expectGgufError(read(handMade({ tensorCount: 0, kvCount: 1000 }).bytes), 'TRUNCATED', 'header.kv_count', 16);
  });

  it('rejects a file truncated at any byte before the end of its last tensor', async () => {
    const bytes = writeGguf(richSpec(11, 32));
    const { dataOffset, tensors } = await readGguf(sourceFromBytes(bytes));
    const dataEnd = Math.max(...tensors.map((t) => dataOffset + t.offset + t.nBytes));
    // Every byte of the header and the start of the data; then a stride through the data.
    for (let cut = 0; cut < dataEnd; cut += cut < dataOffset + 64 ? 1 : 37) {
      const error = await expectGgufError(read(bytes.subarray(0, cut)), 'TRUNCATED');
      expect(error.offset).toBeGreaterThanOrEqual(0);
      expect(error.offset).toBeLessThanOrEqual(cut);
    }
  });

  it('names the field cut off by a truncation', async () => {
    const bytes = writeGguf({ metadata: [kvString('general.name', 'x')], tensors: [] });
    await expectGgufError(read(bytes.subarray(0, 3)), 'TRUNCATED', 'header.magic', 0);
    await expectGgufError(read(bytes.subarray(0, 20)), 'TRUNCATED', 'header.kv_count', 16);
    // Fewer bytes than the smallest possible pair: caught by the count check.
    await expectGgufError(read(bytes.subarray(0, 30)), 'TRUNCATED', 'header.kv_count', 16);
    await expectGgufError(read(bytes.subarray(0, 40)), 'TRUNCATED', 'metadata[0].key', 24);
    await expectGgufError(read(bytes.subarray(0, 24 + 8 + 12 + 2)), 'TRUNCATED', 'metadata[0].type', 44);
    await expectGgufError(read(bytes.subarray(0, 24 + 8 + 12 + 4 + 4)), 'TRUNCATED', 'metadata[0].value', 48);
    await expectGgufError(read(bytes.subarray(0, 24 + 8 + 12 + 4 + 8)), 'TRUNCATED', 'metadata[0].value', 48);
  });

  it('rejects a header larger than maxHeaderBytes', async () => {
    const bytes = writeGguf({ metadata: [kvString('general.name', 'x'.repeat(5000))], tensors: [] });
    await expectGgufError(read(bytes, { maxHeaderBytes: 4096 }), 'LIMIT_EXCEEDED', 'metadata[0].value', 48);
  });
});

describe('metadata', () => {
  const oneKv = (body: (b: ByteBuilder) => void, kvCount = 1) => build({ tensorCount: 0, kvCount, body }).bytes;

  it('rejects a string length of 2^63 without allocating', async () => {
    await expectGgufError(read(oneKv((b) => b.u64(2n ** 63n).zeros(16))), 'LIMIT_EXCEEDED', 'metadata[0].key', 24);
    const bytes = oneKv((b) => b.str('k').u32(T.STRING).mark('v').u64(2n ** 63n));
    await expectGgufError(read(bytes), 'LIMIT_EXCEEDED', 'metadata[0].value', 24 + 9 + 4);
  });

  it('rejects a string longer than the rest of the file', async () => {
    const bytes = oneKv((b) => b.str('k').u32(T.STRING).u64(1_000_000).raw([65, 66]));
    await expectGgufError(read(bytes), 'TRUNCATED', 'metadata[0].value', 24 + 9 + 4);
  });

  it('rejects an array count of 2^62, and one the file cannot hold', async () => {
    let countAt = 0;
    const huge = oneKv((b) => {
      b.str('k').u32(T.ARRAY).u32(T.UINT8);
      countAt = b.pos;
      b.u64(2n ** 62n);
    });
    await expectGgufError(read(huge), 'LIMIT_EXCEEDED', 'metadata[0].value.count', countAt);
    const short = oneKv((b) => b.str('k').u32(T.ARRAY).u32(T.STRING).u64(1000).str('only one'));
    await expectGgufError(read(short), 'TRUNCATED', 'metadata[0].value.count', countAt);
    const tooMany = oneKv((b) => b.str('k').u32(T.ARRAY).u32(T.UINT8).u64(10).zeros(10));
    await expectGgufError(read(tooMany, { maxArrayItems: 9 }), 'LIMIT_EXCEEDED', 'metadata[0].value.count', countAt);
  });

  it('rejects arrays nested deeper than maxArrayDepth', async () => {
    const bytes = oneKv((b) => {
      b.str('k').u32(T.ARRAY);
      for (let depth = 0; depth < 6; depth++) b.u32(T.ARRAY).u64(1);
      b.u32(T.UINT8).u64(0);
    });
    const error = await expectGgufError(read(bytes, { maxArrayDepth: 4 }), 'LIMIT_EXCEEDED');
    expect(error.field).toBe('metadata[0].value[0][0][0][0]');
    await expect(readGguf(sourceFromBytes(bytes), { maxArrayDepth: 8 })).resolves.toBeDefined();
  });

  it('rejects invalid UTF-8 in keys and values', async () => {
    await expectGgufError(read(oneKv((b) => b.strBytes([0xc3, 0x28]))), 'BAD_VALUE', 'metadata[0].key', 24);
    const value = oneKv((b) => b.str('k').u32(T.STRING).strBytes([0x61, 0xed, 0xa0, 0x80]));
    await expectGgufError(read(value), 'BAD_VALUE', 'metadata[0].value', 37);
    const item = oneKv((b) => b.str('k').u32(T.ARRAY).u32(T.STRING).u64(2).str('ok').strBytes([0xff]));
    await expectGgufError(read(item), 'BAD_VALUE', 'metadata[0].value[1]', 37 + 12 + 10);
  });

  it('rejects a duplicate key and an empty key', async () => {
    let secondAt = 0;
    const dup = oneKv((b) => {
      b.str('a.b').u32(T.UINT8).u8(1);
      secondAt = b.pos;
      b.str('a.b').u32(T.UINT8).u8(2);
    }, 2);
    const error = await expectGgufError(read(dup), 'BAD_VALUE', 'metadata[1].key', secondAt);
    expect(error.message).toContain("'a.b'");
    await expectGgufError(read(oneKv((b) => b.str('').u32(T.UINT8).u8(1))), 'BAD_VALUE', 'metadata[0].key', 24);
  });

  it('rejects unknown value types and bools other than 0 and 1', async () => {
    await expectGgufError(read(oneKv((b) => b.str('k').u32(13).u8(0))), 'BAD_VALUE', 'metadata[0].type', 33);
    await expectGgufError(read(oneKv((b) => b.str('k').u32(T.ARRAY).u32(99).u64(0))), 'BAD_VALUE', 'metadata[0].value.item_type', 37);
    await expectGgufError(read(oneKv((b) => b.str('k').u32(T.BOOL).u8(2))), 'BAD_VALUE', 'metadata[0].value', 37);
  });

  it.each([0, 3, 48])('rejects general.alignment %i', async (alignment) => {
    const bytes = oneKv((b) => b.str('general.alignment').u32(T.UINT32).u32(alignment));
    const error = await expectGgufError(read(bytes), 'BAD_VALUE', 'metadata[0].value', 24 + 8 + 17 + 4);
    expect(error.message).toMatch(/power of two/);
  });

  it('rejects general.alignment of a type other than u32', async () => {
    const bytes = oneKv((b) => b.str('general.alignment').u32(T.UINT64).u64(32));
    await expectGgufError(read(bytes), 'BAD_VALUE', 'metadata[0].type', 24 + 8 + 17);
  });
});

describe('tensor infos', () => {
  it.each([0, 5])('rejects n_dims %i', async (nDims) => {
    const { bytes, b } = oneTensor((t) => t.str('w').mark('n_dims').u32(nDims).u64(8).u32(GgmlType.F32).u64(0));
    await expectGgufError(read(bytes), 'BAD_TENSOR', "tensor 'w'.n_dims", b.at('n_dims'));
  });

  it('rejects a dimension of 0 and shapes whose element count overflows', async () => {
    const zero = oneTensor((t) => t.str('w').u32(2).u64(8).mark('d1').u64(0).u32(GgmlType.F32).u64(0));
    await expectGgufError(read(zero.bytes), 'BAD_TENSOR', "tensor 'w'.dims[1]", zero.b.at('d1'));
    const big = oneTensor((t) => t.str('w').u32(3).u64(2 ** 20).u64(2 ** 20).mark('d2').u64(2 ** 20).u32(GgmlType.F32).u64(0));
    await expectGgufError(read(big.bytes), 'BAD_TENSOR', "tensor 'w'.dims[2]", big.b.at('d2'));
    const negative = oneTensor((t) => t.str('w').u32(1).mark('d0').u64(-1).u32(GgmlType.F32).u64(0));
    await expectGgufError(read(negative.bytes), 'BAD_TENSOR', "tensor 'w'.dims[0]", negative.b.at('d0'));
  });

  it('rejects an unknown type id, naming it', async () => {
    const { bytes, b } = oneTensor((t) => t.str('w').u32(1).u64(8).mark('type').u32(200).u64(0));
    const error = await expectGgufError(read(bytes), 'BAD_TENSOR', "tensor 'w'.type", b.at('type'));
    expect(error.message).toContain('200');
  });

  it('rejects a row length that is not a whole number of blocks', async () => {
    const { bytes, b } = oneTensor((t) => t.str('w').u32(2).mark('d0').u64(16).u64(2).u32(GgmlType.Q4_0).u64(0));
    const error = await expectGgufError(read(bytes), 'BAD_TENSOR', "tensor 'w'.dims[0]", b.at('d0'));
    expect(error.message).toMatch(/Q4_0 block size 32/);
  });

  it('rejects a misaligned offset', async () => {
    const file = oneTensor((t) => t.str('w').u32(1).u64(4).u32(GgmlType.F32).mark('offset').u64(16));
    const error = await expectGgufError(read(file.bytes), 'BAD_TENSOR', "tensor 'w'.offset", file.b.at('offset'));
    expect(error.message).toMatch(/alignment 32/);
  });

  it('rejects tensor data beyond the end of the file', async () => {
    const file = oneTensor((t) => t.str('w').u32(1).u64(32).u32(GgmlType.F32).mark('offset').u64(0), 127);
    await expectGgufError(read(file.bytes), 'TRUNCATED', "tensor 'w'.offset", file.b.at('offset'));
    const far = oneTensor((t) => t.str('w').u32(1).u64(8).u32(GgmlType.F32).mark('offset').u64(2n ** 40n));
    await expectGgufError(read(far.bytes), 'TRUNCATED', "tensor 'w'.offset", far.b.at('offset'));
    const huge = oneTensor((t) => t.str('w').u32(1).u64(8).u32(GgmlType.F32).mark('offset').u64(2n ** 63n));
    await expectGgufError(read(huge.bytes), 'BAD_TENSOR', "tensor 'w'.offset", huge.b.at('offset'));
  });

  it('rejects overlapping tensors', async () => {
    const { bytes, b } = build({
      tensorCount: 2,
      kvCount: 0,
      body: (h) => {
        tensorInfo(h, 'a', [16], GgmlType.F32, 0);
        tensorInfo(h.mark('b'), 'b', [8], GgmlType.F32, 32);
      },
      dataBytes: 128,
    });
    const error = await expectGgufError(read(bytes), 'BAD_TENSOR', "tensor 'b'.offset", b.at('b') + 8 + 1 + 4 + 8 + 4);
    expect(error.message).toContain("tensor 'a'");
  });

  it('rejects duplicate tensor names and invalid UTF-8 names', async () => {
    const dup = build({
      tensorCount: 2,
      kvCount: 0,
      body: (h) => {
        tensorInfo(h, 'w', [8], GgmlType.F32, 0);
        tensorInfo(h.mark('second'), 'w', [8], GgmlType.F32, 32);
      },
      dataBytes: 64,
    });
    await expectGgufError(read(dup.bytes), 'BAD_TENSOR', "tensor 'w'.name", dup.b.at('second'));
    const badName = oneTensor((t) => t.strBytes([0x80]).u32(1).u64(8).u32(GgmlType.F32).u64(0));
    await expectGgufError(read(badName.bytes), 'BAD_VALUE', 'tensors[0].name', 24);
  });
});

describe('sources that fail', () => {
  it('wraps a source error of another type in a SOURCE_ERROR with its cause', async () => {
    const broken: ByteSource = { size: 1000, name: 'broken', read: () => Promise.reject(new RangeError('disk on fire')) };
    const error = await expectGgufError(() => readGguf(broken), 'SOURCE_ERROR', 'source', 0);
    expect(error.cause).toBeInstanceOf(RangeError);
  });

  it('rejects a source that returns fewer bytes than asked', async () => {
    const bytes = writeGguf({ metadata: [], tensors: [] });
    const short: ByteSource = { size: bytes.byteLength, name: 'short', read: (o, n) => Promise.resolve(bytes.subarray(o, o + n - 1)) };
    await expectGgufError(() => readGguf(short), 'SOURCE_ERROR', 'source', 0);
  });
});
