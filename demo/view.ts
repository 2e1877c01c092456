/** Small DOM and formatting helpers shared by the demo's panels. */
import { toWebMoeError, type CompletionUsage } from '../src/index';

/** The element with this id (the page defines every id the demo uses). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.className = className;
  el.textContent = text;
  return el;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 2 ** 20) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 2 ** 30) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** A failure as `CODE: message`. */
export function describeError(error: unknown): string {
  const e = toWebMoeError(error);
  return `${e.code}: ${e.message}`;
}

/** Shows a failure in the page's error line (or clears it). */
export function showError(error: unknown | undefined): void {
  byId('error').textContent = error === undefined ? '' : describeError(error);
}

/** One line about a finished request: tokens, speed and expert traffic. */
export function formatUsage(u: CompletionUsage, finishReason: string): string {
  const rate = (x: number, what: string) => (x > 0 ? [`${what} ${x.toFixed(1)} tok/s`] : []);
  const m = u.moe;
  return [
    `${u.prompt_tokens} prompt + ${u.completion_tokens} generated tokens (${u.cached_prompt_tokens} reused), finish: ${finishReason}`,
    ...rate(u.prefill_tokens_per_s, 'prefill'),
    ...rate(u.decode_tokens_per_s, 'decode'),
    `experts: ${m.expert_hits} hits, ${m.expert_misses} misses (hit rate ${(m.hit_rate * 100).toFixed(0)}%)`,
    `${formatBytes(m.bytes_streamed)} streamed`,
    `stall ${m.stall_ms.toFixed(0)} ms`,
  ].join(' · ');
}
