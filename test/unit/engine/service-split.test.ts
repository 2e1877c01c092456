/**
 * The engine service takes a split GGUF set as the URL of one shard (its
 * siblings' URLs follow from the name) or as a list of Files, and imports it
 * as one model named without the shard suffix; Node's openModel (the CLI's)
 * takes the path of one shard. No GPU: import and headers only.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openModel } from '../../../src/engine/node';
import { EngineService } from '../../../src/engine/service';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { Platform } from '../../../src/engine/service';
import { openFsWeightStore } from '../../../src/store/fs-node';
import { rangeFetch, tiny } from '../store/helpers';
import { splitLayout, writeShards } from '../gguf/split-fixtures';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
afterEach(() => vi.unstubAllGlobals());

async function service(): Promise<EngineService> {
  const dir = await mkdtemp(join(tmpdir(), 'webmoe-service-split-'));
  dirs.push(dir);
  const platform: Platform = {
    requestGpu: () => Promise.reject(new Error('no GPU in this test')),
    openStore: () => openFsWeightStore(dir),
  };
  return new EngineService(platform);
}

/** The shards' bytes, named as gguf-split names them. */
async function shardFiles(count: number): Promise<{ name: string; bytes: Uint8Array }[]> {
  const whole = tiny({ arch: 'olmoe', type: 'q8_0', layers: 2, experts: 4, merges: 40 });
  const sources = writeShards(await splitLayout(whole, count), 'tiny');
  return Promise.all(sources.map(async (s) => ({ name: s.name, bytes: await s.read(0, s.size) })));
}

describe('EngineService with split sets', () => {
  it('imports a set from the URL of its first shard, fetching every shard', async () => {
    const shards = await shardFiles(3);
    const asked = new Set<string>();
    vi.stubGlobal('fetch', (async (input, init) => {
      const url = String(input);
      asked.add(url);
      const shard = shards.find((s) => url === `https://example.test/models/${s.name}`);
      return shard ? rangeFetch(shard.bytes, [])(input, init) : new Response('not found', { status: 404 });
    }) as typeof fetch);
    const summary = await (await service()).importModel(`https://example.test/models/${shards[0].name}`, undefined);
    expect(summary.modelId).toBe('tiny.gguf');
    expect([...asked].sort()).toEqual(shards.map((s) => `https://example.test/models/${s.name}`));
  });

  it('imports a set given as Files in any order; one File of a set alone is BAD_SPLIT', async () => {
    const shards = await shardFiles(3);
    const files = shards.map((s) => new File([s.bytes as Uint8Array<ArrayBuffer>], s.name));
    const core = await service();
    const summary = await core.importModel([files[1], files[2], files[0]], undefined);
    expect(summary).toMatchObject({ modelId: 'tiny.gguf', architecture: 'olmoe' });
    await expect(core.importModel(files[0], 'alone')).rejects.toMatchObject({ name: 'GgufError', code: 'BAD_SPLIT' });
  });

  it('openModel (Node) reads a set from one shard\'s path; a missing sibling is BAD_SPLIT naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webmoe-open-split-'));
    dirs.push(dir);
    const shards = await shardFiles(3);
    for (const s of shards) await writeFile(join(dir, s.name), s.bytes);
    const opened = await openModel(join(dir, shards[1].name), join(dir, 'store'));
    const whole = await readGguf(sourceFromBytes(tiny({ arch: 'olmoe', type: 'q8_0', layers: 2, experts: 4, merges: 40 })));
    expect(opened.file.tensors.map((t) => t.name)).toEqual(whole.tensors.map((t) => t.name));
    expect(opened.file.metadata).toEqual(whole.metadata);
    await opened.close();
    await rm(join(dir, shards[2].name));
    await expect(openModel(join(dir, shards[0].name), join(dir, 'store'))).rejects.toThrow(/missing .*tiny-00003-of-00003\.gguf/);
  });
});
