/**
 * The import pipeline: GGUF → manifest + metadata record + shared chunks +
 * one record per (layer, expert), streamed from any ByteSource (or from the
 * shards of a split set, read as one file: see gguf/split.ts).
 *
 * Order of writes, which is what makes it resumable and atomic:
 *   1. read and check the header (a bad file throws the reader's GgufError; nothing written)
 *   2. check the space needed against what the backend reports (QUOTA_EXCEEDED; nothing written)
 *   3. the manifest with state 'importing' (the plan: record keys and sizes)
 *   4. records in batches; each batch ends with a journal record holding its
 *      hashes, in the same backend call, so a record counts as done only once
 *      its hash is on record too
 *   5. read every record back and check its hash (option `verify`)
 *   6. the manifest with state 'complete', written durably: only now is the model usable
 * An import of the same file under the same id resumes: records that are
 * present and journaled are kept, everything else is (re)written.
 * Imports of one model id run one at a time across tabs and workers (see
 * lock.ts): a second one waits, then finds the model complete or resumes it.
 * A model deleted while it is being imported (by another tab) stops the
 * import with MODEL_NOT_FOUND before the next batch or the commit, so a
 * deletion is never undone by a late commit of a model missing its records.
 * Memory stays bounded by about two batches: the next batch is read from the
 * source while the current one is written.
 */

import type { ReadGgufOptions } from '../gguf/reader';
import type { ByteSource } from '../gguf/source';
import type { GgufFile } from '../gguf/types';
import { readGgufSet, splitBaseName } from '../gguf/split';
import type { GgufSet } from '../gguf/split';
import type { RecordWrite, StoreBackend } from './backend';
import { forEachPrefetched, makeBatches } from './batches';
import type { Batch } from './batches';
import { StoreError, corruptRecordError, formatBytes, storageCall } from './errors';
import { recordHash, sha256Hex } from './hash';
import { finishedRecords, journalRecord, removeJournals } from './journal';
import { importLockName, withLock } from './lock';
import { manifestRecords } from './manifest';
import type { ModelManifest, RecordEntry } from './manifest';
import { checkModelId, modelIdFromName } from './model-id';
import { planImport } from './plan';
import type { ImportPlan } from './plan';

export interface ImportProgress {
  modelId: string;
  /** 'writing' counts records written (or found from an earlier run); 'verifying' counts records read back. */
  phase: 'writing' | 'verifying' | 'complete';
  bytesDone: number;
  bytesTotal: number;
  recordsDone: number;
  recordsTotal: number;
}

export interface ImportOptions {
  /** Default: derived from the source's name (file name or last URL segment). */
  modelId?: string;
  onProgress?: (progress: ImportProgress) => void;
  /** Stops between batches; what was written stays and the next import resumes. */
  signal?: AbortSignal;
  /** Target bytes per write batch (at least one record). Default 16 MiB. */
  batchBytes?: number;
  /** Size of the shared-tensor chunks. Default 16 MiB. */
  sharedChunkBytes?: number;
  /**
   * Which records to read back and check before the commit: 'all' (default),
   * 'resumed' (only those an earlier, interrupted import wrote) or 'none'.
   */
  verify?: 'all' | 'resumed' | 'none';
  /** Replace a different model already stored under the same id (default: MODEL_EXISTS). */
  replace?: boolean;
  /** Limits for the GGUF header reader. */
  readOptions?: ReadGgufOptions;
  /** Called with the model's header before anything is written; throws to refuse the model. */
  accept?: (file: GgufFile) => void;
}

export interface ImportResult {
  manifest: ModelManifest;
  /** The same file was already fully imported; nothing was written. */
  alreadyComplete: boolean;
  /** Records kept from an earlier, interrupted import. */
  recordsResumed: number;
  /** Their bytes: what resuming saved from reading and writing again. */
  bytesResumed: number;
  recordsWritten: number;
  bytesWritten: number;
  /** Whether the platform granted persistent storage. */
  persisted: boolean;
}

