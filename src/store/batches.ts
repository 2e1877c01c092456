/**
 * How an import reads the source: pending records grouped into write
 * batches of about a target size, each loaded with as few source reads as
 * possible (one per expert tensor for a run of experts; one per group of
 * nearby pieces for shared chunks), which matters most for URL sources where
 * every read is an HTTP request.
 */

import type { ByteSource } from '../gguf/source';
import { expertKey } from './manifest';
import type { ExpertLayerPlan, ImportPlan, Piece, SharedChunkPlan } from './plan';

export interface Batch {
  keys: string[];
  bytes: number;
  /** The records' bytes, in the order of `keys`. */
  load: (source: ByteSource) => Promise<Uint8Array[]>;
}

/** Shared pieces closer than this in the file are fetched in one read. */
export const COALESCE_GAP_BYTES = 64 * 1024;

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/** The pending records grouped into batches of about `batchBytes` (at least one record each), in import order. */
export function makeBatches(plan: ImportPlan, pending: ReadonlySet<string>, batchBytes: number): Batch[] {
  const batches: Batch[] = [];
  const metadataKey = plan.manifest.metadata.key;
  if (pending.has(metadataKey)) {
    const bytes = plan.metadataBytes;
    batches.push({ keys: [metadataKey], bytes: bytes.byteLength, load: async () => [bytes] });
  }
  for (const group of groupBySize(plan.sharedChunks.filter((c) => pending.has(c.key)), batchBytes)) {
    batches.push({
      keys: group.map((c) => c.key),
      bytes: sum(group.map((c) => c.bytes)),
      load: (source) => Promise.all(group.map((c) => assemble(source, c.bytes, c.pieces))),
    });
  }
  for (const layer of plan.expertLayers) {
    const perBatch = Math.max(1, Math.floor(batchBytes / Math.max(1, layer.recordBytes)));
    const isPending = (e: number) => pending.has(expertKey(layer.layer, e));
    for (const run of pendingRuns(plan.manifest.expertCount, isPending, perBatch)) {
      batches.push({
        keys: run.map((e) => expertKey(layer.layer, e)),
        bytes: run.length * layer.recordBytes,
        load: (source) => loadExpertRun(source, layer, run[0], run.length),
      });
    }
  }
  return batches;
}

function groupBySize(chunks: readonly SharedChunkPlan[], batchBytes: number): SharedChunkPlan[][] {
  const groups: SharedChunkPlan[][] = [];
  let group: SharedChunkPlan[] = [];
  let groupBytes = 0;
  for (const chunk of chunks) {
    if (group.length > 0 && groupBytes + chunk.bytes > batchBytes) {
      groups.push(group);
      group = [];
      groupBytes = 0;
    }
    group.push(chunk);
    groupBytes += chunk.bytes;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** Runs of consecutive pending indices in [0, count), each at most `maxLength` long. */
export function pendingRuns(count: number, isPending: (index: number) => boolean, maxLength: number): number[][] {
  const runs: number[][] = [];
  let run: number[] = [];
  for (let i = 0; i < count; i++) {
    const pending = isPending(i);
    if (run.length > 0 && (!pending || run.length === maxLength)) {
      runs.push(run);
      run = [];
    }
    if (pending) run.push(i);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * Records of experts [first, first + count) of a layer: one read per expert
 * tensor (those experts' slices are adjacent in it), copied into the records
 * as it arrives, so at most one tensor's read is held besides the records.
 */
async function loadExpertRun(source: ByteSource, layer: ExpertLayerPlan, first: number, count: number): Promise<Uint8Array[]> {
  const records = Array.from({ length: count }, () => new Uint8Array(layer.recordBytes));
  for (const part of layer.tensors) {
    const slices = await source.read(part.sourceOffset + first * part.sliceBytes, count * part.sliceBytes);
    records.forEach((record, i) => record.set(slices.subarray(i * part.sliceBytes, (i + 1) * part.sliceBytes), part.recordOffset));
  }
  return records;
}

/** A shared chunk from its pieces (alignment gaps stay zero). */
async function assemble(source: ByteSource, bytes: number, pieces: readonly Piece[]): Promise<Uint8Array> {
  const out = new Uint8Array(bytes);
  for (const group of coalescePieces(pieces, COALESCE_GAP_BYTES)) {
    const start = group[0].sourceOffset;
    const last = group[group.length - 1];
    const span = await source.read(start, last.sourceOffset + last.length - start);
    for (const p of group) out.set(span.subarray(p.sourceOffset - start, p.sourceOffset - start + p.length), p.recordOffset);
  }
  return out;
}

/** Groups pieces (in file order) whose gaps in the file are at most `maxGapBytes`. */
export function coalescePieces(pieces: readonly Piece[], maxGapBytes: number): Piece[][] {
  const groups: Piece[][] = [];
  for (const piece of pieces) {
    const group = groups[groups.length - 1];
    const previous = group?.[group.length - 1];
    const gap = previous === undefined ? -1 : piece.sourceOffset - (previous.sourceOffset + previous.length);
    if (group !== undefined && gap >= 0 && gap <= maxGapBytes) group.push(piece);
    else groups.push([piece]);
  }
  return groups;
}

/** Runs `consume` on each loaded item in order while the next item loads (at most two in memory). */
export async function forEachPrefetched<T>(
  loads: readonly (() => Promise<T>)[],
  consume: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = loads.length > 0 ? loads[0]() : undefined;
  for (let i = 0; i < loads.length; i++) {
    const current = next!;
    next = i + 1 < loads.length ? loads[i + 1]() : undefined;
    // A failed prefetch surfaces when its turn comes, or never if we stop first.
    next?.catch(() => undefined);
    await consume(await current, i);
  }
}
