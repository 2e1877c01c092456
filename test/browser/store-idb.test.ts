/**
 * The weight store on IndexedDB in Chromium: the shared specification, plus
 * what only the IndexedDB backend shows: records stored as exact-size
 * ArrayBuffers, models isolated by key range, the storage estimate, and a
 * connection that gives way when another tab deletes the database.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { createWeightStore } from '../../src/store/weight-store';
import { deleteIndexedDbDatabase, indexedDbBackend, openIndexedDbWeightStore } from '../../src/store/idb';
import { expertKey } from '../../src/store/manifest';
import { namedSource, tiny } from '../unit/store/helpers';
import { defineStoreSuite } from '../unit/store/suite';

const created: Array<{ name: string; close(): void }> = [];
let counter = 0;

function newDatabase() {
  const name = `webmoe-test-${Date.now()}-${counter++}`;
  const backend = indexedDbBackend({ databaseName: name });
  created.push({ name, close: () => backend.close() });
  return { name, backend };
}

afterAll(async () => {
  for (const db of created) {
    db.close();
    await deleteIndexedDbDatabase(db.name);
  }
});

defineStoreSuite(async () => newDatabase().backend);

function rawGet(databaseName: string, storeName: string, key: IDBValidKey): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(databaseName);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const request = db.transaction(storeName).objectStore(storeName).get(key);
      request.onsuccess = () => {
        db.close();
        resolve(request.result);
      };
      request.onerror = () => reject(request.error);
    };
  });
}

describe('IndexedDB backend', () => {
  const gguf = () => tiny({ arch: 'olmoe', type: 'q4_k', layers: 2, experts: 4, merges: 40 });

  it('stores each record as an ArrayBuffer of exactly its size under [modelId, key]', async () => {
    const { name, backend } = newDatabase();
    const { manifest } = await createWeightStore(backend).importModel(namedSource(gguf(), 'm.gguf'), { batchBytes: 4096 });
    const value = await rawGet(name, 'records', ['m.gguf', expertKey(1, 3)]);
    expect(value).toBeInstanceOf(ArrayBuffer);
    expect((value as ArrayBuffer).byteLength).toBe(manifest.expertLayers[1].recordBytes);
    const stored = await rawGet(name, 'manifests', 'm.gguf');
    expect(stored).toMatchObject({ modelId: 'm.gguf', state: 'complete' });
  });

  it('deleting one model leaves the records of a model whose id extends it untouched', async () => {
    const { backend } = newDatabase();
    const store = createWeightStore(backend);
    await store.importModel(namedSource(gguf(), 'm'));
    await store.importModel(namedSource(gguf(), 'm.2'));
    const before = (await backend.listRecordKeys('m.2')).length;
    await store.deleteModel('m');
    expect(await backend.listRecordKeys('m')).toEqual([]);
    expect((await backend.listRecordKeys('m.2')).length).toBe(before);
    expect(await (await store.openModel('m.2')).verify()).toEqual([]);
  });

  it('reads the origin quota through navigator.storage and asks for persistence', async () => {
    const { backend } = newDatabase();
    const estimate = await navigator.storage.estimate();
    const available = await backend.availableBytes();
    expect(available).toBeGreaterThan(0);
    expect(available).toBeLessThanOrEqual(estimate.quota!);
    expect(typeof (await backend.requestPersistence())).toBe('boolean');
  });

  it('closes its connection when another tab deletes the database, and reopens on next use', async () => {
    const name = `webmoe-test-shared-${Date.now()}`;
    const store = openIndexedDbWeightStore({ databaseName: name });
    created.push({ name, close: () => (store.backend as ReturnType<typeof indexedDbBackend>).close() });
    await store.importModel(namedSource(gguf(), 'a.gguf'));
    await deleteIndexedDbDatabase(name);
    expect(await store.listModels()).toEqual([]);
    await store.importModel(namedSource(gguf(), 'b.gguf'));
    expect((await store.listModels()).map((m) => m.modelId)).toEqual(['b.gguf']);
  });
});
