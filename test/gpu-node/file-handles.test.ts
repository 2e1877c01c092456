/**
 * GGUF files read in place keep one file handle per shard while their model
 * is loaded, and none after unload (no handle is left to the garbage
 * collector); importing a file from a path closes it when the import ends,
 * also when the import fails. Counted in /proc/self/fd (Linux).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebMoeError } from '../../src/api/errors';
import { createEngine } from '../../src/api/node';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const SPLIT_TOOL = join(import.meta.dirname, '../../tools/reference/bin/llama-gguf-split');

const dir = mkdtempSync(join(tmpdir(), 'webmoe-fds-'));
const storeDir = join(dir, 'store');

/** Open descriptors of this process that point at `path`. */
function handlesTo(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // closed between the listing and the read
    }
  }).length;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('file handles of GGUF paths', () => {
  it('holds one per file while loaded and none after unload', async () => {
    const path = join(dir, 'tiny.gguf');
    writeFileSync(path, makeTinyModel({ arch: 'qwen2moe', seed: 2, layers: 1 }));
    expect(handlesTo(path)).toBe(0);
    const engine = await createEngine({ model: path, storeDir, contextLength: 32 });
    expect(handlesTo(path)).toBe(1);
    await engine.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 });
    await engine.unload();
    expect(handlesTo(path)).toBe(0);
  });

  it('closes every shard of a split set on unload', async () => {
    const whole = join(dir, 'whole.gguf');
    writeFileSync(whole, makeTinyModel({ arch: 'olmoe', seed: 3, layers: 2 }));
    mkdirSync(join(dir, 'split'));
    execFileSync(SPLIT_TOOL, ['--split', '--split-max-tensors', '8', whole, join(dir, 'split', 'tiny')], { stdio: 'pipe' });
    const shards = readdirSync(join(dir, 'split')).sort().map((f) => join(dir, 'split', f));
    expect(shards.length).toBeGreaterThan(1);
    const engine = await createEngine({ model: shards[0], storeDir, contextLength: 32 });
    expect(shards.map(handlesTo)).toEqual(shards.map(() => 1));
    await engine.unload();
    expect(shards.map(handlesTo)).toEqual(shards.map(() => 0));
  });

  it('closes a path imported into the store, and a path whose import fails', async () => {
    const good = join(dir, 'import-me.gguf');
    writeFileSync(good, makeTinyModel({ arch: 'olmoe', seed: 4, layers: 1 }));
    const bad = join(dir, 'not-a-model.gguf');
    writeFileSync(bad, new Uint8Array(64).fill(7));
    const engine = await createEngine({ model: good, storeDir, contextLength: 32 });
    try {
      await engine.models.import(good, { id: 'imported' });
      expect(handlesTo(good)).toBe(1); // the loaded model's own handle only
      const error = await engine.models.import(bad, { id: 'bad' }).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(WebMoeError);
      expect(handlesTo(bad)).toBe(0);
    } finally {
      await engine.unload();
    }
    expect(handlesTo(good)).toBe(0);
  });
});
