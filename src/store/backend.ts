/**
 * The contract between the store's logic (import, reads, management) and a
 * place that keeps bytes: IndexedDB in browsers (idb.ts), a directory in Node
 * (fs-node.ts), or a test wrapper around either. A backend stores, per model,
 * one manifest and named records of bytes; it knows nothing of GGUF.
 */

import type { ModelManifest } from './manifest';

export interface RecordWrite {
  key: string;
  bytes: Uint8Array;
}

export interface StoreBackend {
  /** What keeps the bytes, for messages ("indexeddb:webmoe-weights", "filesystem:/models"). */
  readonly description: string;
  /**
   * Writes records in the given order, replacing any with the same key. Each
   * record is atomic: after a failure it is either wholly present or absent.
   * A failed call may have written some of its records (IndexedDB writes all
   * or none, the file system a prefix).
   */
  putRecords(modelId: string, records: readonly RecordWrite[]): Promise<void>;
  /** The record's bytes (a buffer of exactly its size), or undefined when absent. */
  getRecord(modelId: string, key: string): Promise<Uint8Array | undefined>;
  /** Keys of the model's records present now, in no particular order. */
  listRecordKeys(modelId: string): Promise<string[]>;
  deleteRecords(modelId: string, keys: readonly string[]): Promise<void>;
  /**
   * Stores the model's manifest, replacing the previous one atomically.
   * `durable` asks that it reach the disk before the promise resolves (used
   * for the commit, after which the model is offered as usable).
   */
  putManifest(manifest: ModelManifest, options: { durable: boolean }): Promise<void>;
  getManifest(modelId: string): Promise<ModelManifest | undefined>;
  listManifests(): Promise<ModelManifest[]>;
  /** Removes the manifest first, then every record of the model. */
  deleteModel(modelId: string): Promise<void>;
  /** Bytes that may still be written, when the platform can tell. */
  availableBytes(): Promise<number | undefined>;
  /** Asks that stored data survive storage pressure (navigator.storage.persist); true when granted. */
  requestPersistence(): Promise<boolean>;
}
