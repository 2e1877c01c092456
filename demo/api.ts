/**
 * The public API's main-thread pieces the demo uses, imported from their own
 * modules: the package's index also re-exports the kernels with their WGSL
 * sources, which only the engine worker needs, and importing it here would
 * put them in the page's bundle (about 300 KB more). Types come from the
 * index, which costs nothing at run time.
 */
export { createEngine, spawnWorker } from '../src/api/worker-client';
export type { WorkerClient } from '../src/api/worker-client';
export { createClient } from '../src/api/openai';
export { WebMoeError, toWebMoeError } from '../src/api/errors';
export { modelIdFromName } from '../src/store/model-id';
