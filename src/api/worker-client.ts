/**
 * Main-thread side of the worker boundary: the engine worker (bundled as its
 * own chunk) behind a thin comlink proxy, and `createEngine`, the browser's
 * way in: the model runs in the worker, the page holds only the client.
 */
import * as Comlink from 'comlink';
import type { WorkerApi } from '../worker/api';
import type { EngineServiceApi, ServiceLoadOptions } from '../engine/service-types';
import { WebMoeError, toWebMoeError } from '../engine/webmoe-error';
import { createClient, createStoreClient } from './openai';
import type { CreateEngineOptions, ModelStoreOptions, WebMoeEngine, WebMoeModelStore } from './types';
import { installErrorTransfer } from '../worker/transfer';

export interface WorkerClient {
  readonly api: Comlink.Remote<WorkerApi>;
  readonly worker: Worker;
  terminate(): void;
}

/**
 * Why a worker fails with an error event that has no message: its script did
 * not load. The worker is dist/lib/worker.js, found relative to the library
 * file; Vite 8 handles that in development and in builds, but older Vite dev
 * servers pre-bundle the library into node_modules/.vite/deps, away from it.
 */
const WORKER_NOT_LOADED =
  "its script (worker.js, beside the library's own file) did not load; serve it next to the library " +
  "(with Vite 7 or older in development, add optimizeDeps: { exclude: ['webmoe'] })";

/** Starts the engine worker and returns its proxy. */
export function spawnWorker(): WorkerClient {
  installErrorTransfer();
  const worker = new Worker(new URL('../worker/engine-worker.ts', import.meta.url), { type: 'module', name: 'webmoe' });
  return { api: Comlink.wrap<WorkerApi>(worker), worker, terminate: () => worker.terminate() };
}

/**
 * Loads a model in a new dedicated worker and returns the engine serving it.
 * A File, Blob, bytes or URL is imported into the IndexedDB model store
 * first (with progress); a stored id loads from there.
 */
export async function createEngine(options: CreateEngineOptions): Promise<WebMoeEngine> {
  const client = spawnWorker();
  const core = remoteService(client.api.service as unknown as Comlink.Remote<EngineServiceApi>);
  const workerFailed = new Promise<never>((_, reject) => {
    client.worker.addEventListener('error', (event) => reject(new WebMoeError('INTERNAL', `the engine worker failed to start: ${event.message || WORKER_NOT_LOADED}`)), { once: true });
  });
  try {
    const loaded = await Promise.race([core.load(options.model, serviceLoadOptions(options), options.onProgress, options.onDeviceLost), workerFailed]);
    return createClient(core, loaded.model, { afterUnload: () => client.terminate() });
  } catch (error) {
    client.terminate();
    throw toWebMoeError(error);
  }
}

/** CreateEngineOptions as plain data for the service. */
export function serviceLoadOptions(options: CreateEngineOptions): ServiceLoadOptions {
  const prefetch = typeof options.prefetch === 'string' ? { predictor: options.prefetch } : options.prefetch;
  return {
    modelId: options.modelId,
    expertBudgetMB: options.expertBudgetMB,
    hostBudgetMB: options.hostBudgetMB,
    expertPolicy: options.expertPolicy,
    prefetch: prefetch && { ...prefetch },
    contextLength: options.contextLength,
    routing: options.routing && { ...options.routing },
    storeDir: options.storeDir,
    databaseName: options.databaseName,
  };
}

/**
 * The model store alone, in a worker of its own that opens no GPU device:
 * list, import (with progress; an interrupted import resumes) and delete
 * models without loading one. `close()` ends the worker.
 */
export async function openModelStore(options: ModelStoreOptions = {}): Promise<WebMoeModelStore> {
  const client = spawnWorker();
  const core = remoteService(client.api.service as unknown as Comlink.Remote<EngineServiceApi>);
  try {
    await core.useStore({ databaseName: options.databaseName });
  } catch (error) {
    client.terminate();
    throw toWebMoeError(error);
  }
  return createStoreClient(core, () => client.terminate());
}

/** The worker's service with callbacks passed as comlink proxies. */
function remoteService(remote: Comlink.Remote<EngineServiceApi>): EngineServiceApi {
  const callback = <F extends (...args: never[]) => unknown>(f: F | undefined) => (f ? Comlink.proxy(f) : undefined);
  return {
    load: (model, options, onProgress, onDeviceLost) => remote.load(model, options, callback(onProgress), callback(onDeviceLost)),
    generate: (id, request, onDelta) => remote.generate(id, request, callback(onDelta)),
    abort: (id) => void remote.abort(id).catch(() => {}),
    tokenize: (text, addSpecial) => remote.tokenize(text, addSpecial),
    detokenize: (tokens) => remote.detokenize(tokens),
    useStore: (options) => remote.useStore(options),
    listModels: () => remote.listModels(),
    deleteModel: (id) => remote.deleteModel(id),
    importModel: (source, id, onProgress) => remote.importModel(source, id, callback(onProgress)),
    stats: () => remote.stats(),
    unload: () => remote.unload(),
    simulateDeviceLoss: () => remote.simulateDeviceLoss(),
  };
}
