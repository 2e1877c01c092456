/**
 * Small pieces of the import and read paths: read coalescing, batching of
 * pending experts, model ids, the metadata codec and error helpers.
 */

import { describe, expect, it } from 'vitest';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufKv } from '../../../src/gguf/types';
import { coalescePieces, pendingRuns } from '../../../src/store/batches';
import { StoreError, corruptRecordError, formatBytes, isOutOfSpace } from '../../../src/store/errors';
import { recordHash, sha256Hex, xxh32 } from '../../../src/store/hash';
import { decodeMetadata, encodeMetadata } from '../../../src/store/manifest';
import { checkModelId, modelIdFromName } from '../../../src/store/model-id';

describe('coalescePieces', () => {
  const piece = (sourceOffset: number, length: number) => ({ sourceOffset, length, recordOffset: 0 });
  it('joins pieces separated by small gaps and splits at large ones', () => {
    const groups = coalescePieces([piece(0, 10), piece(10, 5), piece(100, 5), piece(1000, 1)], 90);
    expect(groups.map((g) => g.map((p) => p.sourceOffset))).toEqual([[0, 10, 100], [1000]]);
  });
  it('never joins a piece that lies before the previous one', () => {
    expect(coalescePieces([piece(100, 5), piece(0, 5)], 1000)).toHaveLength(2);
  });
});

describe('pendingRuns', () => {
  it('groups consecutive pending indices into runs of at most the given length', () => {
    const pending = new Set([0, 1, 2, 3, 4, 6, 7, 9]);
    expect(pendingRuns(10, (i) => pending.has(i), 3)).toEqual([[0, 1, 2], [3, 4], [6, 7], [9]]);
    expect(pendingRuns(4, () => false, 3)).toEqual([]);
  });
});

describe('model ids', () => {
  it('derives a storable id from paths and URLs', () => {
    expect(modelIdFromName('/models/Qwen3-30B-A3B-Q4_K_M.gguf')).toBe('Qwen3-30B-A3B-Q4_K_M.gguf');
    expect(modelIdFromName('https://hf.co/a/resolve/main/my%20model.gguf?download=true#x')).toBe('my_model.gguf');
    expect(modelIdFromName('C:\\x\\..gguf')).toBe('gguf');
    expect(modelIdFromName('')).toBe('model');
    for (const name of ['x/../../etc', 'weird name!.gguf', '%E0%A4%A']) expect(() => checkModelId(modelIdFromName(name))).not.toThrow();
  });
  it('rejects ids that could escape a directory or are not portable', () => {
    for (const id of ['..', '.', '', 'a/b', 'a\\b', '-x', 'x'.repeat(129), 'naïve']) {
      expect(() => checkModelId(id), id).toThrow(StoreError);
    }
    expect(() => checkModelId('x'.repeat(128))).not.toThrow();
  });
});

describe('metadata codec', () => {
  it('round-trips every value type through JSON', () => {
    const kvs: GgufKv[] = [
      { key: 'u8', type: GgufValueType.UINT8, value: 255 },
      { key: 'i64', type: GgufValueType.INT64, value: -(2n ** 63n) },
      { key: 'u64', type: GgufValueType.UINT64, value: 2n ** 64n - 1n },
      { key: 'f32', type: GgufValueType.FLOAT32, value: Infinity },
      { key: 'f64', type: GgufValueType.FLOAT64, value: 0.1 },
      { key: 'b', type: GgufValueType.BOOL, value: true },
      { key: 's', type: GgufValueType.STRING, value: 'héllo "json"\n' },
      { key: 'a', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.UINT64, items: [1n, 2n ** 60n] } },
      { key: 'nested', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.ARRAY, items: [{ itemType: GgufValueType.FLOAT32, items: [NaN] }] } },
    ];
    const decoded = decodeMetadata(encodeMetadata(kvs));
    expect([...decoded.values()]).toEqual(kvs);
  });
});

describe('errors and hashes', () => {
  it('names layer and expert of a corrupt expert record', () => {
    const error = corruptRecordError('m', 'expert.12.7', 'bad');
    expect(error).toMatchObject({ code: 'CORRUPT_RECORD', modelId: 'm', layer: 12, expert: 7, recordKey: 'expert.12.7' });
    expect(error.message).toBe('CORRUPT_RECORD: m, layer 12, expert 7 (record expert.12.7): bad');
    expect(corruptRecordError('m', 'shared.0', 'bad').layer).toBeUndefined();
  });
  it('recognises out-of-space failures of browsers and file systems', () => {
    expect(isOutOfSpace(new DOMException('full', 'QuotaExceededError'))).toBe(true);
    expect(isOutOfSpace(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(true);
    expect(isOutOfSpace(new Error('other'))).toBe(false);
    expect(isOutOfSpace(undefined)).toBe(false);
  });
  it('formats byte counts', () => {
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.50 GiB');
  });
  it('hashes records with xxHash32 (seed 0), matching xxhsum -H0', () => {
    const bytes = Uint8Array.from({ length: 1001 }, (_, i) => (i * 31 + 7) & 255);
    expect(recordHash(new Uint8Array(0))).toBe('02cc5d05');
    expect(recordHash(new TextEncoder().encode('abc'))).toBe('32d153ff');
    expect(recordHash(bytes.subarray(0, 1000))).toBe('a793e7c7');
    expect(recordHash(bytes.subarray(0, 37))).toBe('ba3f318f');
    // An unaligned view hashes the same bytes.
    const shifted = new Uint8Array(1001);
    shifted.set(bytes.subarray(0, 1000), 1);
    expect(xxh32(shifted.subarray(1))).toBe(0xa793e7c7);
  });
  it('fingerprints with SHA-256', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
