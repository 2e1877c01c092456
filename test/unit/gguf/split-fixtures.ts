/** Split GGUF sets in gguf-split's layout, made with writeGguf, for the split-set specs. */

import { readGguf, readTensorData } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { ByteSource } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufKv } from '../../../src/gguf/types';
import { kv, writeGguf } from '../../../src/gguf/writer';
import type { GgufTensorSpec } from '../../../src/gguf/writer';

export const splitKeys = (no: number, count: number, tensors: number): GgufKv[] => [
  kv('split.no', GgufValueType.UINT16, no),
  kv('split.count', GgufValueType.UINT16, count),
  kv('split.tensors.count', GgufValueType.INT32, tensors),
];

export interface Shard {
  metadata: GgufKv[];
  tensors: GgufTensorSpec[];
}

/** gguf-split's layout: the model's metadata in the first shard only, the split keys in all, tensors in file order. */
export async function splitLayout(bytes: Uint8Array, count: number): Promise<Shard[]> {
  const source = sourceFromBytes(bytes);
  const file = await readGguf(source);
  const specs = await Promise.all(file.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: [...t.dims], data: await readTensorData(source, file, t) })));
  const perShard = Math.ceil(specs.length / count);
  return Array.from({ length: count }, (_, i) => ({
    metadata: [...(i === 0 ? file.metadata.values() : []), ...splitKeys(i, count, specs.length)],
    tensors: specs.slice(i * perShard, (i + 1) * perShard),
  }));
}

/** Each shard written, named as llama.cpp names it. */
export const writeShards = (shards: readonly Shard[], prefix = 'm'): ByteSource[] =>
  shards.map((s, i) => sourceFromBytes(writeGguf(s), `${prefix}-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.gguf`));
