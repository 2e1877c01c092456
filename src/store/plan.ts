/**
 * From a parsed GGUF header to the list of records an import writes, and
 * where each record's bytes come from in the file. Pure: no I/O, so every
 * layout decision is unit-tested on its own.
 *
 * Expert tensors (`blk.L.<name>_exps.<suffix>`) have the expert index as their
 * last, slowest dimension, so expert e's slice of a tensor of n bytes is the
 * contiguous range [e * n/E, (e+1) * n/E). A record holds one expert's slices
 * of all its layer's expert tensors, back to back (gate, up, down first).
 * Every other tensor goes into the shared stream: tensors in file order, each
 * starting at a multiple of SHARED_ALIGNMENT_BYTES, cut into fixed-size chunks.
 */

import { ARCHITECTURE_KEY } from '../gguf/metadata';
import { GgufValueType } from '../gguf/types';
import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import { ggmlTypeName } from '../quant/formats';
import { StoreError } from './errors';
import { RECORD_HASH_ALGORITHM } from './hash';
import {
  MANIFEST_FORMAT_VERSION, METADATA_KEY, encodeKv, encodeMetadata, expertKey, sharedChunkKey,
} from './manifest';
import type { ExpertLayer, ModelManifest, RecordEntry, TensorEntry } from './manifest';

export const SHARED_ALIGNMENT_BYTES = 32;
export const DEFAULT_SHARED_CHUNK_BYTES = 16 * 1024 * 1024;

/** A run of bytes copied from the file into a record. */
export interface Piece {
  /** Absolute offset in the GGUF file. */
  sourceOffset: number;
  length: number;
  /** Offset in the destination record. */
  recordOffset: number;
}

export interface SharedChunkPlan {
  index: number;
  key: string;
  bytes: number;
  pieces: Piece[];
}

export interface ExpertTensorPlan {
  name: string;
  /** Absolute offset of the whole tensor in the file. */
  sourceOffset: number;
  /** Bytes of one expert's slice. */
  sliceBytes: number;
  recordOffset: number;
}

export interface ExpertLayerPlan {
  layer: number;
  tensors: ExpertTensorPlan[];
  recordBytes: number;
}

export interface ImportPlan {
  /** The manifest as it will be committed, with state 'importing' and empty hashes. */
  manifest: ModelManifest;
  metadataBytes: Uint8Array<ArrayBuffer>;
  sharedChunks: SharedChunkPlan[];
  expertLayers: ExpertLayerPlan[];
}

export interface PlanOptions {
  modelId: string;
  sourceName: string;
  fingerprint: string;
  sharedChunkBytes?: number;
}

const EXPERT_TENSOR = /^blk\.(\d+)\.([A-Za-z0-9_]+_exps)(\.[A-Za-z0-9_]+)?$/;
/** Record order inside a layer: the FFN's gate, up and down first, then anything else by name. */
const PART_RANK: Record<string, number> = { ffn_gate_exps: 0, ffn_up_exps: 1, ffn_down_exps: 2, ffn_gate_up_exps: 3 };
const SUFFIX_RANK: Record<string, number> = { '.weight': 0, '.bias': 1 };

