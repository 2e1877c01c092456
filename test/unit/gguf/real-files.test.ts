/**
 * Real GGUF files written by llama.cpp's own tools (its vocabulary-only test
 * models) read correctly, and writing their metadata back reproduces them
 * byte for byte. The files come from the llama.cpp source bundled with the
 * reference (scripts/prepare-reference.sh, run before `npm test`); the test
 * fails when they are missing.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { getNumberArray, getString, getStringArray } from '../../../src/gguf/metadata';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromPath } from '../../../src/gguf/source-node';
import { writeGguf } from '../../../src/gguf/writer';
import { expectSameBytes } from './fixtures';

const MODELS_DIR = fileURLToPath(new URL('../../../tools/reference/llama.cpp/models', import.meta.url));
const FILES = ['ggml-vocab-aquila.gguf', 'ggml-vocab-llama-spm.gguf', 'ggml-vocab-qwen2.gguf', 'ggml-vocab-bert-bge.gguf'];

describe('llama.cpp vocabulary files', () => {
  it('are present (run scripts/prepare-reference.sh)', () => {
    expect(existsSync(join(MODELS_DIR, FILES[0])), `${MODELS_DIR} has no ${FILES[0]}`).toBe(true);
  });

  it.each(FILES)('reads %s and writes it back unchanged', async (name) => {
    const path = join(MODELS_DIR, name);
    const source = await sourceFromPath(path);
    const file = await readGguf(source);
    await source.close();

    expect(getString(file, 'general.architecture').length).toBeGreaterThan(0);
    const tokens = getStringArray(file, 'tokenizer.ggml.tokens');
    expect(tokens.length).toBeGreaterThan(1000);
    expect(new Set(tokens).size).toBeGreaterThan(tokens.length * 0.99);
    const types = getNumberArray(file, 'tokenizer.ggml.token_type');
    expect(types.length).toBe(tokens.length);
    expect(file.tensors).toEqual([]);

    // Files without tensors are written without the trailing padding; everything before it must match.
    const original = readFileSync(path);
    const rewritten = writeGguf({ version: file.version, metadata: [...file.metadata.values()], tensors: [] });
    expectSameBytes(rewritten.subarray(0, original.byteLength), original);
    expect(rewritten.subarray(original.byteLength).every((b) => b === 0)).toBe(true);
  }, 30_000);
});
