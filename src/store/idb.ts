/**
 * The browser backend: raw IndexedDB, one database for all models.
 *
 *   object store "manifests"   key modelId            value ModelManifest (structured clone)
 *   object store "records"     key [modelId, key]     value ArrayBuffer of exactly the record's size
 *
 * Raw IndexedDB rather than idb-keyval because the store needs what that
 * wrapper hides: one transaction per batch (all records of a batch and its
 * journal commit or none do), a durability hint per transaction ('relaxed'
 * for records, 'strict' for the manifest commit), key-range reads and deletes
 * (all records of a model are the range [modelId] .. [modelId, []]), and
 * closing the connection when another tab upgrades or deletes the database.
 */

import type { RecordWrite, StoreBackend } from './backend';
import type { ModelManifest } from './manifest';
import { createWeightStore } from './weight-store';
import type { WeightStore } from './weight-store';

export const DEFAULT_DATABASE_NAME = 'webmoe-weights';
const DATABASE_VERSION = 1;
const MANIFESTS = 'manifests';
const RECORDS = 'records';

export interface IndexedDbOptions {
  /** Database name; default 'webmoe-weights'. */
  databaseName?: string;
  /** IndexedDB factory; default the global `indexedDB`. */
  factory?: IDBFactory;
}

/** A WeightStore in this origin's IndexedDB. */
export function openIndexedDbWeightStore(options: IndexedDbOptions = {}): WeightStore {
  return createWeightStore(indexedDbBackend(options));
}

export function indexedDbBackend(options: IndexedDbOptions = {}): StoreBackend & { close(): void } {
  return new IndexedDbBackend(options.databaseName ?? DEFAULT_DATABASE_NAME, options.factory ?? indexedDB);
}

/** Deletes the whole database (every model); for tests and "clear all data". */
export function deleteIndexedDbDatabase(databaseName = DEFAULT_DATABASE_NAME, factory: IDBFactory = indexedDB): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = factory.deleteDatabase(databaseName);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
  });
}

/** All keys of one model in the records store: [id] sorts before [id, anything] and [id, string] before [id, []]. */
const modelRange = (modelId: string): IDBKeyRange => IDBKeyRange.bound([modelId], [modelId, []]);

class IndexedDbBackend implements StoreBackend {
  readonly description: string;
  private connection: Promise<IDBDatabase> | undefined;

  constructor(private readonly databaseName: string, private readonly factory: IDBFactory) {
    this.description = `indexeddb:${databaseName}`;
  }

  close(): void {
    const connection = this.connection;
    this.connection = undefined;
    void connection?.then((db) => db.close(), () => undefined);
  }

  private database(): Promise<IDBDatabase> {
    if (this.connection === undefined) {
      // Only this connection's closing forgets it: a newer one may have replaced it meanwhile.
      const opened: Promise<IDBDatabase> = openDatabase(this.factory, this.databaseName, () => {
        if (this.connection === opened) this.connection = undefined;
      });
      this.connection = opened;
    }
    const connection = this.connection;
    connection.catch(() => {
      if (this.connection === connection) this.connection = undefined;
    });
    return connection;
  }

  private async transaction<T>(
    stores: string[], mode: IDBTransactionMode, durability: 'strict' | 'relaxed',
    body: (tx: IDBTransaction) => IDBRequest<T> | void,
  ): Promise<T> {
    const tx = await this.begin(stores, mode, durability);
    const request = body(tx);
    await transactionDone(tx);
    return request ? request.result : (undefined as T);
  }

  /**
   * A new transaction. Another tab deleting or upgrading the database closes
   * our connection (see openDatabase), possibly between handing it out and
   * this call: then the transaction is begun once more on a new connection.
   */
  private async begin(stores: string[], mode: IDBTransactionMode, durability: 'strict' | 'relaxed'): Promise<IDBTransaction> {
    const db = await this.database();
    try {
      return db.transaction(stores, mode, { durability });
    } catch (error) {
      if ((error as { name?: unknown } | null)?.name !== 'InvalidStateError') throw error;
      if (this.connection !== undefined && (await this.connection) === db) this.connection = undefined;
      return (await this.database()).transaction(stores, mode, { durability });
    }
  }

