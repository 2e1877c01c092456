/**
 * The in-page half of the store benchmark: each phase is a function the
 * Node driver (bench/store/run.ts) calls through page.evaluate while it
 * samples the page's heap. Phases: our import of the picked file into
 * IndexedDB, a plain IndexedDB put of records of the same sizes read from the
 * same file (the baseline), random expert reads through the store, and plain
 * IndexedDB gets of the same sizes.
 */

import { sourceFromBlob } from '../../../src/gguf/source';
import { sha256Hex } from '../../../src/store/hash';
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

async function readPhase(count: number, verify: boolean): Promise<PhaseResult> {
  if (!store) throw new Error('run the import first');
  const model = await store.openModel('bench');
  const picks = randomExperts(count, 42);
  let bytes = 0;
  const start = performance.now();
  for (const [layer, expert] of picks) bytes += (await model.readExpert(layer, expert, { verify })).byteLength;
  return { seconds: (performance.now() - start) / 1000, bytes, count };
}

async function baselineGetPhase(count: number): Promise<PhaseResult> {
  const db = await openBaseline();
  const picks = randomExperts(count, 42);
  let bytes = 0;
  const start = performance.now();
  for (const [layer, expert] of picks) {
    const value = await inTransaction(db, 'readonly', (s) => s.get(`expert.${layer}.${expert}`) as IDBRequest<ArrayBuffer>);
    bytes += value.byteLength;
  }
  const seconds = (performance.now() - start) / 1000;
  db.close();
  return { seconds, bytes, count };
}

/** Hash throughput on expert-sized buffers, for the hash choice: WebCrypto SHA-256 against xxHash32 in plain JS. */
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

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;
const round = (acc: number, lane: number) => {
  const x = (acc + Math.imul(lane, P2)) | 0;
  return Math.imul((x << 13) | (x >>> 19), P1);
};

/** xxHash32 (seed 0) of a 4-byte-aligned buffer: the fast non-cryptographic alternative, measured for comparison. */
function xxh32(bytes: Uint8Array): number {
  const n = bytes.byteLength;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2);
  let h: number;
  let i = 0;
  if (n >= 16) {
    let v1 = (P1 + P2) | 0, v2 = P2, v3 = 0, v4 = -P1 | 0;
    const stripes = (n >>> 4) << 2;
    for (let w = 0; w < stripes; w += 4) {
      v1 = round(v1, words[w]);
      v2 = round(v2, words[w + 1]);
      v3 = round(v3, words[w + 2]);
      v4 = round(v4, words[w + 3]);
    }
    h = (((v1 << 1) | (v1 >>> 31)) + ((v2 << 7) | (v2 >>> 25)) + ((v3 << 12) | (v3 >>> 20)) + ((v4 << 18) | (v4 >>> 14))) | 0;
    i = stripes * 4;
  } else {
    h = P5;
  }
  h = (h + n) | 0;
  for (; i + 4 <= n; i += 4) {
    h = (h + Math.imul(words[i >>> 2], P3)) | 0;
    h = Math.imul((h << 17) | (h >>> 15), P4);
  }
  for (; i < n; i++) {
    h = (h + Math.imul(bytes[i], P5)) | 0;
    h = Math.imul((h << 11) | (h >>> 21), P1);
  }
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

const api = { resetDatabases, importPhase, baselinePutPhase, readPhase, baselineGetPhase, hashPhase, ready: true };
declare global {
  interface Window {
    storeBench: typeof api;
  }
}
window.storeBench = api;
