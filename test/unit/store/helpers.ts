/**
 * Helpers for the weight-store specs, shared by the Node (filesystem) and
 * Chromium (IndexedDB) suites, so nothing here touches node:* modules:
 * tiny models, the bytes a record must hold computed straight from the GGUF,
 * backend and source wrappers that fail on cue or run out of space, and a
 * snapshot of everything a model has in the store.
 */

import { expect } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { ByteSource } from '../../../src/gguf/source';
import type { GgufFile } from '../../../src/gguf/types';
import type { RecordWrite, StoreBackend } from '../../../src/store/backend';
import { recordHash } from '../../../src/store/hash';
import type { ModelManifest } from '../../../src/store/manifest';
import { makeTinyModel } from '../../../src/tiny/make-tiny';
import type { TinyModelOptions } from '../../../src/tiny/make-tiny';

const tinyCache = new Map<string, Uint8Array>();

/** makeTinyModel, memoised (the BPE vocabulary takes a moment to learn). */
export function tiny(options: TinyModelOptions): Uint8Array {
  const key = JSON.stringify(options);
  let bytes = tinyCache.get(key);
  if (bytes === undefined) {
    bytes = makeTinyModel(options);
    tinyCache.set(key, bytes);
  }
  return bytes;
}

export function namedSource(bytes: Uint8Array, name: string): ByteSource {
  return sourceFromBytes(bytes, name);
}

export function sameBytes(actual: Uint8Array | undefined, expected: Uint8Array): boolean {
  if (actual === undefined || actual.byteLength !== expected.byteLength) return false;
  for (let i = 0; i < actual.byteLength; i++) if (actual[i] !== expected[i]) return false;
  return true;
}

export function expectSameBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  expect(actual?.byteLength, `${what}: length`).toBe(expected.byteLength);
  expect(sameBytes(actual, expected), `${what}: bytes differ`).toBe(true);
}

/** The GGUF's bytes of one tensor. */
export function tensorSlice(gguf: Uint8Array, file: GgufFile, name: string): Uint8Array {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return gguf.subarray(file.dataOffset + t.offset, file.dataOffset + t.offset + t.nBytes);
}

/** Expert `e` of `layer`: its slice of each named tensor (last dim = expert), concatenated in the order given. */
export function expectedExpert(gguf: Uint8Array, file: GgufFile, layer: number, e: number, parts: readonly string[], experts: number): Uint8Array {
  const slices = parts.map((p) => {
    const whole = tensorSlice(gguf, file, `blk.${layer}.${p}`);
    const sliceBytes = whole.byteLength / experts;
    return whole.subarray(e * sliceBytes, (e + 1) * sliceBytes);
  });
  const out = new Uint8Array(slices.reduce((n, s) => n + s.byteLength, 0));
  let at = 0;
  for (const s of slices) {
    out.set(s, at);
    at += s.byteLength;
  }
  return out;
}

export const parseGguf = (bytes: Uint8Array): Promise<GgufFile> => readGguf(sourceFromBytes(bytes));

/** Everything a model has in a backend: its manifest (minus the commit time) and the hash of every record (byte-identical stores have equal snapshots up to xxHash32 collisions). */
export interface Snapshot {
  manifest: Omit<ModelManifest, 'completedAt'> | undefined;
  records: Record<string, string>;
}

export async function snapshot(backend: StoreBackend, modelId: string): Promise<Snapshot> {
  const manifest = await backend.getManifest(modelId);
  const keys = (await backend.listRecordKeys(modelId)).sort();
  const records: Record<string, string> = {};
  for (const key of keys) records[key] = recordHash((await backend.getRecord(modelId, key))!);
  if (manifest === undefined) return { manifest, records };
  const { completedAt: _ignored, ...rest } = manifest;
  return { manifest: rest, records };
}

/** Records and manifests present anywhere in the backend. */
export async function backendContents(backend: StoreBackend, modelIds: readonly string[]): Promise<{ manifests: number; records: number }> {
  const manifests = (await backend.listManifests()).length;
  let records = 0;
  for (const id of modelIds) records += (await backend.listRecordKeys(id)).length;
  return { manifests, records };
}

// ---------------------------------------------------------------- wrappers

export class InjectedFailure extends Error {
  override name = 'InjectedFailure';
}

export type BackendOperation = 'putRecords' | 'getRecord' | 'putManifest' | 'deleteRecords';

export interface FailurePlan {
  /** Operation whose call fails. */
  operation: BackendOperation;
  /** Fails the n-th call (1-based) of that operation. */
  call: number;
  /** For putRecords: how many of the batch's records are written before failing (default 0). */
  writtenBeforeFailure?: number;
  /** For putManifest: fail only when committing ('complete'). */
  onlyCommit?: boolean;
  /** The error thrown; default an InjectedFailure. */
  error?: () => unknown;
}

