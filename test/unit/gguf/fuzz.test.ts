/**
 * Seeded mutation fuzzing: thousands of corrupted variants of valid files.
 * Each parse either succeeds with every tensor inside the file, or throws a
 * GgufError carrying a field and an offset; no other exception, no hang, no
 * runaway allocation. The work a parse may do is bounded by what it reads:
 * the reader promises time and memory proportional to the header's real
 * size, so the test counts the bytes and reads each parse asks of its source
 * and the items it decodes, rather than timing a machine that may be busy.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { GgufError } from '../../../src/gguf/errors';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { ByteSource } from '../../../src/gguf/source';
import type { GgufFile } from '../../../src/gguf/types';
import { GgufValueType } from '../../../src/gguf/types';
import { kvArray, kvF32Array, kvI32Array, kvString, kvStringArray, kvU32, writeGguf } from '../../../src/gguf/writer';
import { handMade, randomBytes, richSpec, seededRandom, tensorInfo } from './fixtures';

const MUTATIONS_PER_FILE = 1000;
const HUGE_VALUES = [2n ** 31n, 2n ** 32n, 2n ** 32n - 1n, 2n ** 53n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n, 0n, 1n];
const BYTE_PATTERNS = [0x00, 0xff, 0x7f, 0x80];

function seedFiles(): Uint8Array[] {
  const random = seededRandom(99);
  const tokens = Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? `▁tök${i}` : `t${i}`));
  const vocab = writeGguf({
    version: 3,
    metadata: [
      kvString('general.architecture', 'llama'),
      kvU32('llama.block_count', 1),
      kvStringArray('tokenizer.ggml.tokens', tokens),
      kvF32Array('tokenizer.ggml.scores', tokens.map((_, i) => -i)),
      kvI32Array('tokenizer.ggml.token_type', tokens.map(() => 1)),
    ],
    tensors: [{ name: 'token_embd.weight', type: GgmlType.F16, dims: [8, 40], data: randomBytes(random, 640) }],
  });
  const manyTensors = writeGguf({
    version: 2,
    metadata: [kvArray('x.nested', GgufValueType.ARRAY, [{ itemType: GgufValueType.UINT64, items: [1n, 2n] }])],
    tensors: Array.from({ length: 12 }, (_, i) => ({
      name: `blk.${i}.w`,
      type: i % 2 ? GgmlType.Q4_0 : GgmlType.F32,
      dims: [32, 1 + (i % 3)],
      data: randomBytes(random, (i % 2 ? 18 : 128) * (1 + (i % 3))),
    })),
  });
  const byHand = handMade({
    tensorCount: 2,
    kvCount: 1,
    body: (b) => {
      b.str('general.alignment').u32(GgufValueType.UINT32).u32(32);
      tensorInfo(b, 'a', [8, 2], GgmlType.F32, 0);
      tensorInfo(b, 'b', [256], GgmlType.Q6_K, 64);
    },
    dataBytes: 64 + 210,
  }).bytes;
  return [writeGguf(richSpec(2, 64)), vocab, manyTensors, byHand];
}

/** Offsets of 8-byte little-endian fields holding small values: likely counts and lengths. */
function lengthFieldOffsets(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsets: number[] = [];
  for (let i = 8; i + 8 <= bytes.byteLength; i++) {
    const value = view.getBigUint64(i, true);
    if (value > 0n && value < 1n << 20n) offsets.push(i);
  }
  return offsets;
}

function mutate(original: Uint8Array, random: () => number, lengthFields: number[]): Uint8Array {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const kind = Math.floor(random() * 4);
  if (kind === 3) return original.slice(0, Math.floor(random() * original.byteLength));
  const bytes = original.slice();
  const view = new DataView(bytes.buffer);
  const edits = 1 + Math.floor(random() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * bytes.byteLength);
    if (kind === 0) bytes[at] ^= 1 << Math.floor(random() * 8);
    else if (kind === 1) bytes[at] = pick(BYTE_PATTERNS);
    else if (lengthFields.length > 0) view.setBigUint64(pick(lengthFields), pick(HUGE_VALUES), true);
  }
  return bytes;
}

