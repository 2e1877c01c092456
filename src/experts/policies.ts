/**
 * The replacement policies: LRU, FIFO, LFU and LFU with exponential decay,
 * plus a factory by name (which also builds next-use, next-use-policy.ts). Each only says how a use changes a key's score;
 * ordering, pins and tie-breaks live in ScoredPolicy.
 *
 * A prefetch refreshes recency but is not a use for frequency: a predicted
 * expert has not been needed yet, and counting guesses would let a bad
 * predictor inflate what the cache thinks is popular.
 */

import { NextUsePolicy } from './next-use-policy';
import { ScoredPolicy, type ExpertCachePolicy, type ExpertKey } from './policy';

/** Least recently used first: recency alone orders keys (every score stays 0). */
export class LruPolicy extends ScoredPolicy {
  readonly name = 'lru';
  protected onUse(): void {}
}

/** First in, first out: admission order; uses do not change it. */
export class FifoPolicy extends ScoredPolicy {
  readonly name = 'fifo';
  private admissions = 0;
  protected onUse(key: ExpertKey, _demand: boolean, isNew: boolean): void {
    if (isNew) this.score[key] = ++this.admissions;
  }
}

export interface FrequencyOptions {
  /**
   * Remember counts of evicted keys, so a returning expert keeps its record
   * (true), or start every admission from zero (false, "in-cache" LFU).
   */
  keepHistory?: boolean;
}

/** Least frequently used first (demand uses counted); ties to the least recently used. */
export class LfuPolicy extends ScoredPolicy {
  readonly name = 'lfu';
  /** history[key]: the count at the key's last use, kept across evictions. */
  private readonly history: number[] = [];
  private readonly keepHistory: boolean;

  constructor(capacity: number, options: FrequencyOptions = {}) {
    super(capacity);
    this.keepHistory = options.keepHistory ?? true;
  }

  protected onUse(key: ExpertKey, demand: boolean, isNew: boolean): void {
    const before = isNew ? (this.keepHistory ? this.history[key] ?? 0 : 0) : this.score[key];
    const count = before + (demand ? 1 : 0);
    this.score[key] = count;
    if (this.keepHistory) this.history[key] = count;
  }
}

export interface DecayOptions extends FrequencyOptions {
  /** Demand accesses (to any key) after which a use weighs half. */
  halfLifeAccesses: number;
}

/** log2(2^a + 2^b), exact for -Infinity and without overflow. */
export function log2AddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const hi = Math.max(a, b);
  return hi + Math.log2(1 + 2 ** (Math.min(a, b) - hi));
}

/**
 * Frequency with exponential decay: a key's weight is the sum over its uses
 * of 2^-(age / half-life), age counted in demand accesses. Every key decays by
 * the same factor at each access, so the order only changes at uses; the
 * score kept is log2 of the weight scaled to time zero, log2(sum 2^(t_use /
 * half-life)), which grows linearly with time instead of overflowing.
 */
export class LfuDecayPolicy extends ScoredPolicy {
  readonly name = 'lfu-decay';
  readonly halfLifeAccesses: number;
  /** history[key]: the log score at the key's last use, kept across evictions. */
  private readonly history: number[] = [];
  private readonly keepHistory: boolean;

  constructor(capacity: number, options: DecayOptions) {
    super(capacity);
    if (!(options.halfLifeAccesses > 0)) throw new RangeError(`halfLifeAccesses must be positive, got ${options.halfLifeAccesses}`);
    this.halfLifeAccesses = options.halfLifeAccesses;
    this.keepHistory = options.keepHistory ?? true;
  }

  /** The key's current weight: sum over uses of 2^-(age / half-life). */
  weight(key: ExpertKey): number {
    const logScore = this.has(key) ? this.score[key] : this.history[key] ?? -Infinity;
    return 2 ** (logScore - this.demandClock / this.halfLifeAccesses);
  }

  protected onUse(key: ExpertKey, demand: boolean, isNew: boolean): void {
    let logScore = isNew ? (this.keepHistory ? this.history[key] ?? -Infinity : -Infinity) : this.score[key];
    if (demand) logScore = log2AddExp(logScore, this.demandClock / this.halfLifeAccesses);
    this.score[key] = logScore;
    if (this.keepHistory) this.history[key] = logScore;
  }
}

export const POLICY_NAMES = ['lru', 'fifo', 'lfu', 'lfu-decay', 'next-use'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface PolicyOptions {
  /** For lfu-decay and next-use; default: DEFAULT_HALF_LIFE_ACCESSES. */
  halfLifeAccesses?: number;
  keepHistory?: boolean;
  /** For next-use: the cycle of layers its keys come from (keys are layer * nExperts + expert); default one layer. */
  shape?: { nLayers: number; nExperts: number; topK: number };
}

/**
 * About ten tokens of gpt-oss-20b (96 accesses per token) or sixteen of
 * Mixtral (64). Of half-lives 32 to 4096 it hit most often on both shared
 * trace sets at a 25% budget, and within 0.002 of the best at 12.5%.
 */
export const DEFAULT_HALF_LIFE_ACCESSES = 1024;

const FLAT_SHAPE = { nLayers: 1, nExperts: Number.MAX_SAFE_INTEGER, topK: 1 };

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

export function createPolicy(name: PolicyName, capacity: number, options: PolicyOptions = {}): ExpertCachePolicy {
  switch (name) {
    case 'lru':
      return new LruPolicy(capacity);
    case 'fifo':
      return new FifoPolicy(capacity);
    case 'lfu':
      return new LfuPolicy(capacity, options);
    case 'lfu-decay':
      return new LfuDecayPolicy(capacity, { halfLifeAccesses: options.halfLifeAccesses ?? DEFAULT_HALF_LIFE_ACCESSES, keepHistory: options.keepHistory });
    case 'next-use':
      // Without a shape every key counts as one layer's: no cycle, so recent frequency alone ranks.
      return new NextUsePolicy(capacity, { ...(options.shape ?? FLAT_SHAPE), halfLifeAccesses: options.halfLifeAccesses ?? DEFAULT_HALF_LIFE_ACCESSES });
  }
}