const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;
const FINGERPRINT_SAMPLE_BYTES = 64 * 1024;
/** Allowance for the manifest and journals in the space check. */
const BOOKKEEPING_BYTES = 1024 * 1024;

/** Imports a GGUF file, or the shards of a split set (any order), as one model. */
export async function importModel(backend: StoreBackend, input: ByteSource | readonly ByteSource[], options: ImportOptions = {}): Promise<ImportResult> {
  const set = await readGgufSet('read' in input ? [input] : input, options.readOptions);
  const { file, source } = set;
  options.accept?.(file);
  const modelId = options.modelId ?? modelIdFromName(splitBaseName(source.name));
  checkModelId(modelId);
  const fingerprint = await fingerprintSource(set);
  const plan = planImport(file, { modelId, sourceName: source.name, fingerprint, sharedChunkBytes: options.sharedChunkBytes });
  options.signal?.throwIfAborted();
  return withLock(importLockName(modelId), () => importLocked(backend, source, plan, options), options.signal);
}

/** The import proper, run holding the model's import lock. */
async function importLocked(backend: StoreBackend, source: ByteSource, plan: ImportPlan, options: ImportOptions): Promise<ImportResult> {
  const { modelId } = plan.manifest;
  const existing = await storageCall(modelId, 'reading the manifest', () => backend.getManifest(modelId));
  const resuming = existing !== undefined && sameLayout(existing, plan.manifest);
  if (resuming && existing.state === 'complete') {
    const done = recordTotals(existing);
    options.onProgress?.({ modelId, phase: 'complete', bytesDone: done.bytes, bytesTotal: done.bytes, recordsDone: done.count, recordsTotal: done.count });
    return { manifest: existing, alreadyComplete: true, recordsResumed: 0, bytesResumed: 0, recordsWritten: 0, bytesWritten: 0, persisted: false };
  }
  if (existing?.state === 'complete' && !options.replace) {
    throw new StoreError('MODEL_EXISTS',
      `a different file (${existing.source.name}) is already stored as ${modelId}; delete it, choose another id, or import with replace`, { modelId });
  }

  const records = manifestRecords(plan.manifest);
  const done = resuming ? await finishedRecords(backend, modelId, records) : { hashes: new Map<string, string>(), nextJournal: 0 };
  const pending = records.filter((r) => !done.hashes.has(r.key));
  const neededBytes = sum(pending.map((r) => r.bytes)) + BOOKKEEPING_BYTES;
  const available = await backend.availableBytes();
  if (available !== undefined && neededBytes > available) {
    throw new StoreError('QUOTA_EXCEEDED',
      `${modelId} needs ${formatBytes(neededBytes)} more storage, but only ${formatBytes(available)} is available; free space (or delete models) and import again`,
      { modelId, neededBytes, availableBytes: available });
  }
  const persisted = await backend.requestPersistence().catch(() => false);

  if (!resuming) {
    // Also when no manifest is stored: records of an import whose model was deleted under it may be left.
    await storageCall(modelId, 'deleting the previous import', () => backend.deleteModel(modelId));
    await storageCall(modelId, 'writing the manifest', () => backend.putManifest(plan.manifest, { durable: false }));
  }

  const totals = recordTotals(plan.manifest);
  const progress = { modelId, phase: 'writing' as const, bytesDone: totals.bytes - sum(pending.map((r) => r.bytes)),
    bytesTotal: totals.bytes, recordsDone: records.length - pending.length, recordsTotal: records.length };
  options.onProgress?.({ ...progress });

  const resumedKeys = new Set(done.hashes.keys());
  const hashes = done.hashes;
  const batches = makeBatches(plan, new Set(pending.map((r) => r.key)), options.batchBytes ?? DEFAULT_BATCH_BYTES);
  let journal = done.nextJournal;
  await forEachPrefetched(batches.map((b) => () => loadAndHash(source, b)), async (loaded, i) => {
    options.signal?.throwIfAborted();
    await checkNotDeleted(backend, plan.manifest);
    const writes: RecordWrite[] = loaded.map((r) => ({ key: r.key, bytes: r.bytes }));
    writes.push(journalRecord(journal++, loaded));
    const remainingBytes = progress.bytesTotal - progress.bytesDone;
    await storageCall(modelId, `writing ${batches[i].keys[0]}…`, () => backend.putRecords(modelId, writes), (cause) => quotaError(backend, modelId, remainingBytes, sum(writes.map((w) => w.bytes.byteLength)), cause));
    for (const r of loaded) hashes.set(r.key, r.hash);
    progress.bytesDone += batches[i].bytes;
    progress.recordsDone += loaded.length;
    options.onProgress?.({ ...progress });
  });

  const verify = options.verify ?? 'all';
  const toVerify = verify === 'all' ? records : verify === 'resumed' ? records.filter((r) => resumedKeys.has(r.key)) : [];
  await verifyRecords(backend, plan.manifest, toVerify, hashes, options);

  const manifest: ModelManifest = commitManifest(plan.manifest, hashes);
  await checkNotDeleted(backend, plan.manifest);
  await storageCall(modelId, 'committing the manifest', () => backend.putManifest(manifest, { durable: true }));
  await removeJournals(backend, modelId);
  options.onProgress?.({ ...progress, phase: 'complete' });
  return {
    manifest, alreadyComplete: false, recordsResumed: resumedKeys.size,
    bytesResumed: sum(records.filter((r) => resumedKeys.has(r.key)).map((r) => r.bytes)),
    recordsWritten: pending.length, bytesWritten: sum(pending.map((r) => r.bytes)), persisted,
  };
}

