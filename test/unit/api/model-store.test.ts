/**
 * The model store without a model: openModelStore (Node) lists, imports
 * (resuming an interrupted import) and deletes models in a directory, and
 * the service behind it never asks for a GPU for any of that.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodePlatform, openModelStore } from '../../../src/api/node';
import { createStoreClient } from '../../../src/api/openai';
import { WebMoeError } from '../../../src/api/errors';
import { EngineService } from '../../../src/engine/service';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const dir = mkdtempSync(join(tmpdir(), 'webmoe-model-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openModelStore', () => {
  it('imports a path, lists it, deletes it, and refuses calls once closed', async () => {
    const path = join(dir, 'tiny-olmoe.gguf');
    writeFileSync(path, makeTinyModel({ arch: 'olmoe', seed: 3, layers: 1 }));
    const store = await openModelStore({ storeDir: join(dir, 'a') });
    const phases = new Set<string>();
    const card = await store.import(path, { onProgress: (p) => phases.add(p.phase) });
    expect(card).toMatchObject({ id: 'tiny-olmoe.gguf', object: 'model', architecture: 'olmoe', state: 'complete' });
    expect(phases).toContain('import');
    expect((await store.list()).data.map((m) => m.id)).toEqual(['tiny-olmoe.gguf']);
    expect(await store.delete('tiny-olmoe.gguf')).toEqual({ id: 'tiny-olmoe.gguf', object: 'model', deleted: true });
    expect((await store.list()).data).toEqual([]);
    await store.close();
    await expect(store.list()).rejects.toMatchObject({ code: 'UNLOADED' });
  });

  it('needs no GPU: a platform whose GPU request throws still imports, lists and deletes', async () => {
    const core = new EngineService({
      ...nodePlatform,
      requestGpu: () => Promise.reject(new Error('no GPU may be requested for store work')),
    });
    await core.useStore({ storeDir: join(dir, 'b') });
    const store = createStoreClient(core);
    await store.import(makeTinyModel({ arch: 'qwen2moe', seed: 4, layers: 1 }), { id: 'bytes-model' });
    expect((await store.list()).data.map((m) => [m.id, m.state])).toEqual([['bytes-model', 'complete']]);
    expect((await store.delete('bytes-model')).deleted).toBe(true);
    expect((await store.delete('bytes-model')).deleted).toBe(false);
    const bad = await store.import(new Uint8Array(64), { id: 'bad' }).then(() => undefined, (e: unknown) => e);
    expect(bad).toBeInstanceOf(WebMoeError);
    expect((bad as WebMoeError).code).toBe('BAD_GGUF');
  });
});
