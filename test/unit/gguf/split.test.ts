/**
 * Split GGUF sets (gguf-split's layout, made here with writeGguf) read as one
 * file, the checks that the shards form one whole set, shard names, and an
 * import of a set as one stored model.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGguf, readTensorData } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { parseSplitName, readGgufSet, splitBaseName, splitShardNames } from '../../../src/gguf/split';
import { kvString, kvU32, writeGguf } from '../../../src/gguf/writer';
import type { GgufTensorSpec } from '../../../src/gguf/writer';
import { GgmlType } from '../../../src/quant/formats';
import { fsBackend } from '../../../src/store/fs-node';
import { createWeightStore } from '../../../src/store/weight-store';
import { expectSameBytes, tiny } from '../store/helpers';
import { expectGgufError } from './fixtures';
import { splitKeys, splitLayout, writeShards as write } from './split-fixtures';
import type { Shard } from './split-fixtures';

const f32 = (name: string, n: number, fill: number): GgufTensorSpec => ({ name, type: GgmlType.F32, dims: [n], data: new Uint8Array(4 * n).fill(fill) });

/** A small hand-made set: three shards of two tensors each. */
function handmade(): Shard[] {
  const model = [kvString('general.architecture', 'test'), kvU32('test.block_count', 2)];
  const tensors = Array.from({ length: 6 }, (_, i) => f32(`t${i}`, 8 + 8 * i, i + 1));
  return [0, 1, 2].map((i) => ({ metadata: [...(i === 0 ? model : []), ...splitKeys(i, 3, 6)], tensors: tensors.slice(2 * i, 2 * i + 2) }));
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('shard names', () => {
  it('follow llama.cpp\'s <prefix>-%05d-of-%05d.gguf, for paths and URLs', () => {
    expect(parseSplitName('dir/m-00002-of-00003.gguf')).toEqual({ prefix: 'dir/m', index: 1, count: 3 });
    expect(parseSplitName('m.gguf')).toBeUndefined();
    expect(splitShardNames('dir/m-00001-of-00003.gguf')).toEqual(['dir/m-00001-of-00003.gguf', 'dir/m-00002-of-00003.gguf', 'dir/m-00003-of-00003.gguf']);
    expect(splitShardNames('https://h/x/m-00002-of-00002.gguf?download=1')).toEqual(['https://h/x/m-00001-of-00002.gguf?download=1', 'https://h/x/m-00002-of-00002.gguf?download=1']);
    expect(splitShardNames('m-00004-of-00003.gguf')).toBeUndefined();
    expect(splitBaseName('/a/Model-Q8-00001-of-00004.gguf')).toBe('/a/Model-Q8.gguf');
    expect(splitBaseName('/a/Model-Q8.gguf')).toBe('/a/Model-Q8.gguf');
  });
});

describe('readGgufSet', () => {
  it('reads a set given in any order as the unsplit file: same metadata (split keys dropped), tensors and bytes', async () => {
    const whole = tiny({ arch: 'olmoe', type: 'q8_0', layers: 2, experts: 4, merges: 40 });
    const unsplit = await readGguf(sourceFromBytes(whole));
    const sources = write(await splitLayout(whole, 3));
    const set = await readGgufSet([sources[2], sources[0], sources[1]]);
    expect(set.shards.map((s) => s.source.name)).toEqual(sources.map((s) => s.name));
    expect(set.source.name).toBe(sources[0].name);
    expect(set.file.metadata).toEqual(unsplit.metadata);
    expect(set.file.tensors.map((t) => [t.name, t.type, t.dims])).toEqual(unsplit.tensors.map((t) => [t.name, t.type, t.dims]));
    expect(set.file.tensors.every((t) => t.offset % set.file.alignment === 0)).toBe(true);
    for (const t of unsplit.tensors) {
      const merged = set.file.tensors.find((m) => m.name === t.name)!;
      expectSameBytes(await readTensorData(set.source, set.file, merged), await readTensorData(sourceFromBytes(whole), unsplit, t), t.name);
    }
  });

  it('answers a read across shards with both shards\' bytes and zeros between them', async () => {
    const sources = write(handmade());
    const set = await readGgufSet(sources);
    const [a, b] = set.shards;
    const last = await a.source.read(a.source.size - 4, 4);
    const span = await set.source.read(a.base + a.source.size - 4, b.base + 8 - (a.base + a.source.size - 4));
    expect([...span.subarray(0, 4)]).toEqual([...last]);
    expect(span.subarray(4, span.byteLength - 8).every((x) => x === 0)).toBe(true);
    expect([...span.subarray(span.byteLength - 8)]).toEqual([...(await b.source.read(0, 8))]);
  });

  it('passes a plain file through unchanged', async () => {
    const source = sourceFromBytes(writeGguf({ metadata: [kvString('general.architecture', 'test')], tensors: [f32('w', 8, 1)] }));
    const set = await readGgufSet([source]);
    expect(set.source).toBe(source);
    expect(set.file).toEqual(await readGguf(source));
  });

  it('a missing shard is BAD_SPLIT naming it', async () => {
    const sources = write(handmade());
    const error = await expectGgufError(() => readGgufSet([sources[0], sources[2]]), 'BAD_SPLIT', 'split.no');
    expect(error.message).toContain('missing m-00002-of-00003.gguf');
    await expectGgufError(() => readGgufSet([sources[0]]), 'BAD_SPLIT', 'split.no');
  });

  it('a shard given twice is BAD_SPLIT', async () => {
    const sources = write(handmade());
    const again = sourceFromBytes(await sources[1].read(0, sources[1].size), 'copy.gguf');
    const error = await expectGgufError(() => readGgufSet([...sources, again]), 'BAD_SPLIT', 'copy.gguf: split.no');
    expect(error.message).toMatch(/both shard 2 of 3/);
  });

  it('split.count disagreeing between shards is BAD_SPLIT: a shard from another set', async () => {
    const shards = handmade();
    shards[2] = { ...shards[2], metadata: splitKeys(2, 4, 6) };
    const sources = write(shards).map((s, i) => sourceFromBytes(writeGguf(shards[i]), `part${i}.gguf`));
    const error = await expectGgufError(() => readGgufSet(sources), 'BAD_SPLIT', 'part2.gguf: split.count');
    expect(error.message).toMatch(/another set/);
  });

  it('a tensor in two shards is BAD_SPLIT naming it', async () => {
    const shards = handmade();
    shards[1] = { ...shards[1], tensors: [shards[1].tensors[0], f32('t0', 8, 9)] };
    const error = await expectGgufError(() => readGgufSet(write(shards)), 'BAD_SPLIT', "tensor 't0'");
    expect(error.message).toContain('m-00001-of-00003.gguf and m-00002-of-00003.gguf');
  });

  it('split.tensors.count disagreeing with a shard or with the tensors found is BAD_SPLIT', async () => {
    const shards = handmade();
    const wrongTotal = shards.map((s, i) => ({ ...s, metadata: [...s.metadata.filter((k) => !k.key.startsWith('split.')), ...splitKeys(i, 3, 7)] }));
    const error = await expectGgufError(() => readGgufSet(write(wrongTotal)), 'BAD_SPLIT', 'split.tensors.count');
    expect(error.message).toMatch(/is 7, but the 3 shards hold 6 tensors/);
    shards[1] = { ...shards[1], metadata: splitKeys(1, 3, 5) };
    await expectGgufError(() => readGgufSet(write(shards)), 'BAD_SPLIT', 'm-00002-of-00003.gguf: split.tensors.count');
  });

  it('a shard from another set is BAD_SPLIT: by its name, or by metadata it shares with the first', async () => {
    const sources = write(handmade());
    const other = write(handmade(), 'other');
    await expectGgufError(() => readGgufSet([sources[0], other[1], sources[2]]), 'BAD_SPLIT', 'other-00002-of-00003.gguf: name');
    const shards = handmade();
    shards[1] = { ...shards[1], metadata: [kvString('general.architecture', 'else'), ...shards[1].metadata] };
    await expectGgufError(() => readGgufSet(write(shards)), 'BAD_SPLIT', 'm-00002-of-00003.gguf: general.architecture');
    // A shard renamed to a number it does not hold.
    const renamed = sourceFromBytes(await sources[2].read(0, sources[2].size), 'm-00002-of-00003.gguf');
    await expectGgufError(() => readGgufSet([sources[0], renamed, sources[1]]), 'BAD_SPLIT');
  });

  it('a plain file among shards is BAD_SPLIT', async () => {
    const sources = write(handmade());
    const plain = sourceFromBytes(writeGguf({ metadata: [], tensors: [f32('x', 8, 1)] }), 'plain.gguf');
    await expectGgufError(() => readGgufSet([sources[0], plain]), 'BAD_SPLIT', 'plain.gguf: split.count');
  });
});

describe('importing a split set', () => {
  it('stores one model under the base name, with the unsplit file\'s metadata and tensors', async () => {
    const whole = tiny({ arch: 'olmoe', type: 'q8_0', layers: 2, experts: 4, merges: 40 });
    const unsplit = await readGguf(sourceFromBytes(whole));
    const dir = await mkdtemp(join(tmpdir(), 'webmoe-split-'));
    dirs.push(dir);
    const store = createWeightStore(await fsBackend(dir));
    const sources = write(await splitLayout(whole, 4), '/models/tiny-olmoe');
    const small = { batchBytes: 8 * 1024, sharedChunkBytes: 16 * 1024 };
    const { manifest } = await store.importModel([sources[3], sources[1], sources[0], sources[2]], small);
    expect(manifest.modelId).toBe('tiny-olmoe.gguf');
    const model = await store.openModel('tiny-olmoe.gguf');
    expect(await model.readMetadata({ verify: true })).toEqual(unsplit.metadata);
    const tensors = await model.readTensors(unsplit.tensors.map((t) => t.name), { verify: true });
    for (const t of unsplit.tensors) expectSameBytes(tensors.get(t.name), await readTensorData(sourceFromBytes(whole), unsplit, t), t.name);
    expect(await model.verify()).toEqual([]);
    // The same set again is already complete; a set missing a shard is refused before anything is written.
    expect((await store.importModel(sources, small)).alreadyComplete).toBe(true);
    await expectGgufError(() => store.importModel(sources.slice(1), { modelId: 'other' }), 'BAD_SPLIT');
    expect((await store.listModels()).map((m) => m.modelId)).toEqual(['tiny-olmoe.gguf']);
  });
});
