/**
 * Store operations that the store-faults page (store-page.ts) runs in the page
 * and its worker (store-worker.ts) runs in a dedicated worker, so that a test
 * can interrupt an import by closing the tab or by terminating the worker.
 * Everything goes through the store's public API; results are plain data
 * (they cross page.evaluate and postMessage).
 */
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBlob, sourceFromBytes } from '../../src/gguf/source';
import type { ByteSource } from '../../src/gguf/source';
import { StoreError } from '../../src/store/errors';
import { deleteIndexedDbDatabase, openIndexedDbWeightStore } from '../../src/store/idb';
import type { ImportProgress } from '../../src/store/import';
import { createWeightStore } from '../../src/store/weight-store';
import type { ModelSummary, WeightStore } from '../../src/store/weight-store';
import type { StoreBackend } from '../../src/store/backend';

export interface FaultImport {
  /** A GGUF file on this origin. */
  url: string;
  modelId: string;
  databaseName: string;
  /** Small batches give the test many points to interrupt at. Every run of one model must use the same layout options. */
  batchBytes: number;
  sharedChunkBytes: number;
  /** Delay before every source read: a slow download, so another tab can watch the import. */
  readDelayMs?: number;
  /** Delay before every record read from the store: a slow disk, so that a test can interrupt the verification. */
  storeReadDelayMs?: number;
}

export interface ErrorFacts {
  name: string;
  code?: string;
  message: string;
  neededBytes?: number;
  availableBytes?: number;
  /** A WebMoeError's details.sourceCode: the store's own code behind it. */
  sourceCode?: string;
}

export interface ImportOutcome {
  result?: {
    alreadyComplete: boolean;
    recordsResumed: number;
    bytesResumed: number;
    recordsWritten: number;
    bytesWritten: number;
    state: string;
  };
  error?: ErrorFacts;
  /** Bytes this run read from the GGUF (header, fingerprint samples and the records it wrote). */
  sourceBytesRead: number;
  /** The first 'writing' progress event: its bytesDone is what an earlier run left that this one kept. */
  firstWriting?: ImportProgress;
  lastProgress?: ImportProgress;
  ms: number;
}

export interface FileCheck {
  tensors: number;
  bytesCompared: number;
  /** Tensors whose bytes read back through the store differ from the file's. */
  mismatched: string[];
  metadataKeys: number;
  fileMetadataKeys: number;
  /** CORRUPT_RECORD messages from StoredModel.verify (hash of every record). */
  problems: string[];
}

const stores = new Map<string, WeightStore>();
const files = new Map<string, Promise<Blob>>();

/** The same backend with every record read delayed. */
function slowReads(inner: StoreBackend, delayMs: number): StoreBackend {
  return {
    description: inner.description,
    putRecords: (modelId, records) => inner.putRecords(modelId, records),
    getRecord: async (modelId, key) => {
      await new Promise((r) => setTimeout(r, delayMs));
      return inner.getRecord(modelId, key);
    },
    listRecordKeys: (modelId) => inner.listRecordKeys(modelId),
    deleteRecords: (modelId, keys) => inner.deleteRecords(modelId, keys),
    putManifest: (manifest, options) => inner.putManifest(manifest, options),
    getManifest: (modelId) => inner.getManifest(modelId),
    listManifests: () => inner.listManifests(),
    deleteModel: (modelId) => inner.deleteModel(modelId),
    availableBytes: () => inner.availableBytes(),
    requestPersistence: () => inner.requestPersistence(),
  };
}

/** One store per database, kept open as an application would keep it. */
export function storeOf(databaseName: string): WeightStore {
  let store = stores.get(databaseName);
  if (store === undefined) {
    store = openIndexedDbWeightStore({ databaseName });
    stores.set(databaseName, store);
  }
  return store;
}

export function fileBlob(url: string): Promise<Blob> {
  let blob = files.get(url);
  if (blob === undefined) {
    blob = fetch(url).then((r) => {
      if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
      return r.blob();
    });
    files.set(url, blob);
  }
  return blob;
}

