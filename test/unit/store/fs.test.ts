/**
 * The weight store on the filesystem backend (Node): the shared
 * specification, plus what only a directory can show: the layout on disk,
 * files left half-written by a crash, a full disk, and import from a path.
 */

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sourceFromPath } from '../../../src/gguf/source-node';
import { fsBackend, openFsWeightStore } from '../../../src/store/fs-node';
import { StoreError } from '../../../src/store/errors';
import { createWeightStore } from '../../../src/store/weight-store';
import { expectSameBytes, expectedExpert, failingBackend, namedSource, parseGguf, snapshot, tiny } from './helpers';
import { defineStoreSuite } from './suite';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'webmoe-store-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

defineStoreSuite(async () => fsBackend(await freshDir()));

describe('filesystem backend', () => {
  const gguf = () => tiny({ arch: 'qwen3moe', type: 'q8_0', layers: 2, experts: 4, merges: 40 });

  it('keeps one directory per model: a manifest and one file per record', async () => {
    const root = await freshDir();
    const store = await openFsWeightStore(root);
    const { manifest } = await store.importModel(namedSource(gguf(), '/some/where/Model-Q8.gguf'));
    expect(manifest.modelId).toBe('Model-Q8.gguf');
    expect(await readdir(root)).toEqual(['Model-Q8.gguf']);
    expect((await readdir(join(root, 'Model-Q8.gguf'))).sort()).toEqual(['manifest.json', 'records']);
    const files = (await readdir(join(root, 'Model-Q8.gguf', 'records'))).sort();
    expect(files).toContain('expert.1.3');
    expect(files).toContain('metadata');
    expect(files.some((f) => f.startsWith('journal.'))).toBe(false);
    const onDisk = JSON.parse(await readFile(join(root, 'Model-Q8.gguf', 'manifest.json'), 'utf8'));
    expect(onDisk.state).toBe('complete');
  });

  it('imports from a path on disk', async () => {
    const dir = await freshDir();
    const path = join(dir, 'from-disk.gguf');
    await writeFile(path, gguf());
    const source = await sourceFromPath(path);
    const store = await openFsWeightStore(join(dir, 'store'));
    try {
      await store.importModel(source);
    } finally {
      await source.close();
    }
    const model = await store.openModel('from-disk.gguf');
    expectSameBytes(await model.readExpert(1, 2, { verify: true }), expectedExpert(gguf(), await parseGguf(gguf()), 1, 2,
      ['ffn_gate_exps.weight', 'ffn_up_exps.weight', 'ffn_down_exps.weight'], 4), 'expert 1.2');
  });

  it('ignores a record file half-written when the process died, and rewrites it on resume', async () => {
    const cleanRoot = await freshDir();
    const clean = await fsBackend(cleanRoot);
    await createWeightStore(clean).importModel(namedSource(gguf(), 'm.gguf'), { batchBytes: 8192 });
    const expected = await snapshot(clean, 'm.gguf');

    const root = await freshDir();
    const backend = await fsBackend(root);
    await expect(createWeightStore(failingBackend(backend, { operation: 'putRecords', call: 3 }))
      .importModel(namedSource(gguf(), 'm.gguf'), { batchBytes: 8192 })).rejects.toBeInstanceOf(StoreError);
    // What a kill -9 in the middle of writing expert 1.0 leaves behind.
    await writeFile(join(root, 'm.gguf', 'records', 'expert.1.0.partial'), new Uint8Array(1234));
    expect(await backend.listRecordKeys('m.gguf')).not.toContain('expert.1.0.partial');

    await createWeightStore(backend).importModel(namedSource(gguf(), 'm.gguf'), { batchBytes: 8192 });
    expect(await snapshot(backend, 'm.gguf')).toEqual(expected);
  });

  it('a full disk (ENOSPC) is QUOTA_EXCEEDED', async () => {
    const backend = await fsBackend(await freshDir());
    const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const error = await createWeightStore(failingBackend(backend, { operation: 'putRecords', call: 2, error: enospc }))
      .importModel(namedSource(gguf(), 'm.gguf'), { batchBytes: 8192 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('QUOTA_EXCEEDED');
  });

  it('reports the free space of its file system', async () => {
    const backend = await fsBackend(await freshDir());
    expect(await backend.availableBytes()).toBeGreaterThan(0);
  });
});