  putRecords(modelId: string, records: readonly RecordWrite[]): Promise<void> {
    return this.transaction([RECORDS], 'readwrite', 'relaxed', (tx) => {
      const store = tx.objectStore(RECORDS);
      for (const record of records) store.put(exactBuffer(record.bytes), [modelId, record.key]);
    });
  }

  async getRecord(modelId: string, key: string): Promise<Uint8Array | undefined> {
    const value = await this.transaction([RECORDS], 'readonly', 'relaxed',
      (tx) => tx.objectStore(RECORDS).get([modelId, key]) as IDBRequest<ArrayBuffer | undefined>);
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async listRecordKeys(modelId: string): Promise<string[]> {
    const keys = await this.transaction([RECORDS], 'readonly', 'relaxed', (tx) => tx.objectStore(RECORDS).getAllKeys(modelRange(modelId)));
    return keys.map((k) => (k as [string, string])[1]);
  }

  deleteRecords(modelId: string, keys: readonly string[]): Promise<void> {
    return this.transaction([RECORDS], 'readwrite', 'relaxed', (tx) => {
      const store = tx.objectStore(RECORDS);
      for (const key of keys) store.delete([modelId, key]);
    });
  }

  putManifest(manifest: ModelManifest, options: { durable: boolean }): Promise<void> {
    return this.transaction([MANIFESTS], 'readwrite', options.durable ? 'strict' : 'relaxed', (tx) => {
      tx.objectStore(MANIFESTS).put(manifest, manifest.modelId);
    });
  }

  getManifest(modelId: string): Promise<ModelManifest | undefined> {
    return this.transaction([MANIFESTS], 'readonly', 'relaxed',
      (tx) => tx.objectStore(MANIFESTS).get(modelId) as IDBRequest<ModelManifest | undefined>);
  }

  listManifests(): Promise<ModelManifest[]> {
    return this.transaction([MANIFESTS], 'readonly', 'relaxed', (tx) => tx.objectStore(MANIFESTS).getAll() as IDBRequest<ModelManifest[]>);
  }

  deleteModel(modelId: string): Promise<void> {
    // One transaction: the manifest and every record go together or not at all.
    return this.transaction([MANIFESTS, RECORDS], 'readwrite', 'strict', (tx) => {
      tx.objectStore(MANIFESTS).delete(modelId);
      tx.objectStore(RECORDS).delete(modelRange(modelId));
    });
  }

  async availableBytes(): Promise<number | undefined> {
    const estimate = await globalThis.navigator?.storage?.estimate?.();
    if (estimate?.quota === undefined) return undefined;
    return Math.max(0, estimate.quota - (estimate.usage ?? 0));
  }

  async requestPersistence(): Promise<boolean> {
    const storage = globalThis.navigator?.storage;
    if (!storage?.persist) return false;
    return (await storage.persisted?.()) || storage.persist();
  }
}

function openDatabase(factory: IDBFactory, name: string, onClosed: () => void): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = factory.open(name, DATABASE_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(MANIFESTS)) db.createObjectStore(MANIFESTS);
      if (!db.objectStoreNames.contains(RECORDS)) db.createObjectStore(RECORDS);
    };
    let refused = false;
    request.onsuccess = () => {
      const db = request.result;
      // Opened after all, once the tab that blocked us gave way: nobody holds this connection, so it must not linger.
      if (refused) {
        db.close();
        return;
      }
      // Another tab deleting or upgrading the database must not wait on us forever.
      db.onversionchange = () => {
        db.close();
        onClosed();
      };
      db.onclose = onClosed;
      resolve(db);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => {
      refused = true;
      reject(new Error(`IndexedDB ${name} is held open by another tab with an older version`));
    };
  });
}

/** Resolves when the transaction commits; rejects with its error (e.g. QuotaExceededError) when it aborts. */
function transactionDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    // A failed request aborts the transaction with its error, so onabort sees every failure.
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
  });
}

/**
 * The record as an ArrayBuffer of exactly its size: structured clone of a
 * typed array stores its whole underlying buffer, which for a view into a
 * larger buffer would store (and later return) bytes that are not the record.
 */
function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return whole ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
}
