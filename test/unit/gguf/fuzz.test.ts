/**
 * Seeded mutation fuzzing: thousands of corrupted variants of valid files.
 * Each parse either succeeds with every tensor inside the file, or throws a
 * GgufError carrying a field and an offset; no other exception, no hang, no
 * runaway allocation.
 */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { GgufError } from '../../../src/gguf/errors';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
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

describe('fuzzing readGguf with mutated files', () => {
  it('always succeeds with in-bounds tensors or throws a located GgufError, quickly', async () => {
    const random = seededRandom(20240601);
    let maxParseMs = 0;
    const outcomes = { ok: 0, rejected: 0 };
    const codes = new Set<string>();
    const started = performance.now();

    for (const original of seedFiles()) {
      await expect(readGguf(sourceFromBytes(original))).resolves.toBeDefined();
      const lengthFields = lengthFieldOffsets(original);
      for (let m = 0; m < MUTATIONS_PER_FILE; m++) {
        const bytes = mutate(original, random, lengthFields);
        const t0 = performance.now();
        try {
          const file = await readGguf(sourceFromBytes(bytes));
          outcomes.ok++;
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
        maxParseMs = Math.max(maxParseMs, performance.now() - t0);
      }
    }

    const totalMs = performance.now() - started;
    expect(outcomes.ok + outcomes.rejected).toBe(4 * MUTATIONS_PER_FILE);
    // Both outcomes must occur, and the mutations must reach well past the magic check.
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.rejected).toBeGreaterThan(100);
    expect([...codes]).toEqual(expect.arrayContaining(['TRUNCATED', 'LIMIT_EXCEEDED', 'BAD_VALUE', 'BAD_TENSOR']));
    // Bounds on hostile input, not a benchmark.
    expect(maxParseMs).toBeLessThan(1000);
    expect(totalMs).toBeLessThan(15_000);
  }, 30_000);
});
