/**
 * What the store keeps about a model besides the weight bytes: the manifest
 * (one small JSON-compatible object per model) and the codec that turns GGUF
 * metadata into JSON and back without losing a bit (64-bit integers as
 * decimal strings, non-finite floats by name, arrays with their item type).
 *
 * Layout of a stored model:
 *   manifest              this file's ModelManifest; `state` says whether it is usable
 *   record "metadata"     every GGUF metadata pair (tokenizer arrays included) as UTF-8 JSON
 *   records "shared.N"    the non-expert tensors, packed in file order into a byte stream cut into chunks
 *   records "expert.L.E"  expert E of layer L: the slices of that layer's expert tensors, contiguous
 *   records "journal.N"   import bookkeeping (hashes of finished records), removed at commit
 * The full metadata sits in its own record so that listing models reads
 * small manifests, not megabytes of tokenizer arrays.
 */

import { GgufValueType } from '../gguf/types';
import type { GgufKv, GgufValue } from '../gguf/types';
import type { RECORD_HASH_ALGORITHM } from './hash';

export const MANIFEST_FORMAT_VERSION = 1;

/** A metadata value as JSON: bigints as decimal strings, NaN/Infinity as strings, arrays with their item type. */
export type StoredValue = number | string | boolean | StoredArray;
export interface StoredArray {
  itemType: number;
  items: StoredValue[];
}
export interface StoredKv {
  key: string;
  type: number;
  value: StoredValue;
}

/** One stored record: its key, exact size and hash (see hash.ts; empty until the import has hashed it). */
export interface RecordEntry {
  key: string;
  bytes: number;
  hash: string;
}

/** Where a tensor's bytes are: a range of the shared stream, or one slice per expert record. */
export type TensorLocation =
  | { kind: 'shared'; streamOffset: number }
  | { kind: 'expert'; layer: number; part: number };

export interface TensorEntry {
  name: string;
  /** ggml order, as in the GGUF file. */
  dims: number[];
  /** GGML type id. */
  type: number;
  typeName: string;
  nBytes: number;
  location: TensorLocation;
}

/** One expert tensor's slice inside every expert record of its layer. */
export interface ExpertPart {
  tensor: string;
  /** Offset of the slice inside the record. */
  recordOffset: number;
  /** Bytes of one expert's slice (the tensor's bytes / expert count). */
  bytes: number;
}

export interface ExpertLayer {
  layer: number;
  /** Slices in record order (gate, up, down first). */
  parts: ExpertPart[];
  /** Bytes of each record of this layer. */
  recordBytes: number;
  /** Records of experts 0..expertCount-1. */
  records: RecordEntry[];
}

export type ImportState = 'importing' | 'complete';

export interface ModelManifest {
  formatVersion: typeof MANIFEST_FORMAT_VERSION;
  modelId: string;
  /** Only 'complete' models are usable; 'importing' ones resume on the next import. */
  state: ImportState;
  /** Algorithm of the records' `hash` fields. */
  recordHash: typeof RECORD_HASH_ALGORITHM;
  source: {
    name: string;
    fileBytes: number;
    /** SHA-256 over the file size, the header and samples of the data: decides whether an import may resume. */
    fingerprint: string;
  };
  /** ISO time of the commit; absent while importing. */
  completedAt?: string;
  architecture: string;
  /** `general.name`, when the file has one. */
  name?: string;
  ggufVersion: number;
  /** Every metadata pair that is not an array: hyper-parameters, tokenizer scalars, chat template. */
  scalars: StoredKv[];
  /** `tokenizer.chat_template`, when present (also among the scalars). */
  chatTemplate?: string;
  /** All metadata including arrays (tokenizer vocabulary, merges, scores). */
  metadata: RecordEntry;
  tensors: TensorEntry[];
  shared: {
    /** Size of every chunk but the last. */
    chunkBytes: number;
    /** Bytes of the packed stream of shared tensors. */
    streamBytes: number;
    /** Alignment of each tensor's start inside the stream. */
    alignment: number;
    chunks: RecordEntry[];
  };
  /** `<arch>.expert_count`; 0 for a model without experts. */
  expertCount: number;
  expertLayers: ExpertLayer[];
  /** Sum of all record sizes: what the model takes in the store. */
  storedBytes: number;
}

/** Every record of a manifest, in import order (metadata, shared chunks, experts layer by layer). */
export function manifestRecords(manifest: ModelManifest): RecordEntry[] {
  return [manifest.metadata, ...manifest.shared.chunks, ...manifest.expertLayers.flatMap((l) => l.records)];
}

export const METADATA_KEY = 'metadata';
export const sharedChunkKey = (index: number): string => `shared.${index}`;
export const expertKey = (layer: number, expert: number): string => `expert.${layer}.${expert}`;
export const JOURNAL_PREFIX = 'journal.';

// ---------------------------------------------------------------- metadata codec

const BIGINT_TYPES = new Set<number>([GgufValueType.UINT64, GgufValueType.INT64]);
const FLOAT_TYPES = new Set<number>([GgufValueType.FLOAT32, GgufValueType.FLOAT64]);

export function encodeValue(type: number, value: GgufValue): StoredValue {
  if (type === GgufValueType.ARRAY) {
    const array = value as { itemType: number; items: readonly GgufValue[] };
    return { itemType: array.itemType, items: array.items.map((item) => encodeValue(array.itemType, item)) };
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value as number | string | boolean;
}

export function decodeValue(type: number, value: StoredValue): GgufValue {
  if (type === GgufValueType.ARRAY) {
    const array = value as StoredArray;
    return { itemType: array.itemType, items: array.items.map((item) => decodeValue(array.itemType, item)) };
  }
  if (BIGINT_TYPES.has(type)) return BigInt(value as string | number);
  if (FLOAT_TYPES.has(type) && typeof value === 'string') return Number(value);
  return value as number | string | boolean;
}

export const encodeKv = (kv: GgufKv): StoredKv => ({ key: kv.key, type: kv.type, value: encodeValue(kv.type, kv.value) });
export const decodeKv = (kv: StoredKv): GgufKv => ({ key: kv.key, type: kv.type, value: decodeValue(kv.type, kv.value) });

/** All metadata as UTF-8 JSON (the "metadata" record). */
export function encodeMetadata(metadata: Iterable<GgufKv>): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify([...metadata].map(encodeKv)));
}

/** The "metadata" record back as a map in file order, like GgufFile.metadata. */
export function decodeMetadata(bytes: Uint8Array): Map<string, GgufKv> {
  const stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredKv[];
  return new Map(stored.map((kv) => [kv.key, decodeKv(kv)]));
}

/** The value of a scalar metadata key from the manifest, or undefined. */
export function manifestScalar(manifest: ModelManifest, key: string): GgufValue | undefined {
  const kv = manifest.scalars.find((s) => s.key === key);
  return kv === undefined ? undefined : decodeValue(kv.type, kv.value);
}
