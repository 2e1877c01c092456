/**
 * The figures beside the heatmap: prefill and decode speed, cache hit rate,
 * bytes streamed per token, stall time, experts resident and GPU memory.
 * While a reply streams they are estimated from the routing stream and the
 * clock (marked "≈"); the last chunk's usage replaces them with the engine's
 * own figures, and stats() after each reply gives memory and residency.
 */
import type { CompletionUsage } from '../src/index';
import type { EngineMemory, RoutingTally } from './routing';
import { byId, formatBytes, formatPercent } from './view';

type Figure = 'prefill' | 'decode' | 'hit' | 'bytes' | 'stall' | 'resident' | 'memory' | 'context';

export class Figures {
  private readonly cells = new Map<Figure, HTMLElement>();
  private startedAt = 0;
  private firstAt: number | undefined;
  /** Tokens after the prompt: from routing when it streams, else text deltas. */
  private generated = 0;
  private bytesPerExpert = 0;
  private budgetBytes: number | undefined;
  private contextLength = 0;

  constructor() {
    for (const name of ['prefill', 'decode', 'hit', 'bytes', 'stall', 'resident', 'memory', 'context'] as const) this.cells.set(name, byId(`fig-${name}`));
    this.clear();
  }

  clear(): void {
    for (const cell of this.cells.values()) cell.textContent = '–';
  }

  /** A model was loaded: its expert size, budget and context. */
  setModel(memory: EngineMemory | null, budgetMB: number | undefined, contextLength: number): void {
    this.bytesPerExpert = memory && memory.expert_slots > 0 ? memory.expert_bytes / memory.expert_slots : 0;
    this.budgetBytes = budgetMB === undefined ? undefined : budgetMB * 2 ** 20;
    this.contextLength = contextLength;
    this.clear();
    this.setMemory(memory);
  }

  begin(): void {
    this.startedAt = performance.now();
    this.firstAt = undefined;
    this.generated = 0;
    for (const name of ['prefill', 'decode', 'hit', 'bytes', 'stall'] as const) this.set(name, '…');
  }

  /** Routing of `tokens` more tokens arrived (the first delta holds the prompt). */
  onRouting(tokens: number, tally: RoutingTally): void {
    const now = performance.now();
    if (this.firstAt === undefined) {
      this.firstAt = now;
      if (tokens > 0) this.set('prefill', `≈ ${rate(tokens, now - this.startedAt)}`);
    } else {
      this.generated += tokens;
      this.set('decode', `≈ ${rate(this.generated, now - this.firstAt)}`);
    }
    const accesses = tally.totalHits + tally.totalMisses;
    if (accesses > 0) this.set('hit', `≈ ${formatPercent(tally.totalHits / accesses)}`);
    if (tally.tokens > 0 && this.bytesPerExpert > 0) this.set('bytes', `≈ ${formatBytes((tally.totalMisses * this.bytesPerExpert) / tally.tokens)}`);
    const resident = tally.residentCount;
    if (resident !== undefined) this.set('resident', `${resident} of ${tally.shape.layers.length * tally.shape.experts} experts`);
  }

  /** A piece of text arrived; without routing, text pieces stand for tokens. */
  onText(routingSeen: boolean): void {
    if (routingSeen) return;
    const now = performance.now();
    if (this.firstAt === undefined) {
      this.firstAt = now;
      return;
    }
    this.generated++;
    this.set('decode', `≈ ${rate(this.generated, now - this.firstAt)}`);
  }

  /** The request ended without usage (stopped or failed): figures still waiting show none. */
  abandon(): void {
    for (const cell of this.cells.values()) if (cell.textContent === '…') cell.textContent = '–';
  }

  /** The engine's figures for the whole request. */
  finish(u: CompletionUsage): void {
    const m = u.moe;
    this.set('prefill', u.prefill_tokens_per_s > 0 ? `${u.prefill_tokens_per_s.toFixed(1)} tok/s` : '–');
    this.set('decode', u.decode_tokens_per_s > 0 ? `${u.decode_tokens_per_s.toFixed(1)} tok/s` : '–');
    this.set('hit', `${formatPercent(m.hit_rate)} (${m.expert_hits} hits, ${m.expert_misses} misses)`);
    const fed = u.prompt_tokens - u.cached_prompt_tokens + u.completion_tokens;
    this.set('bytes', fed > 0 ? `${formatBytes(m.bytes_streamed / fed)} (${formatBytes(m.bytes_streamed)} in all)` : formatBytes(m.bytes_streamed));
    this.set('stall', `${m.stall_ms.toFixed(0)} ms`);
    if (this.contextLength > 0) this.set('context', `${u.total_tokens} of ${this.contextLength} tokens`);
  }

  /** Memory and residency from stats(). */
  setMemory(memory: EngineMemory | null): void {
    if (!memory) {
      this.set('resident', '–');
      this.set('memory', '–');
      return;
    }
    const resident = memory.resident_experts.reduce((sum, ids) => sum + ids.length, 0);
    this.set('resident', `${resident} of ${memory.total_experts} experts`);
    const budget = this.budgetBytes === undefined ? 'no budget: all resident' : `budget ${formatBytes(this.budgetBytes)}`;
    this.set('memory', `${formatBytes(memory.expert_bytes)} of experts (${budget}), ${formatBytes(memory.shared_weight_bytes + memory.kv_cache_bytes)} shared and KV`);
  }

  private set(name: Figure, text: string): void {
    this.cells.get(name)!.textContent = text;
  }
}

function rate(tokens: number, ms: number): string {
  return ms > 0 ? `${((tokens * 1000) / ms).toFixed(1)} tok/s` : '…';
}
