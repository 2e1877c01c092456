/**
 * Demo app: a chat over the public API with the experts made visible. The
 * panels share the persisted state (persist.ts); a worker with no model
 * loaded reports the WebGPU adapter and serves the model store, each loaded
 * model runs in its own engine worker.
 */
import { spawnWorker, WebMoeError } from './api';
import { adviceFor } from './advice';
import { ChatPanel } from './chat';
import { Figures } from './figures';
import { Heatmap } from './heatmap';
import { ModelPanel } from './models';
import { SettingsPanel } from './settings';
import { byId } from './view';

const heatmap = new Heatmap();
heatmap.setShape(undefined);
const figures = new Figures();
let models: ModelPanel | undefined;
const settings = new SettingsPanel(() => void models?.reload());
const chat = new ChatPanel(settings, heatmap, figures);
const storeWorker = spawnWorker();
models = new ModelPanel(storeWorker, settings, heatmap, figures, (model) => chat.attach(model));

const adapter = byId('adapter');
const gpuState = byId('gpu-state');

/** No WebGPU: say so, with what to do, and keep import and delete usable. */
function noWebGpu(reason: string): void {
  adapter.textContent = `WebGPU unavailable: ${reason}`;
  gpuState.dataset.code = 'NO_WEBGPU';
  gpuState.textContent = adviceFor(new WebMoeError('NO_WEBGPU', reason));
  gpuState.hidden = false;
}

if (!('gpu' in navigator)) {
  noWebGpu('this browser has no navigator.gpu');
  models.disableGpu();
  void models.refresh();
} else {
  storeWorker.api.adapter().then(
    (a) => {
      adapter.textContent = `WebGPU adapter: ${a.vendor} ${a.architecture} ${a.description}`.trim() + ` (${a.features.join(', ') || 'no optional features'})`;
    },
    (error: unknown) => noWebGpu(error instanceof Error ? error.message : String(error)),
  );
  void models.start();
}
