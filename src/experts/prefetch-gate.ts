/**
 * Which predicted experts a prefetch loads. Every load costs the bytes of an
 * expert whether or not it is used, so a guess is loaded only when the
 * predictor's confidence (predictors.ts `predictScored`) reaches
 * `minConfidence`, and at most `maxLoadsPerToken` guesses are loaded per
 * decoded token (a byte allowance in expert units). A guess already resident
 * costs nothing and is not counted.
 *
 * The trace simulator and the engine's streaming scheduler use the same
 * gate, so what the simulator measures is what the engine does.
 */

import type { ScoredExpert } from './predictors';

export interface PrefetchGateOptions {
  /** Smallest confidence loaded, 0..1 (default 0: every guess). */
  minConfidence?: number;
  /** Most prefetch loads per token (default unlimited). */
  maxLoadsPerToken?: number;
}

export class PrefetchGate {
  readonly minConfidence: number;
  readonly maxLoadsPerToken: number;
  private left: number;

  constructor(options: PrefetchGateOptions = {}) {
    this.minConfidence = options.minConfidence ?? 0;
    this.maxLoadsPerToken = options.maxLoadsPerToken ?? Infinity;
    if (!(this.minConfidence >= 0 && this.minConfidence <= 1)) throw new RangeError(`minConfidence must be in 0..1, got ${this.minConfidence}`);
    if (!(this.maxLoadsPerToken >= 0)) throw new RangeError(`maxLoadsPerToken must be >= 0, got ${this.maxLoadsPerToken}`);
    this.left = this.maxLoadsPerToken;
  }

  /** A new token: its allowance of loads starts full. */
  beginToken(): void {
    this.left = this.maxLoadsPerToken;
  }

  /** Loads this token may still make. */
  get loadsLeft(): number {
    return this.left;
  }

  /** The guesses confident enough to load, best first. */
  confident(guesses: readonly ScoredExpert[]): ScoredExpert[] {
    return guesses.filter((g) => g.score >= this.minConfidence);
  }

  /** Takes one load from this token's allowance; false when it is spent. */
  take(): boolean {
    if (this.left < 1) return false;
    this.left--;
    return true;
  }

  /** Gives back a load taken for a guess the cache then refused. */
  refund(): void {
    this.left = Math.min(this.maxLoadsPerToken, this.left + 1);
  }
}
