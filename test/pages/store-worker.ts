/**
 * The store-faults page's worker: imports run here when a test interrupts
 * one by terminating the worker (a worker's IndexedDB transactions and Web
 * Locks die with it, as a tab's do with the tab).
 */
import * as Comlink from 'comlink';
import type { ImportProgress } from '../../src/store/import';
import { runImport } from './store-faults-lib';
import type { FaultImport, ImportOutcome } from './store-faults-lib';

const api = {
  runImport: (o: FaultImport, onProgress: (p: ImportProgress, sourceBytesRead: number) => void): Promise<ImportOutcome> => runImport(o, onProgress),
};

export type StoreWorkerApi = typeof api;
Comlink.expose(api);