export function planImport(file: GgufFile, options: PlanOptions): ImportPlan {
  const architecture = stringValue(file, ARCHITECTURE_KEY) ?? 'unknown';
  const expertCount = expertCountOf(file, architecture);
  const expertTensors = file.tensors.filter((t) => EXPERT_TENSOR.test(t.name));
  if (expertTensors.length > 0 && expertCount === 0) {
    throw unsupported(options.modelId, `tensor ${expertTensors[0].name} looks like an expert tensor, but ${architecture}.expert_count is missing or 0`);
  }
  const expertNames = new Set(expertTensors.map((t) => t.name));
  const sharedTensors = file.tensors.filter((t) => !expertNames.has(t.name)).sort((a, b) => a.offset - b.offset);

  const tensorEntries = new Map<string, TensorEntry>();
  const { streamOffsets, streamBytes } = packSharedStream(sharedTensors);
  sharedTensors.forEach((t, i) => tensorEntries.set(t.name, tensorEntry(t, { kind: 'shared', streamOffset: streamOffsets[i] })));
  const chunkBytes = options.sharedChunkBytes ?? DEFAULT_SHARED_CHUNK_BYTES;
  const sharedChunks = cutSharedStream(file, sharedTensors, streamOffsets, streamBytes, chunkBytes);

  const expertLayers = planExpertLayers(file, expertTensors, expertCount, options.modelId);
  for (const layer of expertLayers) {
    layer.tensors.forEach((part, i) => {
      const info = expertTensors.find((t) => t.name === part.name)!;
      tensorEntries.set(info.name, tensorEntry(info, { kind: 'expert', layer: layer.layer, part: i }));
    });
  }

  const metadataBytes = encodeMetadata(file.metadata.values());
  const metadata = emptyRecord(METADATA_KEY, metadataBytes.byteLength);
  const chunks = sharedChunks.map((c) => emptyRecord(c.key, c.bytes));
  const layers: ExpertLayer[] = expertLayers.map((l) => ({
    layer: l.layer,
    parts: l.tensors.map((t) => ({ tensor: t.name, recordOffset: t.recordOffset, bytes: t.sliceBytes })),
    recordBytes: l.recordBytes,
    records: Array.from({ length: expertCount }, (_, e) => emptyRecord(expertKey(l.layer, e), l.recordBytes)),
  }));
  const storedBytes = metadata.bytes + streamBytes + layers.reduce((sum, l) => sum + l.recordBytes * expertCount, 0);
  const scalars = [...file.metadata.values()].filter((kv) => kv.type !== GgufValueType.ARRAY).map(encodeKv);

  const manifest: ModelManifest = {
    formatVersion: MANIFEST_FORMAT_VERSION,
    modelId: options.modelId,
    state: 'importing',
    recordHash: RECORD_HASH_ALGORITHM,
    source: { name: options.sourceName, fileBytes: file.fileBytes, fingerprint: options.fingerprint },
    architecture,
    name: stringValue(file, 'general.name'),
    ggufVersion: file.version,
    scalars,
    chatTemplate: stringValue(file, 'tokenizer.chat_template'),
    metadata,
    // File order, so the table reads like the GGUF's own.
    tensors: file.tensors.map((t) => tensorEntries.get(t.name)!),
    shared: { chunkBytes, streamBytes, alignment: SHARED_ALIGNMENT_BYTES, chunks },
    expertCount,
    expertLayers: layers,
    storedBytes,
  };
  return { manifest, metadataBytes, sharedChunks, expertLayers };
}

function emptyRecord(key: string, bytes: number): RecordEntry {
  return { key, bytes, hash: '' };
}

function tensorEntry(t: GgufTensorInfo, location: TensorEntry['location']): TensorEntry {
  return { name: t.name, dims: [...t.dims], type: t.type, typeName: ggmlTypeName(t.type), nBytes: t.nBytes, location };
}

function stringValue(file: GgufFile, key: string): string | undefined {
  const kv = file.metadata.get(key);
  return kv?.type === GgufValueType.STRING ? (kv.value as string) : undefined;
}

function expertCountOf(file: GgufFile, architecture: string): number {
  const value = file.metadata.get(`${architecture}.expert_count`)?.value;
  const count = typeof value === 'bigint' ? Number(value) : value;
  return typeof count === 'number' && Number.isSafeInteger(count) && count > 0 ? count : 0;
}

function unsupported(modelId: string, detail: string): StoreError {
  return new StoreError('UNSUPPORTED_MODEL', `${modelId}: ${detail}`, { modelId });
}

