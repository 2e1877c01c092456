/**
 * Split GGUF sets (llama.cpp's gguf-split): a model written as
 * `name-00001-of-0000N.gguf` … `name-0000N-of-0000N.gguf`, each shard a whole
 * GGUF file with its own header and some of the tensors. Every shard holds
 * `split.no` (u16, 0-based), `split.count` (u16) and `split.tensors.count`
 * (i32, tensors in the whole set); the first shard also holds all the model's
 * metadata, the others usually nothing else.
 *
 * A set is read as one GgufFile over one ByteSource: the shards are laid end
 * to end in a virtual address space (each starting at an aligned offset, the
 * gaps reading as zeros), and each tensor's offset is rebased into it. The
 * first shard sits at 0, so the view's header is the first shard's header.
 * Callers that read through tensorDataRange() need not know about shards.
 */

import { GgufError, NO_OFFSET, quoteName } from './errors';
import { optNumber } from './metadata';
import { alignUp, readGguf } from './reader';
import type { ReadGgufOptions } from './reader';
import { checkReadRange } from './source';
import type { ByteSource } from './source';
import type { GgufFile, GgufKv, GgufTensorInfo, GgufValue } from './types';

export const SPLIT_NO_KEY = 'split.no';
export const SPLIT_COUNT_KEY = 'split.count';
export const SPLIT_TENSORS_COUNT_KEY = 'split.tensors.count';

