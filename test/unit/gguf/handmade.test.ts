/**
 * Files assembled byte by byte in the test, so the reader is checked against
 * the format itself and not only against our own writer; and the writer's
 * output is compared with the same hand-made bytes.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { getStringArray } from '../../../src/gguf/metadata';
import { readGguf, readTensorData } from '../../../src/gguf/reader';
import { sourceFromBlob, sourceFromBytes } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import { kvArray, kvString, kvU32, writeGguf } from '../../../src/gguf/writer';
import { expectSameBytes, handMade, randomBytes, seededRandom, tensorInfo } from './fixtures';

/** 3 metadata pairs, 2 tensors (F32 [4,2] at 0, Q8_0 [32] at 32), 32-byte alignment. */
function tinyFile() {
  return handMade({
    tensorCount: 2,
    kvCount: 3,
    body: (b) => {
      b.mark('kv0').str('general.architecture').u32(GgufValueType.STRING).str('llama');
      b.mark('kv1').str('llama.block_count').u32(GgufValueType.UINT32).u32(2);
      b.mark('kv2').str('tokenizer.ggml.scores').u32(GgufValueType.ARRAY).u32(GgufValueType.FLOAT32).u64(3);
      b.f32(0.5).f32(-1).f32(2);
      b.mark('t0');
      tensorInfo(b, 'token_embd.weight', [4, 2], GgmlType.F32, 0);
      b.mark('t1');
      tensorInfo(b, 'output.weight', [32], GgmlType.Q8_0, 32);
    },
    dataBytes: 32 + 34,
  });
}

describe('hand-made files', () => {
  it('reads the header fields exactly as laid out', async () => {
    const { bytes, b } = tinyFile();
    const file = await readGguf(sourceFromBytes(bytes));
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect(file.dataOffset).toBe(Math.ceil(b.at('header_end') / 32) * 32);
    expect(file.dataOffset).toBe(b.at('data'));
    expect([...file.metadata.values()]).toEqual([
      { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
      { key: 'llama.block_count', type: GgufValueType.UINT32, value: 2 },
      { key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.FLOAT32, items: [0.5, -1, 2] } },
    ]);
    expect(file.tensors).toEqual([
      { name: 'token_embd.weight', dims: [4, 2], type: GgmlType.F32, offset: 0, nElements: 8, nBytes: 32 },
      { name: 'output.weight', dims: [32], type: GgmlType.Q8_0, offset: 32, nElements: 32, nBytes: 34 },
    ]);
  });

  it('accepts tensors in any order with gaps between them', async () => {
    const { bytes } = handMade({
      tensorCount: 2,
      kvCount: 0,
      body: (b) => {
        tensorInfo(b, 'b', [8], GgmlType.F32, 96);
        tensorInfo(b, 'a', [8], GgmlType.F32, 0);
      },
      dataBytes: 128,
    });
    const file = await readGguf(sourceFromBytes(bytes));
    expect(file.tensors.map((t) => [t.name, t.offset])).toEqual([['b', 96], ['a', 0]]);
  });

  it('accepts a file with no tensors that ends right after its header', async () => {
    const bytes = handMade({ tensorCount: 0, kvCount: 1, body: (b) => b.str('k').u32(GgufValueType.BOOL).u8(1) }).bytes;
    const unpadded = bytes.subarray(0, 24 + 8 + 1 + 4 + 1);
    const file = await readGguf(sourceFromBytes(unpadded));
    expect(file.metadata.get('k')?.value).toBe(true);
    expect(file.dataOffset).toBe(64);
  });

  it('writeGguf produces the same bytes as the hand-made file', () => {
    const { bytes, b } = tinyFile();
    const data = bytes.subarray(b.at('data'));
    const written = writeGguf({
      metadata: [
        kvString('general.architecture', 'llama'),
        kvU32('llama.block_count', 2),
        kvArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, [0.5, -1, 2]),
      ],
      tensors: [
        { name: 'token_embd.weight', type: GgmlType.F32, dims: [4, 2], data: data.subarray(0, 32) },
        { name: 'output.weight', type: GgmlType.Q8_0, dims: [32], data: data.subarray(32, 66) },
      ],
    });
    // The writer also pads the last tensor to the alignment.
    expect(written.subarray(0, bytes.byteLength)).toEqual(bytes);
    expect(written.byteLength).toBe(b.at('data') + 32 + 64);
  });

  it('reads only slices of a Blob: a header before 10 MB of data costs a small fraction of it', async () => {
    const random = seededRandom(5);
    const tensors = [0, 1, 2, 3].map((i) => ({
      name: `blk.${i}.ffn_up_exps.weight`,
      type: GgmlType.F32,
      dims: [1024, 640],
      data: randomBytes(random, 1024 * 640 * 4),
    }));
    const bytes = writeGguf({ metadata: [kvString('general.architecture', 'olmoe')], tensors });
    const blob = new Blob([bytes]);
    const rangesRead: [number, number][] = [];
    const recordingBlob = {
      size: blob.size,
      slice(start: number, end: number) {
        rangesRead.push([start, end]);
        return blob.slice(start, end);
      },
    } as unknown as Blob;
    const source = sourceFromBlob(recordingBlob);

    const file = await readGguf(source);
    const headerBytesRead = rangesRead.reduce((sum, [start, end]) => sum + end - start, 0);
    expect(bytes.byteLength).toBeGreaterThan(10_000_000);
    expect(headerBytesRead).toBeLessThan(bytes.byteLength * 0.05);

    rangesRead.length = 0;
    const third = file.tensors[2];
    expectSameBytes(await readTensorData(source, file, third), tensors[2].data);
    expect(rangesRead).toEqual([[file.dataOffset + third.offset, file.dataOffset + third.offset + third.nBytes]]);
  });

  it('reads a header much larger than the first chunk, in growing chunks', async () => {
    const tokens = Array.from({ length: 20_000 }, (_, i) => `tok_${i}_${'ä'.repeat(i % 7)}`);
    const bytes = writeGguf({ metadata: [kvArray('tokenizer.ggml.tokens', GgufValueType.STRING, tokens)], tensors: [] });
    const reads: number[] = [];
    const inner = sourceFromBytes(bytes);
    const source = { ...inner, read: (offset: number, length: number) => (reads.push(length), inner.read(offset, length)) };
    const file = await readGguf(source, { initialChunkBytes: 1024 });
    expect(getStringArray(file, 'tokenizer.ggml.tokens')).toEqual(tokens);
    expect(reads.length).toBeLessThan(12);
    expect(reads.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(bytes.byteLength);
  });
});
