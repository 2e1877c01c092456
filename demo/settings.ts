/**
 * The settings form: mode, sampling, system prompt, and the two load-time
 * options (expert budget, prefetch), which take effect when the model is
 * (re)loaded: Apply reloads the loaded model with them. The budget's meaning
 * ("≈ N of M experts fit") comes from the model's expert size, learnt when
 * it was last loaded.
 */
import { state, save, type Mode, type Prefetch, type Settings } from './persist';
import { byId } from './view';

/** The load-time options as createEngine takes them. */
export interface LoadSettings {
  expertBudgetMB: number | undefined;
  prefetch: Exclude<Prefetch, 'none'> | undefined;
}

export class SettingsPanel {
  private readonly budget = byId<HTMLInputElement>('budget');
  private readonly fit = byId('budget-fit');
  private readonly prefetch = byId<HTMLSelectElement>('prefetch');
  private readonly temperature = byId<HTMLInputElement>('temperature');
  private readonly topP = byId<HTMLInputElement>('top-p');
  private readonly maxTokens = byId<HTMLInputElement>('max-tokens');
  private readonly system = byId<HTMLTextAreaElement>('system');
  private readonly apply = byId<HTMLButtonElement>('apply');
  private readonly applyNote = byId('apply-note');
  /** The model the budget is explained for, and the options it was loaded with. */
  private model: string | null = null;
  private loaded: LoadSettings | undefined;
  private readonly modeListeners: ((mode: Mode) => void)[] = [];

  constructor(private readonly onApply: () => void) {
    this.write(state.settings);
    const form = byId('settings');
    form.addEventListener('input', () => this.read());
    form.addEventListener('change', () => this.read());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!this.apply.disabled) this.onApply();
    });
    this.update();
  }

  get settings(): Settings {
    return state.settings;
  }

  get loadSettings(): LoadSettings {
    const s = state.settings;
    return { expertBudgetMB: s.budgetMB ?? undefined, prefetch: s.prefetch === 'none' ? undefined : s.prefetch };
  }

  onModeChange(listener: (mode: Mode) => void): void {
    this.modeListeners.push(listener);
  }

  /** The model now loaded (null: none) and the options it was loaded with. */
  setLoaded(model: string | null, options: LoadSettings | undefined): void {
    this.model = model;
    this.loaded = options;
    this.update();
  }

  /** Disables Apply while a load is under way. */
  setBusy(busy: boolean): void {
    this.apply.dataset.busy = String(busy);
    this.update();
  }

  private write(s: Settings): void {
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=mode]')) radio.checked = radio.value === s.mode;
    this.budget.value = s.budgetMB === null ? '' : String(s.budgetMB);
    this.prefetch.value = s.prefetch;
    this.temperature.value = String(s.temperature);
    this.topP.value = String(s.topP);
    this.maxTokens.value = String(s.maxTokens);
    this.system.value = s.system;
  }

  private read(): void {
    const before = state.settings.mode;
    const checked = document.querySelector<HTMLInputElement>('input[name=mode]:checked')?.value;
    const number = (input: HTMLInputElement, fallback: number) => (Number.isFinite(input.valueAsNumber) ? input.valueAsNumber : fallback);
    const budget = this.budget.valueAsNumber;
    const prefetch = this.prefetch.value;
    state.settings = {
      mode: checked === 'chat' ? 'chat' : 'completion',
      budgetMB: Number.isFinite(budget) && budget > 0 ? budget : null,
      prefetch: prefetch === 'pregate' || prefetch === 'affinity' ? prefetch : 'none',
      temperature: number(this.temperature, state.settings.temperature),
      topP: number(this.topP, state.settings.topP),
      maxTokens: Math.max(1, Math.round(number(this.maxTokens, state.settings.maxTokens))),
      system: this.system.value,
    };
    save();
    this.update();
    if (state.settings.mode !== before) for (const listener of this.modeListeners) listener(state.settings.mode);
  }

  private update(): void {
    const s = state.settings;
    this.system.disabled = s.mode !== 'chat';
    this.fit.textContent = this.fitText(s.budgetMB);
    const wanted = this.loadSettings;
    const differs = this.loaded !== undefined && (wanted.expertBudgetMB !== this.loaded.expertBudgetMB || wanted.prefetch !== this.loaded.prefetch);
    this.apply.disabled = this.model === null || this.apply.dataset.busy === 'true';
    this.applyNote.textContent =
      this.model === null ? 'Budget and prefetch apply when a model loads.' : differs ? `Changed: Apply reloads ${this.model} with them.` : `${this.model} runs with these.`;
  }

  /** What the budget means for the model (the one loaded, or else the last one loaded). */
  private fitText(budgetMB: number | null): string {
    const id = this.model ?? state.lastModel;
    const size = id ? state.expertSizes[id] : undefined;
    if (!size) return budgetMB === null ? 'Every expert stays on the GPU.' : 'Load a model to see how many of its experts fit.';
    const all = size.bytesPerExpert * size.totalExperts;
    if (budgetMB === null) return `Every expert stays on the GPU (${(all / 2 ** 20).toFixed(1)} MB for ${size.totalExperts}).`;
    const fit = Math.min(size.totalExperts, Math.floor((budgetMB * 2 ** 20) / size.bytesPerExpert));
    return fit >= size.totalExperts
      ? `All ${size.totalExperts} experts fit (they need ${(all / 2 ** 20).toFixed(1)} MB).`
      : `≈ ${fit} of ${size.totalExperts} experts fit; the rest stream from the store.`;
  }
}