/** A source over `bytes` that counts what is asked of it. */
function countingSource(bytes: Uint8Array): ByteSource & { reads: number; bytesRead: number } {
  const inner = sourceFromBytes(bytes);
  const counted = {
    size: inner.size,
    name: inner.name,
    reads: 0,
    bytesRead: 0,
    read(offset: number, length: number): Promise<Uint8Array> {
      counted.reads++;
      counted.bytesRead += length;
      return inner.read(offset, length);
    },
  };
  return counted;
}

/** Metadata items a parse produced: strings' bytes and arrays' items, nested arrays included. */
function decodedItems(file: GgufFile): number {
  const count = (value: unknown): number => {
    if (typeof value === 'string') return 1 + value.length;
    if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + count(v), 1);
    if (value && typeof value === 'object' && 'items' in value) return count((value as { items: unknown }).items);
    return 1;
  };
  return [...file.metadata.values()].reduce((sum, kv) => sum + count(kv.key) + count(kv.value), 0) + file.tensors.length;
}

/**
 * The cursor fetches only bytes it has not buffered, in chunks that double
 * from `initialChunkBytes`: at most the file once, in a number of reads
 * logarithmic in its size (plus the first read and one to reach an exact end).
 */
function readsBound(fileBytes: number, initialChunkBytes: number): number {
  return 2 + Math.ceil(Math.log2(fileBytes / initialChunkBytes + 1));
}

describe('fuzzing readGguf with mutated files', () => {
  it('always succeeds with in-bounds tensors or throws a located GgufError, with work bounded by the file size', async () => {
    const random = seededRandom(20240601);
    const worst = { readFactor: 0, readsOverBound: 0, reads: 0, itemsPerByte: 0 };
    const outcomes = { ok: 0, rejected: 0 };
    const codes = new Set<string>();

    for (const original of seedFiles()) {
      await expect(readGguf(sourceFromBytes(original))).resolves.toBeDefined();
      const lengthFields = lengthFieldOffsets(original);
      for (let m = 0; m < MUTATIONS_PER_FILE; m++) {
        const bytes = mutate(original, random, lengthFields);
        const source = countingSource(bytes);
        // Odd mutations start from tiny chunks, so items straddle refills and get parsed again.
        const initialChunkBytes = m % 2 ? 64 : 256 * 1024;
        try {
          const file = await readGguf(source, { initialChunkBytes });
          outcomes.ok++;
          worst.itemsPerByte = Math.max(worst.itemsPerByte, decodedItems(file) / bytes.byteLength);
          expect(file.dataOffset % file.alignment).toBe(0);
          for (const t of file.tensors) {
            expect(t.offset % file.alignment).toBe(0);
            expect(file.dataOffset + t.offset + t.nBytes).toBeLessThanOrEqual(bytes.byteLength);
          }
        } catch (e) {
          if (!(e instanceof GgufError)) throw new Error(`mutation ${m} threw a non-GgufError: ${String(e)}`, { cause: e });
          outcomes.rejected++;
          codes.add(e.code);
          expect(e.field.length).toBeGreaterThan(0);
          expect(Number.isSafeInteger(e.offset) && e.offset >= 0 && e.offset <= bytes.byteLength).toBe(true);
        }
        worst.readFactor = Math.max(worst.readFactor, source.bytesRead / bytes.byteLength);
        worst.reads = Math.max(worst.reads, source.reads);
        worst.readsOverBound = Math.max(worst.readsOverBound, source.reads / readsBound(bytes.byteLength, initialChunkBytes));
      }
    }

    expect(outcomes.ok + outcomes.rejected).toBe(4 * MUTATIONS_PER_FILE);
    // Both outcomes must occur, and the mutations must reach well past the magic check.
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.rejected).toBeGreaterThan(100);
    expect([...codes]).toEqual(expect.arrayContaining(['TRUNCATED', 'LIMIT_EXCEEDED', 'BAD_VALUE', 'BAD_TENSOR']));
    // Bounds on hostile input: no parse asks for much more than the file, in
    // few reads, and none decodes more items than the file has bytes.
    console.log(`worst parse: ${worst.readFactor.toFixed(2)}x the file's bytes read, ${worst.reads} reads (${worst.readsOverBound.toFixed(2)} of the bound), ${worst.itemsPerByte.toFixed(2)} items per byte`);
    expect(worst.readFactor).toBeLessThanOrEqual(1);
    expect(worst.readsOverBound).toBeLessThanOrEqual(1);
    expect(worst.itemsPerByte).toBeLessThanOrEqual(1);
  }, 60_000);
});
