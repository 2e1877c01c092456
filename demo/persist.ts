/**
 * What the demo keeps across reloads, in localStorage: settings, the
 * conversation, where each import came from (so an interrupted one can be
 * resumed), each model's expert size (so the budget can be explained before
 * loading), and the last model loaded. Whatever is stored is read back field
 * by field: a value of the wrong kind falls back to its default.
 */

export type Mode = 'chat' | 'completion';
export type Prefetch = 'none' | 'pregate' | 'affinity';

export interface Settings {
  mode: Mode;
  /** GPU memory for experts in MiB; null keeps every expert resident. */
  budgetMB: number | null;
  prefetch: Prefetch;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Chat mode only. */
  system: string;
}

export interface StoredMessage {
  role: 'user' | 'assistant';
  content: string;
  /** The reply was stopped before its end. */
  stopped?: boolean;
}

/** Where an import came from: the built-in model, a URL, or a local file (which must be chosen again to resume). */
export interface ImportSource {
  kind: 'builtin' | 'url' | 'file';
  url?: string;
  fileName?: string;
}

/** One model's expert geometry, learnt when it was loaded. */
export interface ExpertSize {
  bytesPerExpert: number;
  totalExperts: number;
}

export interface DemoState {
  settings: Settings;
  messages: StoredMessage[];
  imports: Record<string, ImportSource>;
  expertSizes: Record<string, ExpertSize>;
  lastModel: string | null;
}

const KEY = 'webmoe-demo-v1';

export const DEFAULT_SETTINGS: Settings = {
  // The built-in model is a completion model.
  mode: 'completion',
  budgetMB: null,
  prefetch: 'none',
  temperature: 0.7,
  topP: 0.95,
  maxTokens: 64,
  system: '',
};

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const oneOf = <T extends string>(v: unknown, options: readonly T[], fallback: T): T => (options.includes(v as T) ? (v as T) : fallback);

function readSettings(v: unknown): Settings {
  const s = isObject(v) ? v : {};
  const d = DEFAULT_SETTINGS;
  return {
    mode: oneOf(s.mode, ['chat', 'completion'], d.mode),
    budgetMB: typeof s.budgetMB === 'number' && s.budgetMB > 0 ? s.budgetMB : null,
    prefetch: oneOf(s.prefetch, ['none', 'pregate', 'affinity'], d.prefetch),
    temperature: num(s.temperature, d.temperature),
    topP: num(s.topP, d.topP),
    maxTokens: num(s.maxTokens, d.maxTokens),
    system: typeof s.system === 'string' ? s.system : d.system,
  };
}

function readMessages(v: unknown): StoredMessage[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((m): StoredMessage[] => {
    if (!isObject(m) || typeof m.content !== 'string' || (m.role !== 'user' && m.role !== 'assistant')) return [];
    return [{ role: m.role, content: m.content, ...(m.stopped === true ? { stopped: true } : {}) }];
  });
}

function readRecord<T>(v: unknown, read: (item: Json) => T | undefined): Record<string, T> {
  const out: Record<string, T> = {};
  if (!isObject(v)) return out;
  for (const [key, item] of Object.entries(v)) {
    const value = isObject(item) ? read(item) : undefined;
    if (value !== undefined) out[key] = value;
  }
  return out;
}

export function loadState(): DemoState {
  let raw: unknown;
  try {
    raw = JSON.parse(localStorage.getItem(KEY) ?? 'null');
  } catch {
    raw = null; // Unreadable: start afresh.
  }
  const s = isObject(raw) ? raw : {};
  return {
    settings: readSettings(s.settings),
    messages: readMessages(s.messages),
    imports: readRecord(s.imports, (i): ImportSource | undefined => {
      const kind = oneOf(i.kind, ['builtin', 'url', 'file'], 'file');
      return { kind, ...(typeof i.url === 'string' ? { url: i.url } : {}), ...(typeof i.fileName === 'string' ? { fileName: i.fileName } : {}) };
    }),
    expertSizes: readRecord(s.expertSizes, (i): ExpertSize | undefined =>
      typeof i.bytesPerExpert === 'number' && typeof i.totalExperts === 'number' ? { bytesPerExpert: i.bytesPerExpert, totalExperts: i.totalExperts } : undefined),
    lastModel: typeof s.lastModel === 'string' ? s.lastModel : null,
  };
}

/** The state every panel shares; `save()` writes it. */
export const state: DemoState = loadState();

export function save(): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(state));
  } catch {
    // Storage full or disabled: the page keeps working, only without memory across reloads.
  }
}
