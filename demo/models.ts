/**
 * The model panel: import a GGUF (the built-in model served with the demo, a
 * local file or a URL) into the browser's model store with progress, load a
 * stored model onto the GPU with the budget and prefetch settings (Apply
 * reloads it with new ones), resume an import a reload interrupted, delete
 * stored models, and show the storage used and available.
 *
 * Imports run in a worker of their own (the "store worker", which loads no
 * model); each loaded model gets its engine (createEngine: a worker with the
 * model on the GPU), one at a time.
 */
import * as Comlink from 'comlink';
import type { EngineServiceApi, LoadProgress, ModelCard, ModelSource, WebMoeEngine } from '../src/index';
import { createClient, createEngine, modelIdFromName, WebMoeError, type WorkerClient } from './api';
import defaultModelUrl from '../models/default-moe-q8_0.gguf?url';
import { showError, showNotice } from './advice';
import type { ChatModel } from './chat';
import type { Figures } from './figures';
import type { Heatmap } from './heatmap';
import { save, state, type ImportSource } from './persist';
import { ProgressLine } from './progress';
import { RoutingTally, shapeOf, type EngineMemory } from './routing';
import type { LoadSettings, SettingsPanel } from './settings';
import { byId, element, formatBytes } from './view';

export const DEFAULT_MODEL_ID = 'default-moe-q8_0';

/** An id for a file or URL: the store's own rule, without the .gguf ending. */
function idFor(name: string): string {
  return modelIdFromName(name).replace(/\.gguf$/i, '') || 'model';
}

export class ModelPanel {
  private engine: WebMoeEngine | undefined;
  private loadedId: string | null = null;
  private busy = false;
  private gpu = true;
  /** The stored id a file chosen next resumes (Resume of an interrupted file import). */
  private resumeId: string | undefined;
  private readonly service: Comlink.Remote<EngineServiceApi>;
  private readonly store: Pick<WebMoeEngine, 'models'>;
  private readonly progress = new ProgressLine();
  private readonly status = byId('model-status');
  private readonly stored = byId<HTMLUListElement>('stored');
  private readonly storage = byId('storage');
  private readonly file = byId<HTMLInputElement>('file');
  private readonly url = byId<HTMLInputElement>('url');