export function errorFacts(error: unknown): ErrorFacts {
  if (!(error instanceof Error)) return { name: 'unknown', message: String(error) };
  const e = error as Error & { code?: unknown; details?: Record<string, unknown> };
  const facts: ErrorFacts = { name: e.name, message: e.message, code: typeof e.code === 'string' ? e.code : undefined };
  if (error instanceof StoreError) {
    facts.neededBytes = error.neededBytes;
    facts.availableBytes = error.availableBytes;
  }
  if (e.details) {
    if (typeof e.details.sourceCode === 'string') facts.sourceCode = e.details.sourceCode;
    if (typeof e.details.neededBytes === 'number') facts.neededBytes = e.details.neededBytes;
    if (typeof e.details.availableBytes === 'number') facts.availableBytes = e.details.availableBytes;
  }
  return facts;
}

/** The source as the import sees it, counting (and optionally slowing) its reads. */
function meteredSource(inner: ByteSource, delayMs: number, counter: { bytes: number }): ByteSource {
  return {
    name: inner.name,
    size: inner.size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      counter.bytes += length;
      return inner.read(offset, length);
    },
  };
}

/** Imports (or resumes) a model; failures come back as facts, not exceptions. */
export async function runImport(o: FaultImport, onProgress: (p: ImportProgress, sourceBytesRead: number) => void): Promise<ImportOutcome> {
  const started = performance.now();
  const counter = { bytes: 0 };
  const outcome: ImportOutcome = { sourceBytesRead: 0, ms: 0 };
  try {
    const source = meteredSource(sourceFromBlob(await fileBlob(o.url)), o.readDelayMs ?? 0, counter);
    const store = o.storeReadDelayMs ? createWeightStore(slowReads(storeOf(o.databaseName).backend, o.storeReadDelayMs)) : storeOf(o.databaseName);
    const result = await store.importModel(source, {
      modelId: o.modelId,
      batchBytes: o.batchBytes,
      sharedChunkBytes: o.sharedChunkBytes,
      onProgress: (p) => {
        if (p.phase === 'writing' && outcome.firstWriting === undefined) outcome.firstWriting = { ...p };
        outcome.lastProgress = { ...p };
        onProgress(p, counter.bytes);
      },
    });
    outcome.result = {
      alreadyComplete: result.alreadyComplete,
      recordsResumed: result.recordsResumed,
      bytesResumed: result.bytesResumed,
      recordsWritten: result.recordsWritten,
      bytesWritten: result.bytesWritten,
      state: result.manifest.state,
    };
  } catch (error) {
    outcome.error = errorFacts(error);
  }
  outcome.sourceBytesRead = counter.bytes;
  outcome.ms = performance.now() - started;
  return outcome;
}

export function listModels(databaseName: string): Promise<ModelSummary[]> {
  return storeOf(databaseName).listModels();
}

export async function deleteModel(databaseName: string, modelId: string): Promise<boolean> {
  return storeOf(databaseName).deleteModel(modelId);
}

/** Opens a stored model; the error's facts when it cannot be (MODEL_NOT_READY while importing). */
export async function openFacts(databaseName: string, modelId: string): Promise<ErrorFacts | 'opened'> {
  try {
    await storeOf(databaseName).openModel(modelId);
    return 'opened';
  } catch (error) {
    return errorFacts(error);
  }
}

/**
 * Reads every tensor back through the store's read API and compares it with
 * the file's bytes, and hashes every record against the manifest.
 */
export async function checkAgainstFile(databaseName: string, modelId: string, url: string): Promise<FileCheck> {
  const bytes = new Uint8Array(await (await fileBlob(url)).arrayBuffer());
  const file = await readGguf(sourceFromBytes(bytes));
  const model = await storeOf(databaseName).openModel(modelId);
  const check: FileCheck = { tensors: 0, bytesCompared: 0, mismatched: [], metadataKeys: 0, fileMetadataKeys: file.metadata.size, problems: [] };
  for (const t of file.tensors) {
    const expected = bytes.subarray(file.dataOffset + t.offset, file.dataOffset + t.offset + t.nBytes);
    const stored = await model.readTensor(t.name);
    check.tensors++;
    check.bytesCompared += stored.byteLength;
    if (!equalBytes(stored, expected)) check.mismatched.push(t.name);
  }
  check.metadataKeys = (await model.readMetadata()).size;
  check.problems = (await model.verify()).map((e) => e.message);
  return check;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Deletes a whole database; 'blocked' when an open connection elsewhere does not give way within `ms`. */
export async function deleteDatabase(databaseName: string, ms: number): Promise<'deleted' | 'blocked'> {
  stores.delete(databaseName);
  const timeout = new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), ms));
  return Promise.race([deleteIndexedDbDatabase(databaseName).then(() => 'deleted' as const), timeout]);
}
