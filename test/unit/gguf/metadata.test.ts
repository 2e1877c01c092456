/**
 * Typed metadata accessors: the right type comes back, a missing required key
 * or a wrong type is a BAD_VALUE naming the key.
 */

import { beforeAll, describe, expect, it } from 'vitest';
import {
  archKey, getBool, getNumber, getNumberArray, getString, getStringArray,
  optBool, optNumber, optNumberArray, optString, optStringArray,
} from '../../../src/gguf/metadata';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufFile } from '../../../src/gguf/types';
import { kv, kvArray, kvBool, kvF32, kvI32Array, kvString, kvStringArray, kvU32, writeGguf } from '../../../src/gguf/writer';
import { expectGgufError } from './fixtures';

let file: GgufFile;

beforeAll(async () => {
  const bytes = writeGguf({
    metadata: [
      kvString('general.architecture', 'qwen3moe'),
      kvU32('qwen3moe.block_count', 48),
      kvF32('qwen3moe.rope.freq_base', 1_000_000),
      kv('qwen3moe.context_length', GgufValueType.UINT64, 40960n),
      kv('x.too_big', GgufValueType.UINT64, 2n ** 60n),
      kv('x.i8', GgufValueType.INT8, -5),
      kvBool('tokenizer.ggml.add_bos_token', false),
      kvStringArray('tokenizer.ggml.tokens', ['a', 'b']),
      kvI32Array('tokenizer.ggml.token_type', [1, 3]),
      kvArray('x.u64s', GgufValueType.UINT64, [1n, 2n]),
      kvArray('x.big_u64s', GgufValueType.UINT64, [1n, 2n ** 62n]),
    ],
    tensors: [],
  });
  file = await readGguf(sourceFromBytes(bytes));
});

const wrong = (fn: () => unknown) => () => Promise.resolve().then(fn);

describe('metadata accessors', () => {
  it('return values of the expected types', () => {
    expect(getString(file, 'general.architecture')).toBe('qwen3moe');
    expect(getNumber(file, 'qwen3moe.block_count')).toBe(48);
    expect(getNumber(file, 'qwen3moe.rope.freq_base')).toBe(1_000_000);
    expect(getNumber(file, 'qwen3moe.context_length')).toBe(40960);
    expect(getNumber(file, 'x.i8')).toBe(-5);
    expect(getBool(file, 'tokenizer.ggml.add_bos_token')).toBe(false);
    expect(getStringArray(file, 'tokenizer.ggml.tokens')).toEqual(['a', 'b']);
    expect(getNumberArray(file, 'tokenizer.ggml.token_type')).toEqual([1, 3]);
    expect(getNumberArray(file, 'x.u64s')).toEqual([1, 2]);
  });

  it('build architecture-specific keys from general.architecture', () => {
    expect(archKey(file, 'block_count')).toBe('qwen3moe.block_count');
    expect(getNumber(file, archKey(file, 'block_count'))).toBe(48);
  });

  it('optional variants return undefined for absent keys', () => {
    expect(optString(file, 'nope')).toBeUndefined();
    expect(optNumber(file, 'nope')).toBeUndefined();
    expect(optBool(file, 'nope')).toBeUndefined();
    expect(optStringArray(file, 'nope')).toBeUndefined();
    expect(optNumberArray(file, 'nope')).toBeUndefined();
    expect(optNumber(file, 'qwen3moe.block_count')).toBe(48);
  });

  it('throw BAD_VALUE naming the key for a missing required key', async () => {
    const error = await expectGgufError(wrong(() => getNumber(file, 'qwen3moe.expert_count')), 'BAD_VALUE', 'qwen3moe.expert_count', -1);
    expect(error.message).toMatch(/missing/);
  });

  it('throw BAD_VALUE naming the key for a wrong type, even in optional variants', async () => {
    await expectGgufError(wrong(() => getString(file, 'qwen3moe.block_count')), 'BAD_VALUE', 'qwen3moe.block_count');
    await expectGgufError(wrong(() => optNumber(file, 'general.architecture')), 'BAD_VALUE', 'general.architecture');
    await expectGgufError(wrong(() => getBool(file, 'x.i8')), 'BAD_VALUE', 'x.i8');
    await expectGgufError(wrong(() => getStringArray(file, 'tokenizer.ggml.token_type')), 'BAD_VALUE', 'tokenizer.ggml.token_type');
    const error = await expectGgufError(wrong(() => getNumberArray(file, 'tokenizer.ggml.tokens')), 'BAD_VALUE');
    expect(error.message).toMatch(/ARRAY of STRING/);
  });

  it('refuse 64-bit integers that a number cannot hold exactly', async () => {
    await expectGgufError(wrong(() => getNumber(file, 'x.too_big')), 'BAD_VALUE', 'x.too_big');
    await expectGgufError(wrong(() => getNumberArray(file, 'x.big_u64s')), 'BAD_VALUE', 'x.big_u64s');
  });
});
