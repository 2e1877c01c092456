/**
 * What one bench:peers run measures, and how runs become the figures quoted:
 * medians with their min-max, and webmoe/peer ratios of runs taken in
 * alternation (webmoe, peer, webmoe, peer, ...), pair by pair.
 */

import type { Completion, EngineStats } from '../../src/api/types';

/** The systems compared. wllama-webgpu is wllama asked to offload every layer to WebGPU. */
export type SystemKey = 'webmoe' | 'llama.cpp' | 'wllama-wasm' | 'wllama-webgpu';
export type Environment = 'node' | 'browser';

export interface RunFigures {
  /** From the call that opens the model (already in the system's store or cache) until it can generate. */
  loadMs: number;
  promptTokens: number;
  completionTokens: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  /** Peak resident memory of the run's processes (Node: the run's process; browser: every browser process), bytes. */
  peakRssBytes: number;
  /** The same processes' resident memory before the model was opened, bytes. */
  baseRssBytes: number;
  /** webmoe: GPU buffers it holds (shared weights + expert slots + KV cache), bytes. */
  gpuBytes?: number;
  /** webmoe: bytes of its expert slots. */
  expertBytes?: number;
  /** Where the layers ran, as the system reported it (adapter, or llama.cpp's buffers). */
  adapter?: string;
  threads?: number;
  /** The generated text (the same greedy text across systems is a check that they ran the same model). */
  text?: string;
}

/** A webmoe run's figures from its completion and the engine's stats after it (the same in Node and in the page). */
export function webmoeFigures(loadMs: number, result: Completion, stats: EngineStats): Omit<RunFigures, 'peakRssBytes' | 'baseRssBytes'> {
  const memory = stats.memory;
  return {
    loadMs,
    promptTokens: result.usage.prompt_tokens,
    completionTokens: result.usage.completion_tokens,
    prefillTokPerS: result.usage.prefill_tokens_per_s,
    decodeTokPerS: result.usage.decode_tokens_per_s,
    gpuBytes: memory ? memory.shared_weight_bytes + memory.expert_bytes + memory.kv_cache_bytes : undefined,
    expertBytes: memory?.expert_bytes,
    adapter: stats.adapter ? `${stats.adapter.vendor} ${stats.adapter.architecture} ${stats.adapter.description}`.trim() : undefined,
    text: result.choices[0].text,
  };
}

export interface RunRecord {
  env: Environment;
  system: SystemKey;
  /** PeerFile.key */
  file: string;
  /** webmoe's expert budget as a fraction of the routed experts' bytes; 1 for the peers. */
  budget: number;
  /** Alternation round (0-based); runs of different systems with the same round were taken back to back. */
  round: number;
  figures?: RunFigures;
  /** Why the run gave no figures (the system could not run it here), in the system's own words where it gave any. */
  error?: string;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: readonly number[]): Spread | undefined {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return undefined;
  const mid = finite.length >> 1;
  const median = finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
  return { median, min: finite[0], max: finite[finite.length - 1], n: finite.length };
}

export type FigureKey = 'loadMs' | 'prefillTokPerS' | 'decodeTokPerS' | 'peakMemBytes';

/** A run's figure; memory is what the run added over the processes' resident set before it. */
export function figureOf(f: RunFigures, key: FigureKey): number {
  return key === 'peakMemBytes' ? f.peakRssBytes - f.baseRssBytes : f[key];
}

/**
 * webmoe/peer for `key` from the runs of one environment and file, matched by
 * round (each pair was taken back to back), at webmoe's full budget.
 */
export function ratios(records: readonly RunRecord[], env: Environment, file: string, peer: SystemKey, key: FigureKey): Spread | undefined {
  const at = (system: SystemKey, round: number) =>
    records.find((r) => r.env === env && r.file === file && r.system === system && r.round === round && r.budget === 1 && r.figures);
  const values: number[] = [];
  for (const mine of records) {
    if (mine.env !== env || mine.file !== file || mine.system !== 'webmoe' || mine.budget !== 1 || !mine.figures) continue;
    const theirs = at(peer, mine.round);
    if (theirs?.figures) values.push(figureOf(mine.figures, key) / figureOf(theirs.figures, key));
  }
  return spread(values);
}

/** Every run's `key` for one system, environment, file and budget. */
export function figures(records: readonly RunRecord[], env: Environment, file: string, system: SystemKey, budget: number, key: FigureKey): Spread | undefined {
  return spread(
    records
      .filter((r) => r.env === env && r.file === file && r.system === system && r.budget === budget && r.figures)
      .map((r) => figureOf(r.figures!, key)),
  );
}