/** llama.cpp's LLAMA_SPLIT_PATH_FORMAT suffix, "-%05d-of-%05d.gguf", before any URL query or fragment. */
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf((?:[?#].*)?)$/i;

export interface SplitName {
  /** The name without the suffix, e.g. "dir/model" for "dir/model-00002-of-00003.gguf". */
  prefix: string;
  /** 0-based shard number. */
  index: number;
  count: number;
}

/** The parts of a shard's file name or URL, or undefined when it does not follow the pattern. */
export function parseSplitName(name: string): SplitName | undefined {
  const match = SPLIT_NAME.exec(name);
  if (!match) return undefined;
  const [, prefix, no, count] = match;
  return { prefix, index: Number(no) - 1, count: Number(count) };
}

/** Names of all shards of the set that `name` (any shard's name) belongs to, or undefined if it names no shard. */
export function splitShardNames(name: string): string[] | undefined {
  const match = SPLIT_NAME.exec(name);
  const count = match ? Number(match[3]) : 0;
  if (!match || count < 1 || Number(match[2]) < 1 || Number(match[2]) > count) return undefined;
  return Array.from({ length: count }, (_, i) => splitShardName(match[1], i, count) + match[4]);
}

/** The name llama.cpp gives shard `index` (0-based) of `count`. */
export function splitShardName(prefix: string, index: number, count: number): string {
  const five = (n: number) => String(n).padStart(5, '0');
  return `${prefix}-${five(index + 1)}-of-${five(count)}.gguf`;
}

/** A model's name without the shard suffix: "model-00001-of-00003.gguf" → "model.gguf". */
export function splitBaseName(name: string): string {
  const match = SPLIT_NAME.exec(name);
  return match ? `${match[1]}.gguf${match[4]}` : name;
}

export interface GgufSet {
  file: GgufFile;
  /** Answers reads of `file`'s byte ranges; one shard's source itself when the set is one plain file. */
  source: ByteSource;
  /** The shards in order (one entry for a plain file). */
  shards: readonly { file: GgufFile; source: ByteSource; base: number }[];
}

/**
 * Reads one GGUF file, or the shards of a split set given in any order, as
 * one model. Throws GgufError BAD_SPLIT when the shards do not form one
 * whole set: a shard missing or given twice, split.count or
 * split.tensors.count disagreeing, a tensor in two shards, or a shard whose
 * name or metadata belongs to another set.
 */
export async function readGgufSet(sources: readonly ByteSource[], options: ReadGgufOptions = {}): Promise<GgufSet> {
  if (sources.length === 0) throw splitError('sources', 'no GGUF file given');
  const files = await Promise.all(sources.map((s) => readGguf(s, options)));
  const shards = files.map((file, i) => ({ file, source: sources[i], ...splitInfo(file, sources[i].name) }));
  const count = shards[0].count;
  if (shards.length === 1 && count === undefined) return { file: files[0], source: sources[0], shards: [{ file: files[0], source: sources[0], base: 0 }] };

  for (const s of shards) {
    if (s.count === undefined || s.index === undefined) {
      throw splitError(`${s.source.name}: ${SPLIT_COUNT_KEY}`, `${s.source.name} is not a shard of a split set (no ${SPLIT_COUNT_KEY}), but ${sources.length} files were given as one`);
    }
    if (s.count !== count) {
      throw splitError(`${s.source.name}: ${SPLIT_COUNT_KEY}`,
        `${s.source.name} is a shard of a set of ${s.count}, ${shards[0].source.name} of a set of ${count}: a shard from another set`);
    }
    if (s.index >= s.count) throw splitError(`${s.source.name}: ${SPLIT_NO_KEY}`, `shard number ${s.index} is not below ${SPLIT_COUNT_KEY} ${s.count}`);
  }
  const byIndex = new Map<number, (typeof shards)[number]>();
  for (const s of shards) {
    const other = byIndex.get(s.index!);
    if (other) throw splitError(`${s.source.name}: ${SPLIT_NO_KEY}`, `${s.source.name} and ${other.source.name} are both shard ${s.index! + 1} of ${count}`);
    byIndex.set(s.index!, s);
  }
  const missing = Array.from({ length: count! }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    const first = shards[0].source.name;
    const names = splitShardNames(first);
    const list = missing.map((i) => (names ? names[i] : `shard ${i + 1}`)).join(', ');
    throw splitError(SPLIT_NO_KEY, `the split set of ${first} has ${count} shards; missing ${list}`);
  }
  const ordered = [...byIndex.keys()].sort((a, b) => a - b).map((i) => byIndex.get(i)!);
  checkSameSet(ordered);
  return mergeShards(ordered);
}

interface ShardInfo {
  index: number | undefined;
  count: number | undefined;
  tensorsCount: number | undefined;
}

function splitInfo(file: GgufFile, name: string): ShardInfo {
  const info = {
    index: optNumber(file, SPLIT_NO_KEY),
    count: optNumber(file, SPLIT_COUNT_KEY),
    tensorsCount: optNumber(file, SPLIT_TENSORS_COUNT_KEY),
  };
  if (info.count !== undefined && info.index === undefined) throw splitError(`${name}: ${SPLIT_NO_KEY}`, `${name} has ${SPLIT_COUNT_KEY} but no ${SPLIT_NO_KEY}`);
  return info;
}

type Shard = ShardInfo & { file: GgufFile; source: ByteSource };

/** Names, tensor counts, tensor names and shared metadata must all say "the same set". */
function checkSameSet(shards: readonly Shard[]): void {
  const first = shards[0];
  const firstName = parseSplitName(first.source.name);
  const seen = new Map<string, string>();
  const total = shards.reduce((n, s) => n + s.file.tensors.length, 0);
  for (const s of shards) {
    const name = s.source.name;
    const parsed = parseSplitName(name);
    if (parsed && (parsed.index !== s.index || parsed.count !== s.count)) {
      throw splitError(`${name}: ${SPLIT_NO_KEY}`, `${name} holds shard ${s.index! + 1} of ${s.count}, which its name contradicts`);
    }
    if (parsed && firstName && parsed.prefix.replace(/^.*[/\\]/, '') !== firstName.prefix.replace(/^.*[/\\]/, '')) {
      throw splitError(`${name}: name`, `${name} is not named like ${first.source.name}: a shard from another set`);
    }
    if (s.tensorsCount !== undefined && s.tensorsCount !== first.tensorsCount) {
      throw splitError(`${name}: ${SPLIT_TENSORS_COUNT_KEY}`,
        `${name} says the set has ${s.tensorsCount} tensors, ${first.source.name} says ${first.tensorsCount}: a shard from another set`);
    }
    for (const kv of s.file.metadata.values()) {
      const mine = first.file.metadata.get(kv.key);
      if (s !== first && !kv.key.startsWith('split.') && mine && !sameValue(mine, kv)) {
        throw splitError(`${name}: ${kv.key}`, `${kv.key} differs between ${name} and ${first.source.name}: a shard from another set`);
      }
    }
    for (const t of s.file.tensors) {
      const other = seen.get(t.name);
      if (other !== undefined) throw splitError(`tensor ${quoteName(t.name)}`, `tensor ${quoteName(t.name)} is in both ${other} and ${name}`);
      seen.set(t.name, name);
    }
  }
  if (first.tensorsCount !== undefined && first.tensorsCount !== total) {
    throw splitError(SPLIT_TENSORS_COUNT_KEY, `${SPLIT_TENSORS_COUNT_KEY} is ${first.tensorsCount}, but the ${shards.length} shards hold ${total} tensors`);
  }
}

function sameValue(a: GgufKv, b: GgufKv): boolean {
  const text = (v: GgufValue) => JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
  return a.type === b.type && text(a.value) === text(b.value);
}

function mergeShards(shards: readonly Shard[]): GgufSet {
  const first = shards[0].file;
  const spacing = Math.max(...shards.map((s) => s.file.alignment));
  const placed: { file: GgufFile; source: ByteSource; base: number }[] = [];
  let end = 0;
  for (const s of shards) {
    const base = alignUp(end, spacing);
    placed.push({ file: s.file, source: s.source, base });
    end = base + s.source.size;
  }
  const tensors: GgufTensorInfo[] = placed.flatMap(({ file, base }) =>
    file.tensors.map((t) => ({ ...t, offset: base + file.dataOffset + t.offset - first.dataOffset })));
  const metadata = new Map([...first.metadata].filter(([key]) => !key.startsWith('split.')));
  const file: GgufFile = {
    version: first.version,
    // What every tensor's offset is a multiple of (shards after the first use the default unless they say otherwise).
    alignment: Math.min(...shards.map((s) => s.file.alignment)),
    metadata,
    tensors,
    dataOffset: first.dataOffset,
    fileBytes: end,
  };
  return { file, source: new ShardedSource(placed, end), shards: placed };
}

/** The shards end to end; a read may span shards and the zero gaps between them. */
class ShardedSource implements ByteSource {
  readonly name: string;

  constructor(private readonly shards: readonly { source: ByteSource; base: number }[], readonly size: number) {
    this.name = shards[0].source.name;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkReadRange(this.name, this.size, offset, length);
    const end = offset + length;
    const hits = this.shards.filter((s) => s.base < end && offset < s.base + s.source.size);
    if (hits.length === 1 && hits[0].base <= offset && end <= hits[0].base + hits[0].source.size) {
      return hits[0].source.read(offset - hits[0].base, length);
    }
    const out = new Uint8Array(length);
    await Promise.all(hits.map(async (s) => {
      const from = Math.max(offset, s.base);
      const to = Math.min(end, s.base + s.source.size);
      out.set(await s.source.read(from - s.base, to - from), from - offset);
    }));
    return out;
  }
}

function splitError(field: string, detail: string): GgufError {
  return new GgufError('BAD_SPLIT', field, NO_OFFSET, detail);
}
