/**
 * The in-page half of the store benchmark: each phase is a function the
 * Node driver (bench/store/run.ts) calls through page.evaluate while it
 * samples the page's heap. Phases: our import of the picked file into
 * IndexedDB, a plain IndexedDB put of records of the same sizes read from the
 * same file (the baseline), random expert reads through the store, and plain
 * IndexedDB gets of the same sizes.
 */

import { sourceFromBlob } from '../../../src/gguf/source';
import { sha256Hex, xxh32 } from '../../../src/store/hash';
import { deleteIndexedDbDatabase, openIndexedDbWeightStore } from '../../../src/store/idb';
import { manifestRecords } from '../../../src/store/manifest';
import type { ModelManifest } from '../../../src/store/manifest';
import type { WeightStore } from '../../../src/store/weight-store';

const STORE_DB = 'webmoe-bench-store';
const BASELINE_DB = 'webmoe-bench-baseline';
const BASELINE_STORE = 'records';

export interface PhaseResult {
  seconds: number;
  bytes: number;
  count: number;
}

let store: WeightStore | undefined;
let manifest: ModelManifest | undefined;

function pickedFile(): File {
  const file = (document.getElementById('file') as HTMLInputElement).files?.[0];
  if (!file) throw new Error('no file picked');
  return file;
}

async function resetDatabases(): Promise<void> {
  await deleteIndexedDbDatabase(STORE_DB);
  await deleteIndexedDbDatabase(BASELINE_DB);
}

async function importPhase(verify: 'all' | 'none', batchBytes?: number): Promise<PhaseResult> {
  (store?.backend as { close?: () => void } | undefined)?.close?.();
  await deleteIndexedDbDatabase(STORE_DB);
  store = openIndexedDbWeightStore({ databaseName: STORE_DB });
  const start = performance.now();
  const result = await store.importModel(sourceFromBlob(pickedFile()), { modelId: 'bench', verify, batchBytes });
  manifest = result.manifest;
  return { seconds: (performance.now() - start) / 1000, bytes: manifest.storedBytes, count: manifestRecords(manifest).length };
}

function openBaseline(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(BASELINE_DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(BASELINE_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function inTransaction<T>(db: IDBDatabase, mode: IDBTransactionMode, body: (s: IDBObjectStore) => IDBRequest<T> | void): Promise<T> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(BASELINE_STORE, mode);
    const request = body(tx.objectStore(BASELINE_STORE));
    tx.oncomplete = () => resolve(request ? request.result : (undefined as T));
    tx.onabort = () => reject(tx.error);
  });
}

/** Plain IndexedDB: each record (same keys and sizes as the store's) read from the same file and put in its own transaction. */
async function baselinePutPhase(): Promise<PhaseResult> {
  if (!manifest) throw new Error('run the import first');
  await deleteIndexedDbDatabase(BASELINE_DB);
  const db = await openBaseline();
  const file = pickedFile();
  const records = manifestRecords(manifest);
  const start = performance.now();
  let offset = 0;
  for (const record of records) {
    if (offset + record.bytes > file.size) offset = 0;
    const bytes = await file.slice(offset, offset + record.bytes).arrayBuffer();
    offset += record.bytes;
    await inTransaction(db, 'readwrite', (s) => {
      s.put(bytes, record.key);
    });
  }
  const seconds = (performance.now() - start) / 1000;
  db.close();
  return { seconds, bytes: records.reduce((n, r) => n + r.bytes, 0), count: records.length };
}

/** The same pseudo-random (layer, expert) sequence for the store and the baseline. */
function randomExperts(count: number, seed: number): Array<[number, number]> {
  if (!manifest) throw new Error('run the import first');
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const layers = manifest.expertLayers.map((l) => l.layer);
  return Array.from({ length: count }, () => [layers[Math.floor(next() * layers.length)], Math.floor(next() * manifest!.expertCount)]);
}

/**
 * Random expert reads three ways, interleaved per pick so that a slow
 * moment of a shared machine hits all three alike: through the store, through
 * the store with hash verification, and a plain IndexedDB get (baseline).
 */
async function readPhases(count: number): Promise<{ store: PhaseResult; verified: PhaseResult; baseline: PhaseResult }> {
  if (!store) throw new Error('run the import first');
  const model = await store.openModel('bench');
  const db = await openBaseline();
  const result = () => ({ seconds: 0, bytes: 0, count });
  const out = { store: result(), verified: result(), baseline: result() };
  const timed = async (into: PhaseResult, read: () => Promise<number>) => {
    const start = performance.now();
    into.bytes += await read();
    into.seconds += (performance.now() - start) / 1000;
  };
  for (const [layer, expert] of randomExperts(count, 42)) {
    await timed(out.store, async () => (await model.readExpert(layer, expert)).byteLength);
    await timed(out.verified, async () => (await model.readExpert(layer, expert, { verify: true })).byteLength);
    await timed(out.baseline, async () =>
      (await inTransaction(db, 'readonly', (s) => s.get(`expert.${layer}.${expert}`) as IDBRequest<ArrayBuffer>)).byteLength);
  }
  db.close();
  return out;
}

/** Hash throughput on expert-sized buffers, for the hash choice: the records' xxHash32 (plain JS) against WebCrypto SHA-256. */
async function hashPhase(recordBytes: number, count: number, kind: 'sha256' | 'xxh32'): Promise<PhaseResult> {
  const buffer = new Uint8Array(recordBytes);
  for (let at = 0; at < buffer.byteLength; at += 65536) crypto.getRandomValues(buffer.subarray(at, Math.min(at + 65536, buffer.byteLength)));
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (kind === 'sha256') await sha256Hex(buffer);
    else xxh32(buffer);
  }
  return { seconds: (performance.now() - start) / 1000, bytes: recordBytes * count, count };
}

const api = { resetDatabases, importPhase, baselinePutPhase, readPhases, hashPhase, ready: true };
declare global {
  interface Window {
    storeBench: typeof api;
  }
}
window.storeBench = api;