  constructor(
    storeWorker: WorkerClient,
    private readonly settings: SettingsPanel,
    private readonly heatmap: Heatmap,
    private readonly figures: Figures,
    private readonly onModel: (model: ChatModel | undefined) => void,
  ) {
    // Comlink types a nested object as a Promise of it, but at run time it is a proxy whose methods can be called.
    this.service = storeWorker.api.service as unknown as Comlink.Remote<EngineServiceApi>;
    this.store = createClient(this.service as unknown as EngineServiceApi, 'none');
    const choose = (value: string) => {
      const radio = document.querySelector<HTMLInputElement>(`input[name=source][value=${value}]`);
      if (radio) radio.checked = true;
    };
    this.file.addEventListener('change', () => {
      choose('file');
      const id = this.resumeId;
      this.resumeId = undefined;
      if (id && this.file.files?.[0]) void this.importOnly(this.chosen(), id);
    });
    this.url.addEventListener('input', () => choose('url'));
    byId('source-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const submitter = (event as SubmitEvent).submitter;
      void (submitter?.id === 'import' ? this.importOnly(this.chosen()) : this.loadChosen());
    });
  }

  /** Lists the store, then loads the model used last time when it is still stored whole. */
  async start(): Promise<void> {
    const cards = await this.refresh();
    const last = state.lastModel;
    if (this.gpu && last && cards?.some((c) => c.id === last && c.state === 'complete')) await this.load(last, last);
  }

  /** No WebGPU in this browser: models can be imported and deleted, not loaded. */
  disableGpu(): void {
    this.gpu = false;
    byId<HTMLButtonElement>('load').disabled = true;
    this.setBusy(this.busy);
  }

  /** Reloads the loaded model with the current budget and prefetch (Apply). */
  async reload(): Promise<void> {
    if (this.loadedId) await this.load(this.loadedId, this.loadedId);
  }

  /** What the source radio buttons select, with the id it is stored under. */
  private chosen(): { source: ModelSource; id: string; origin: ImportSource } | undefined {
    const kind = document.querySelector<HTMLInputElement>('input[name=source]:checked')?.value;
    if (kind === 'file') {
      const file = this.file.files?.[0];
      if (!file) return refuse('Choose a GGUF file first.');
      return { source: file, id: idFor(file.name), origin: { kind: 'file', fileName: file.name } };
    }
    if (kind === 'url') {
      const url = this.url.value.trim();
      if (!url) return refuse('Enter the URL of a GGUF file first.');
      return { source: url, id: idFor(url), origin: { kind: 'url', url } };
    }
    return { source: this.builtinUrl(), id: DEFAULT_MODEL_ID, origin: { kind: 'builtin' } };
  }

  private builtinUrl(): string {
    return new URL(defaultModelUrl, location.href).href;
  }

  private async loadChosen(): Promise<void> {
    const chosen = this.chosen();
    if (!chosen) return;
    const stored = (await this.refresh())?.find((c) => c.id === chosen.id && c.state === 'complete');
    // A model already stored whole loads from the store; otherwise the file is imported (or its import resumed) first.
    if (stored && chosen.origin.kind === 'builtin') return this.load(chosen.id, chosen.id);
    this.remember(chosen.id, chosen.origin);
    return this.load(chosen.source, chosen.id);
  }

  private remember(id: string, origin: ImportSource): void {
    state.imports[id] = origin;
    save();
  }

  /** Imports into the store without loading (the store worker does it; progress crosses as a comlink proxy). */
  private async importOnly(chosen: ReturnType<ModelPanel['chosen']>, id = chosen?.id): Promise<void> {
    if (!chosen || !id || this.busy) return;
    this.setBusy(true);
    showError(undefined);
    this.remember(id, chosen.origin);
    this.progress.start(`Importing ${id}…`);
    this.status.textContent = `Importing ${id}…`;
    try {
      await this.service.importModel(chosen.source, id, Comlink.proxy((p: LoadProgress) => this.progress.update(p)));
      this.status.textContent = `Imported ${id}${this.loadedId ? `; ${this.loadedId} is loaded` : ''}.`;
    } catch (error) {
      this.status.textContent = `Importing ${id} failed.`;
      showError(error);
    } finally {
      this.progress.done();
      this.setBusy(false);
      await this.refresh();
    }
  }

  /** Unloads the current engine, then loads `model` (a stored id, or a source to import first) in a new one. */
  private async load(model: ModelSource, id: string): Promise<void> {
    if (this.busy || !this.gpu) return;
    this.setBusy(true);
    showError(undefined);
    const previous = this.engine;
    this.engine = undefined;
    this.loadedId = null;
    this.onModel(undefined);
    this.settings.setLoaded(null, undefined);
    await previous?.unload().catch(() => {});
    this.progress.start(`Loading ${id}…`);
    this.status.textContent = `Loading ${id}…`;
    const options: LoadSettings = this.settings.loadSettings;
    try {
      const engine = await createEngine({
        model,
        modelId: id,
        expertBudgetMB: options.expertBudgetMB,
        prefetch: options.prefetch,
        onProgress: (p) => this.progress.update(p),
        onDeviceLost: (info) => showError(new WebMoeError('DEVICE_LOST', `the GPU was lost (${info.reason}): ${info.message}`)),
      });
      const stats = await engine.stats();
      const memory: EngineMemory | null = stats.memory;
      this.engine = engine;
      this.loadedId = stats.model ?? id;
      state.lastModel = this.loadedId;
      if (memory && memory.expert_slots > 0) state.expertSizes[this.loadedId] = { bytesPerExpert: memory.expert_bytes / memory.expert_slots, totalExperts: memory.total_experts };
      save();
      this.status.textContent = describeLoaded(stats.model ?? id, stats.architecture, stats.context_length, memory);
      const shape = shapeOf(memory);
      this.heatmap.setShape(shape);
      // Residency before any request: every expert when all fit, none yet when they stream.
      if (shape && memory) this.heatmap.show(new RoutingTally(shape, memory.resident_experts));
      this.figures.setModel(memory, options.expertBudgetMB, stats.context_length);
      this.settings.setLoaded(this.loadedId, options);
      this.onModel({ engine, id: this.loadedId, shape, resident: memory?.resident_experts });
    } catch (error) {
      this.status.textContent = 'No model loaded.';
      this.heatmap.setShape(undefined);
      showError(error);
    } finally {
      this.progress.done();
      this.setBusy(false);
      await this.refresh();
    }
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    this.settings.setBusy(busy);
    byId<HTMLButtonElement>('load').disabled = busy || !this.gpu;
    byId<HTMLButtonElement>('import').disabled = busy;
    for (const button of this.stored.querySelectorAll<HTMLButtonElement>('button')) {
      button.disabled = busy || button.dataset.loaded === 'true' || (button.classList.contains('load') && !this.gpu);
    }
  }

  /** Rebuilds the stored models list and the storage line; returns the cards (undefined when the store failed). */
  async refresh(): Promise<ModelCard[] | undefined> {
    let cards: ModelCard[];
    try {
      cards = (await this.store.models.list()).data;
    } catch (error) {
      showError(error);
      return undefined;
    }
    this.stored.replaceChildren(...cards.map((card) => this.storedItem(card)));
    if (cards.length === 0) this.stored.append(element('li', 'muted', 'None yet: a model is stored (IndexedDB) when first imported or loaded.'));
    this.setBusy(this.busy);
    await this.showStorage();
    return cards;
  }

  private storedItem(card: ModelCard): HTMLLIElement {
    const li = element('li');
    li.dataset.id = card.id;
    li.dataset.state = card.state;
    const loaded = card.id === this.loadedId;
    const importing = card.state === 'importing';
    const info = element('span', 'info');
    info.append(element('span', 'model-name', card.id), element('span', 'muted', ` ${card.architecture}, ${formatBytes(card.stored_bytes)}${loaded ? ', loaded' : ''} `));
    const origin = state.imports[card.id] ?? (card.id === DEFAULT_MODEL_ID ? { kind: 'builtin' as const } : undefined);
    if (importing) info.append(element('span', 'badge', 'import interrupted'));
    li.append(info);
    const actions = element('span', 'actions');
    if (importing) {
      const resume = element('button', 'resume', origin?.kind === 'file' ? `Resume (choose ${origin.fileName ?? 'the file'} again)` : 'Resume');
      resume.setAttribute('aria-label', `Resume importing ${card.id}`);
      resume.disabled = !origin;
      resume.addEventListener('click', () => this.resume(card.id, origin));
      actions.append(resume);
    } else {
      const load = element('button', 'load', loaded ? 'Loaded' : 'Load');
      load.setAttribute('aria-label', `Load ${card.id}`);
      if (loaded) load.dataset.loaded = 'true';
      load.addEventListener('click', () => void this.load(card.id, card.id));
      actions.append(load);
    }
    const remove = element('button', 'delete', 'Delete');
    remove.setAttribute('aria-label', `Delete ${card.id}`);
    if (loaded) {
      remove.dataset.loaded = 'true';
      remove.title = 'loaded now: load another model first';
    }
    remove.addEventListener('click', () => void this.remove(card.id));
    actions.append(remove);
    li.append(actions);
    return li;
  }

  /** Continues an interrupted import from the same source (a file has to be chosen again: pages cannot keep file access). */
  private resume(id: string, origin: ImportSource | undefined): void {
    if (!origin) return;
    if (origin.kind === 'file') {
      this.resumeId = id;
      this.status.textContent = `Choose ${origin.fileName ?? 'the same file'} again to resume importing ${id}.`;
      this.file.click();
      return;
    }
    const source = origin.kind === 'url' && origin.url ? origin.url : this.builtinUrl();
    void this.importOnly({ source, id, origin }, id);
  }

  private async remove(id: string): Promise<void> {
    try {
      await this.store.models.delete(id);
      delete state.imports[id];
      delete state.expertSizes[id];
      if (state.lastModel === id) state.lastModel = null;
      save();
      this.status.textContent = this.loadedId ? this.status.textContent : `Deleted ${id}.`;
    } catch (error) {
      showError(error);
    }
    await this.refresh();
  }

  private async showStorage(): Promise<void> {
    const estimate = await navigator.storage?.estimate?.().catch(() => undefined);
    if (!estimate || estimate.quota === undefined) {
      this.storage.textContent = 'Storage: this browser does not say how much is available.';
      return;
    }
    const used = estimate.usage ?? 0;
    this.storage.dataset.used = String(used);
    this.storage.textContent = `Storage: ${formatBytes(used)} used, ${formatBytes(Math.max(0, estimate.quota - used))} available to this page.`;
  }
}

/** Shows why nothing can be imported yet; returns no choice. */
function refuse(message: string): undefined {
  showNotice(message);
  return undefined;
}

function describeLoaded(model: string, architecture: string | null, context: number, memory: EngineMemory | null): string {
  const experts = memory && memory.total_experts > 0
    ? `; ${memory.expert_slots} of ${memory.total_experts} experts fit on the GPU${memory.streaming ? ', the rest stream from the store' : ''}`
    : '';
  return `Loaded ${model} (${architecture ?? 'unknown architecture'}, context ${context} tokens${experts}).`;
}
