/**
 * Main-thread side of the worker boundary: a thin comlink proxy.
 */
import * as Comlink from 'comlink';
import type { WorkerApi } from '../worker/api';

export interface WorkerClient {
  readonly api: Comlink.Remote<WorkerApi>;
  terminate(): void;
}

/** Starts the engine worker (bundled as its own chunk) and returns its proxy. */
export function spawnWorker(): WorkerClient {
  const worker = new Worker(new URL('../worker/engine-worker.ts', import.meta.url), { type: 'module', name: 'webmoe' });
  return { api: Comlink.wrap<WorkerApi>(worker), terminate: () => worker.terminate() };
}