/** A backend that behaves like `inner` except for one planned failure (a crash, a full disk). */
export function failingBackend(inner: StoreBackend, plan: FailurePlan): StoreBackend & { fired: () => boolean } {
  const calls: Record<BackendOperation, number> = { putRecords: 0, getRecord: 0, putManifest: 0, deleteRecords: 0 };
  let fired = false;
  const shouldFail = (op: BackendOperation, manifest?: ModelManifest) => {
    if (fired || op !== plan.operation) return false;
    if (op === 'putManifest' && plan.onlyCommit && manifest?.state !== 'complete') return false;
    calls[op]++;
    if (calls[op] !== plan.call) return false;
    fired = true;
    return true;
  };
  const fail = () => {
    throw plan.error ? plan.error() : new InjectedFailure(`injected failure in ${plan.operation} call ${plan.call}`);
  };
  return {
    ...bind(inner),
    fired: () => fired,
    async putRecords(modelId: string, records: readonly RecordWrite[]) {
      if (!shouldFail('putRecords')) return inner.putRecords(modelId, records);
      const prefix = records.slice(0, plan.writtenBeforeFailure ?? 0);
      if (prefix.length > 0) await inner.putRecords(modelId, prefix);
      return fail();
    },
    async getRecord(modelId: string, key: string) {
      if (shouldFail('getRecord')) fail();
      return inner.getRecord(modelId, key);
    },
    async putManifest(manifest: ModelManifest, options: { durable: boolean }) {
      if (shouldFail('putManifest', manifest)) fail();
      return inner.putManifest(manifest, options);
    },
    async deleteRecords(modelId: string, keys: readonly string[]) {
      if (shouldFail('deleteRecords')) fail();
      return inner.deleteRecords(modelId, keys);
    },
  };
}

/**
 * A backend with `limitBytes` of space for records: a batch that does not fit
 * writes the records that do, then throws QuotaExceededError, as a browser
 * does when the origin's quota runs out. `availableBytes` reports plenty
 * (estimates are only estimates). `setLimit` frees space.
 */
export function quotaLimitedBackend(inner: StoreBackend, limitBytes: number): StoreBackend & { setLimit(bytes: number): void } {
  let limit = limitBytes;
  let usedBytes = 0;
  return {
    ...bind(inner),
    setLimit: (bytes: number) => {
      limit = bytes;
    },
    async putRecords(modelId: string, records: readonly RecordWrite[]) {
      const fitting: RecordWrite[] = [];
      for (const r of records) {
        if (usedBytes + r.bytes.byteLength > limit) break;
        fitting.push(r);
        usedBytes += r.bytes.byteLength;
      }
      if (fitting.length > 0) await inner.putRecords(modelId, fitting);
      if (fitting.length < records.length) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    },
  };
}

/** A backend whose storage estimate says only `availableBytes` are left. */
export function smallEstimateBackend(inner: StoreBackend, availableBytes: number): StoreBackend {
  return { ...bind(inner), availableBytes: async () => availableBytes };
}

/** All of a backend's methods bound to it, so wrappers can spread them and override some. */
export function bind(inner: StoreBackend): StoreBackend {
  return {
    description: inner.description,
    putRecords: inner.putRecords.bind(inner),
    getRecord: inner.getRecord.bind(inner),
    listRecordKeys: inner.listRecordKeys.bind(inner),
    deleteRecords: inner.deleteRecords.bind(inner),
    putManifest: inner.putManifest.bind(inner),
    getManifest: inner.getManifest.bind(inner),
    listManifests: inner.listManifests.bind(inner),
    deleteModel: inner.deleteModel.bind(inner),
    availableBytes: inner.availableBytes.bind(inner),
    requestPersistence: inner.requestPersistence.bind(inner),
  };
}

/** A source whose n-th read (1-based, counting from the first read after `armed()`) fails. */
export function failingSource(inner: ByteSource, failAtRead: number): ByteSource & { arm(): void; reads: () => number } {
  let armed = false;
  let reads = 0;
  return {
    size: inner.size,
    name: inner.name,
    arm: () => {
      armed = true;
    },
    reads: () => reads,
    async read(offset, length) {
      if (armed && ++reads === failAtRead) throw new InjectedFailure(`injected source failure at read ${failAtRead}`);
      return inner.read(offset, length);
    },
  };
}

/** A fetch over in-memory bytes that honours Range requests, recording each range asked for. */
export function rangeFetch(bytes: Uint8Array, ranges: Array<[number, number]>): typeof fetch {
  return async (_input, init) => {
    const range = new Headers(init?.headers).get('range');
    const match = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (!match) return new Response(bytes.slice() as Uint8Array<ArrayBuffer>, { status: 200 });
    const start = Number(match[1]);
    const end = Math.min(Number(match[2]), bytes.byteLength - 1);
    ranges.push([start, end + 1]);
    return new Response(bytes.slice(start, end + 1) as Uint8Array<ArrayBuffer>, {
      status: 206,
      headers: { 'content-range': `bytes ${start}-${end}/${bytes.byteLength}`, 'content-length': String(end + 1 - start) },
    });
  };
}
