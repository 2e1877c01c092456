/**
 * The store-faults page: `window.storeFaults` runs store operations in this
 * tab or in its own worker, loads stored models in the engine's worker
 * (createEngine) and, as the reference, the file's bytes directly in this
 * tab (Engine.load, no store). Import progress goes to `window.faultProgress`
 * when the test exposes it, so the test can interrupt an import at a chosen
 * point.
 */
import * as Comlink from 'comlink';
import { createEngine } from '../../src/api/worker-client';
import type { WebMoeEngine } from '../../src/api/types';
import { Engine } from '../../src/engine/engine';
import { requestGpuDevice } from '../../src/gpu/device';
import type { ImportProgress } from '../../src/store/import';
import {
  checkAgainstFile, deleteDatabase, deleteModel, errorFacts, fileBlob, listModels, openFacts, runImport,
} from './store-faults-lib';
import type { ErrorFacts, FaultImport, ImportOutcome } from './store-faults-lib';
import type { StoreWorkerApi } from './store-worker';

export type { ErrorFacts, FaultImport, FileCheck, ImportOutcome } from './store-faults-lib';

export interface Completed {
  text?: string;
  completionTokens?: number;
  error?: ErrorFacts;
}

type Where = 'page' | 'worker';

let worker: Worker | undefined;
let engine: WebMoeEngine | undefined;

/** What a test's `faultProgress` binding receives for each import progress event. */
export interface ProgressReport extends ImportProgress {
  where: Where;
  /** Bytes the run has read from the GGUF so far. */
  sourceBytesRead: number;
}

function reportProgress(where: Where, p: ImportProgress, sourceBytesRead: number): void {
  const report = (window as { faultProgress?: (p: ProgressReport) => Promise<void> }).faultProgress;
  void report?.({ ...p, where, sourceBytesRead })?.catch(() => undefined);
}

const storeFaults = {
  /** Imports in this tab. */
  runImport: (o: FaultImport): Promise<ImportOutcome> => runImport(o, (p, read) => reportProgress('page', p, read)),

  /** Imports in this tab's store worker (started on first use). */
  runImportInWorker(o: FaultImport): Promise<ImportOutcome> {
    worker ??= new Worker(new URL('./store-worker.ts', import.meta.url), { type: 'module', name: 'store-faults' });
    const api = Comlink.wrap<StoreWorkerApi>(worker);
    // The worker resolves relative URLs against its own script's address, not the page's.
    return api.runImport({ ...o, url: new URL(o.url, location.href).href }, Comlink.proxy((p: ImportProgress, read: number) => reportProgress('worker', p, read)));
  },

  /** Kills the store worker mid-whatever it does. */
  terminateWorker(): boolean {
    const had = worker !== undefined;
    worker?.terminate();
    worker = undefined;
    return had;
  },

  listModels,
  deleteModel,
  openFacts,
  checkAgainstFile,
  deleteDatabase,

  /** Greedy completion of the file loaded straight from its bytes in this tab (no store): the reference. */
  async referenceText(url: string, prompt: string, maxTokens: number): Promise<Completed> {
    const gpu = await requestGpuDevice({ label: 'reference' });
    try {
      const bytes = new Uint8Array(await (await fileBlob(url)).arrayBuffer());
      const direct = await Engine.load(gpu.device, bytes, { maxContext: 128 });
      const result = await direct.generate({ prompt, maxTokens, sampling: { temperature: 0 } });
      direct.destroy();
      return { text: result.text, completionTokens: result.tokens.length };
    } finally {
      gpu.device.destroy();
    }
  },

  /** Loads a stored model in the engine's worker; 'loaded' or why not. */
  async loadStored(databaseName: string, modelId: string, expertBudgetMB?: number): Promise<'loaded' | ErrorFacts> {
    await engine?.unload();
    engine = undefined;
    try {
      engine = await createEngine({ model: modelId, databaseName, expertBudgetMB, contextLength: 128 });
      return 'loaded';
    } catch (error) {
      return errorFacts(error);
    }
  },

  /** A greedy completion from the loaded engine. */
  async complete(prompt: string, maxTokens: number): Promise<Completed> {
    if (engine === undefined) return { error: { name: 'Error', message: 'no engine loaded' } };
    try {
      const result = await engine.completions.create({ prompt, max_tokens: maxTokens, temperature: 0 });
      return { text: result.choices[0].text, completionTokens: result.usage.completion_tokens };
    } catch (error) {
      return { error: errorFacts(error) };
    }
  },

  async unload(): Promise<void> {
    await engine?.unload();
    engine = undefined;
  },
};

export type StoreFaultsPage = typeof storeFaults;
(window as { storeFaults?: StoreFaultsPage }).storeFaults = storeFaults;
document.body.dataset.ready = 'true';
