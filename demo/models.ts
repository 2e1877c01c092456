/**
 * The model panel: which model to load (the built-in one served with the
 * demo, a local file, a URL, or one already in the model store), the expert
 * budget, import/load progress, and the stored models with delete buttons.
 */
import { createEngine, type LoadProgress, type ModelSource, type WebMoeEngine } from '../src/index';
import defaultModelUrl from '../models/default-moe-q8_0.gguf?url';
import { byId, element, formatBytes, showError } from './view';

const DEFAULT_MODEL_ID = 'default-moe-q8_0';

type ModelStore = Pick<WebMoeEngine, 'models'>;

export class ModelPanel {
  private engine: WebMoeEngine | undefined;
  private busy = false;
  private readonly loadButton = byId<HTMLButtonElement>('load');
  private readonly progress = byId('progress');
  private readonly bar = byId<HTMLProgressElement>('progress-bar');
  private readonly progressText = byId('progress-text');
  private readonly status = byId('model-status');
  private readonly stored = byId<HTMLUListElement>('stored');

  /** `store` lists and deletes stored models; `onEngine` gets each newly loaded engine (undefined while none is). */
  constructor(private readonly store: ModelStore, private readonly onEngine: (engine: WebMoeEngine | undefined) => void) {
    const choose = (value: string) => (document.querySelector<HTMLInputElement>(`input[name=source][value=${value}]`)!.checked = true);
    byId('file').addEventListener('change', () => choose('file'));
    byId('url').addEventListener('input', () => choose('url'));
    this.loadButton.addEventListener('click', () => void this.loadChosen());
    void this.refreshStored();
  }

  /** Loads what the radio buttons select. */
  private async loadChosen(): Promise<void> {
    const source = document.querySelector<HTMLInputElement>('input[name=source]:checked')!.value;
    if (source === 'default') return this.load(new URL(defaultModelUrl, location.href).href, DEFAULT_MODEL_ID);
    if (source === 'file') {
      const file = byId<HTMLInputElement>('file').files?.[0];
      return file ? this.load(file) : showError(new Error('choose a GGUF file first'));
    }
    const url = byId<HTMLInputElement>('url').value.trim();
    return url ? this.load(url) : showError(new Error('enter the URL of a GGUF file first'));
  }

  /** Unloads the current engine, then loads `model` in a new one. */
  private async load(model: ModelSource, modelId?: string): Promise<void> {
    if (this.busy) return;
    this.setBusy(true);
    showError(undefined);
    const previous = this.engine;
    this.engine = undefined;
    this.onEngine(undefined);
    await previous?.unload().catch(() => {});
    this.status.textContent = 'Loading…';
    this.progress.hidden = false;
    try {
      const budget = byId<HTMLInputElement>('budget').valueAsNumber;
      const engine = await createEngine({
        model,
        modelId,
        expertBudgetMB: budget > 0 ? budget : undefined,
        onProgress: (p) => this.showProgress(p),
      });
      const stats = await engine.stats();
      const memory = stats.memory;
      const experts = memory ? `, ${memory.expert_slots} of ${memory.total_experts} expert slots on the GPU${memory.streaming ? ' (streaming)' : ''}` : '';
      this.status.textContent = `Loaded ${stats.model} (${stats.architecture}, context ${stats.context_length}${experts}).`;
      this.engine = engine;
      this.onEngine(engine);
    } catch (error) {
      this.status.textContent = 'No model loaded.';
      showError(error);
    } finally {
      this.progress.hidden = true;
      this.setBusy(false);
      await this.refreshStored();
    }
  }

  private showProgress(p: LoadProgress): void {
    if (p.progress === undefined) this.bar.removeAttribute('value');
    else this.bar.value = p.progress;
    this.progressText.textContent = `${p.phase}: ${p.text}`;
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    this.loadButton.disabled = busy;
    for (const button of this.stored.querySelectorAll('button')) button.disabled = busy || button.dataset.loaded === 'true';
  }

  /** Rebuilds the list of stored models, each with Load and Delete. */
  private async refreshStored(): Promise<void> {
    let cards;
    try {
      cards = (await this.store.models.list()).data;
    } catch (error) {
      showError(error);
      return;
    }
    const loaded = this.engine && (await this.engine.stats().catch(() => undefined))?.model;
    this.stored.replaceChildren(...cards.map((card) => {
      const li = element('li', '', `${card.id} `);
      li.dataset.id = card.id;
      li.append(element('span', 'muted', `${card.architecture}, ${formatBytes(card.stored_bytes)}${card.state === 'importing' ? ', import interrupted' : ''}`));
      const load = element('button', 'load', 'Load');
      load.addEventListener('click', () => void this.load(card.id));
      const remove = element('button', 'delete', 'Delete');
      if (card.id === loaded) {
        remove.dataset.loaded = 'true';
        remove.title = 'loaded now; load another model first';
      }
      remove.addEventListener('click', () => void this.remove(card.id));
      li.append(load, remove);
      return li;
    }));
    if (cards.length === 0) this.stored.append(element('li', 'muted', 'none yet: models are stored (IndexedDB) when first loaded'));
    this.setBusy(this.busy);
  }

  private async remove(id: string): Promise<void> {
    try {
      await this.store.models.delete(id);
    } catch (error) {
      showError(error);
    }
    await this.refreshStored();
  }
}
