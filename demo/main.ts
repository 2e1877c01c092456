/**
 * Demo app: a small chat over the public API. Each loaded model gets its own
 * engine (createEngine: a worker with the model on the GPU); one more worker
 * with no model loaded reports the WebGPU adapter and serves the model
 * store's list and deletes.
 */
import { createClient, spawnWorker, type EngineServiceApi } from '../src/index';
import { ChatPanel } from './chat';
import { ModelPanel } from './models';
import { byId, describeError } from './view';

const storeWorker = spawnWorker();
const store = createClient(storeWorker.api.service as unknown as EngineServiceApi, 'none');

const adapter = byId('adapter');
storeWorker.api.adapter().then(
  (a) => (adapter.textContent = `WebGPU adapter: ${a.vendor} ${a.architecture} ${a.description} (${a.features.join(', ') || 'no optional features'})`),
  (error: unknown) => {
    adapter.textContent = `WebGPU unavailable: ${describeError(error)}`;
    adapter.className = 'error';
  },
);

const chat = new ChatPanel();
new ModelPanel(store, (engine) => chat.attach(engine));