/** Offsets of the shared tensors (already in file order) in the packed stream. */
export function packSharedStream(tensors: readonly GgufTensorInfo[]): { streamOffsets: number[]; streamBytes: number } {
  let pos = 0;
  const streamOffsets = tensors.map((t) => {
    const at = alignUp(pos, SHARED_ALIGNMENT_BYTES);
    pos = at + t.nBytes;
    return at;
  });
  return { streamOffsets, streamBytes: pos };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Chunks of the shared stream, each with the file ranges that fill it (alignment gaps stay zero). */
export function cutSharedStream(
  file: GgufFile, tensors: readonly GgufTensorInfo[], streamOffsets: readonly number[], streamBytes: number, chunkBytes: number,
): SharedChunkPlan[] {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) throw new RangeError(`chunk size must be a positive integer, got ${chunkBytes}`);
  const chunks: SharedChunkPlan[] = [];
  let next = 0; // first tensor that may overlap the current chunk
  for (let start = 0, index = 0; start < streamBytes; start += chunkBytes, index++) {
    const end = Math.min(start + chunkBytes, streamBytes);
    const pieces: Piece[] = [];
    for (let i = next; i < tensors.length && streamOffsets[i] < end; i++) {
      const tensorEnd = streamOffsets[i] + tensors[i].nBytes;
      if (tensorEnd <= start) {
        next = i + 1;
        continue;
      }
      const from = Math.max(start, streamOffsets[i]);
      const to = Math.min(end, tensorEnd);
      if (to > from) {
        const sourceOffset = file.dataOffset + tensors[i].offset + (from - streamOffsets[i]);
        pieces.push({ sourceOffset, length: to - from, recordOffset: from - start });
      }
    }
    chunks.push({ index, key: sharedChunkKey(index), bytes: end - start, pieces });
  }
  return chunks;
}

function planExpertLayers(file: GgufFile, tensors: readonly GgufTensorInfo[], expertCount: number, modelId: string): ExpertLayerPlan[] {
  const byLayer = new Map<number, GgufTensorInfo[]>();
  for (const t of tensors) {
    const layer = Number(EXPERT_TENSOR.exec(t.name)![1]);
    const lastDim = t.dims[t.dims.length - 1];
    if (t.dims.length < 2 || lastDim !== expertCount) {
      throw unsupported(modelId, `expert tensor ${t.name} has dims [${t.dims.join(', ')}]; its last dimension must be the expert count ${expertCount}`);
    }
    if (t.nBytes % expertCount !== 0) {
      throw unsupported(modelId, `expert tensor ${t.name} (${t.nBytes} bytes) does not split into ${expertCount} equal slices`);
    }
    byLayer.set(layer, [...(byLayer.get(layer) ?? []), t]);
  }
  return [...byLayer.entries()]
    .sort(([a], [b]) => a - b)
    .map(([layer, layerTensors]) => {
      let recordOffset = 0;
      const parts = [...layerTensors].sort(comparePartOrder).map((t) => {
        const part = { name: t.name, sourceOffset: file.dataOffset + t.offset, sliceBytes: t.nBytes / expertCount, recordOffset };
        recordOffset += part.sliceBytes;
        return part;
      });
      return { layer, tensors: parts, recordBytes: recordOffset };
    });
}

function comparePartOrder(a: GgufTensorInfo, b: GgufTensorInfo): number {
  const [, , baseA, suffixA = ''] = EXPERT_TENSOR.exec(a.name)!;
  const [, , baseB, suffixB = ''] = EXPERT_TENSOR.exec(b.name)!;
  const rank = (PART_RANK[baseA] ?? 10) - (PART_RANK[baseB] ?? 10);
  if (rank !== 0) return rank;
  if (baseA !== baseB) return baseA < baseB ? -1 : 1;
  const suffixRank = (SUFFIX_RANK[suffixA] ?? 10) - (SUFFIX_RANK[suffixB] ?? 10);
  if (suffixRank !== 0) return suffixRank;
  return suffixA < suffixB ? -1 : suffixA > suffixB ? 1 : 0;
}