interface LoadedRecord {
  key: string;
  bytes: Uint8Array;
  hash: string;
}

async function loadAndHash(source: ByteSource, batch: Batch): Promise<LoadedRecord[]> {
  const buffers = await batch.load(source);
  return buffers.map((bytes, i) => ({ key: batch.keys[i], bytes, hash: recordHash(bytes) }));
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function recordTotals(manifest: ModelManifest): { bytes: number; count: number } {
  const records = manifestRecords(manifest);
  return { bytes: sum(records.map((r) => r.bytes)), count: records.length };
}

/** Same file and same record layout: the records of one may stand in for the other's. */
function sameLayout(a: ModelManifest, b: ModelManifest): boolean {
  // The source's name may differ (a File now, a URL before): the fingerprint decides.
  const layout = (m: ModelManifest) => JSON.stringify({ ...m, state: '', completedAt: '', source: { ...m.source, name: '' },
    metadata: { ...m.metadata, hash: '' },
    shared: { ...m.shared, chunks: m.shared.chunks.map((c) => ({ ...c, hash: '' })) },
    expertLayers: m.expertLayers.map((l) => ({ ...l, records: l.records.map((r) => ({ ...r, hash: '' })) })),
  });
  return layout(a) === layout(b);
}

function commitManifest(plan: ModelManifest, hashes: ReadonlyMap<string, string>): ModelManifest {
  const hashed = (r: RecordEntry): RecordEntry => ({ ...r, hash: hashes.get(r.key)! });
  return {
    ...plan,
    state: 'complete',
    completedAt: new Date().toISOString(),
    metadata: hashed(plan.metadata),
    shared: { ...plan.shared, chunks: plan.shared.chunks.map(hashed) },
    expertLayers: plan.expertLayers.map((l) => ({ ...l, records: l.records.map(hashed) })),
  };
}

/**
 * SHA-256 over the file size, the whole header (of every shard of a split
 * set) and three samples of the data (start, middle, end): cheap, and a
 * different file of the same shape (another fine-tune, another quantization)
 * almost surely differs in the samples.
 */
async function fingerprintSource({ file, source, shards }: GgufSet): Promise<string> {
  const dataBytes = file.fileBytes - file.dataOffset;
  const sampleBytes = Math.min(FINGERPRINT_SAMPLE_BYTES, dataBytes);
  const sampleOffsets = [0, Math.floor((dataBytes - sampleBytes) / 2), dataBytes - sampleBytes].map((o) => file.dataOffset + o);
  const parts: Uint8Array[] = [new TextEncoder().encode(`${file.fileBytes}\n`)];
  for (const shard of shards) parts.push(await source.read(shard.base, shard.file.dataOffset));
  for (const offset of sampleOffsets) parts.push(await source.read(offset, sampleBytes));
  return sha256Hex(concat(parts));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(sum(parts.map((p) => p.byteLength)));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------- verification and errors

async function verifyRecords(backend: StoreBackend, plan: ModelManifest, records: readonly RecordEntry[],
  hashes: ReadonlyMap<string, string>, options: ImportOptions): Promise<void> {
  const { modelId } = plan;
  const progress = { modelId, phase: 'verifying' as const, bytesDone: 0, bytesTotal: sum(records.map((r) => r.bytes)),
    recordsDone: 0, recordsTotal: records.length };
  if (records.length > 0) options.onProgress?.({ ...progress });
  // The next record is read while this one is hashed.
  const reads = records.map((r) => () => storageCall(modelId, `reading ${r.key}`, () => backend.getRecord(modelId, r.key)));
  await forEachPrefetched(reads, async (bytes, i) => {
    options.signal?.throwIfAborted();
    const record = records[i];
    const problem = bytes === undefined ? 'is missing'
      : bytes.byteLength !== record.bytes ? `has ${bytes.byteLength} bytes, expected ${record.bytes}`
        : recordHash(bytes) !== hashes.get(record.key) ? 'does not match its hash' : undefined;
    if (problem !== undefined) {
      // A record gone because another tab deleted the model is no damage: say what happened.
      if (bytes === undefined) await checkNotDeleted(backend, plan);
      // Drop it so that the next import writes it again.
      await backend.deleteRecords(modelId, [record.key]).catch(() => undefined);
      throw corruptRecordError(modelId, record.key, `read back after writing, ${record.key} ${problem}; import again to rewrite it`);
    }
    progress.bytesDone += record.bytes;
    progress.recordsDone++;
    options.onProgress?.({ ...progress });
  });
}

/**
 * Throws MODEL_NOT_FOUND when the manifest this import wrote is gone (another
 * tab or worker deleted the model) or was replaced by another file's, after
 * removing what this import wrote since: deletions do not take the import
 * lock, so an import notices them here, between batches and before the commit.
 */
async function checkNotDeleted(backend: StoreBackend, plan: ModelManifest): Promise<void> {
  const { modelId } = plan;
  const stored = await storageCall(modelId, 'reading the manifest', () => backend.getManifest(modelId));
  if (stored !== undefined && stored.state === 'importing' && stored.source.fingerprint === plan.source.fingerprint) return;
  if (stored === undefined) await backend.deleteModel(modelId).catch(() => undefined);
  throw new StoreError('MODEL_NOT_FOUND', `${modelId} was deleted (by another tab or worker) while it was being imported; import it again to store it`, { modelId });
}

/**
 * QUOTA_EXCEEDED for a write that did not fit. Less than that write's size
 * was free, whatever the storage estimate says: estimates can be far off
 * (Chromium's ignores a quota set through DevTools and pads its figures), so
 * the estimate is reported only when it is below that bound.
 */
async function quotaError(backend: StoreBackend, modelId: string, remainingBytes: number, failedWriteBytes: number, cause: unknown): Promise<StoreError> {
  const estimate = await backend.availableBytes().catch(() => undefined);
  const believable = estimate !== undefined && estimate < failedWriteBytes;
  const available = believable ? estimate : failedWriteBytes;
  const availableText = believable ? `${formatBytes(available)} available`
    : `less than ${formatBytes(failedWriteBytes)} available (a write of that size did not fit${estimate === undefined ? '' : `; the storage estimate said ${formatBytes(estimate)}`})`;
  return new StoreError('QUOTA_EXCEEDED',
    `storage ran out while importing ${modelId}: ${formatBytes(remainingBytes)} still to write, ${availableText}; free space and import again to resume`,
    { modelId, neededBytes: remainingBytes, availableBytes: available, cause });
}
