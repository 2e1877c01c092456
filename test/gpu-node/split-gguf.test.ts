/**
 * A split GGUF set made by llama.cpp's own llama-gguf-split loads and
 * imports as one model: by the first shard's path (the others found by
 * name), by the list of its paths, and imported from Files into the store and
 * loaded by id, each giving the same greedy completion as the unsplit file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import type { ModelSource } from '../../src/api/types';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const SPLIT_TOOL = join(__dirname, '../../tools/reference/bin/llama-gguf-split');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-split-'));
const storeDir = join(dir, 'store');
const REQUEST = { prompt: 'The river', max_tokens: 12, temperature: 0 };

async function completionOf(model: ModelSource): Promise<string> {
  const engine = await createEngine({ model, storeDir, contextLength: 64 });
  try {
    return (await engine.completions.create(REQUEST)).choices[0].text;
  } finally {
    await engine.unload();
  }
}

describe('a split GGUF set (llama-gguf-split)', () => {
  let shards: string[];
  let expected: string;

  beforeAll(async () => {
    const bytes = makeTinyModel({ arch: 'olmoe', type: 'q8_0', seed: 1, layers: 2 });
    const whole = join(dir, 'tiny.gguf');
    writeFileSync(whole, bytes);
    const tensors = (await readGguf(sourceFromBytes(bytes))).tensors.length;
    mkdirSync(join(dir, 'split'));
    execFileSync(SPLIT_TOOL, ['--split', '--split-max-tensors', String(Math.floor(tensors / 3)), whole, join(dir, 'split', 'tiny')], { stdio: 'pipe' });
    shards = readdirSync(join(dir, 'split')).sort().map((f) => join(dir, 'split', f));
    expected = await completionOf(whole);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is written as 3 or more shards named <prefix>-%05d-of-%05d.gguf', () => {
    expect(shards.length).toBeGreaterThanOrEqual(3);
    shards.forEach((s, i) => expect(s).toMatch(new RegExp(`tiny-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}\\.gguf$`)));
    expect(expected.length).toBeGreaterThan(0);
  });

  it('loads by the first shard\'s path with the same greedy completion', async () => {
    expect(await completionOf(shards[0])).toBe(expected);
  });

  it('loads by the list of its paths, in any order', async () => {
    expect(await completionOf([...shards].reverse())).toBe(expected);
  });

  it('imports from Files as one stored model named without the shard suffix, which loads by id', async () => {
    const engine = await createEngine({ model: shards, storeDir, contextLength: 64 });
    try {
      const files = shards.map((p) => new File([readFileSync(p)], p.split('/').pop()!));
      const card = await engine.models.import(files);
      expect(card.id).toBe('tiny.gguf');
    } finally {
      await engine.unload();
    }
    expect(await completionOf('tiny.gguf')).toBe(expected);
  });
});
