/**
 * Measures of agreement between two runs' logits (ours against a reference
 * such as llama.cpp, or a GPU run against the CPU reference), position by
 * position.
 *
 * The relative difference of a position is max_i |ours_i - ref_i| divided by
 * the spread (max - min) of the reference's logits there: scale-free, and
 * what a sampler sees, since adding a constant to all logits changes nothing.
 */

export interface PositionAgreement {
  relativeDiff: number;
  /** Whether both runs rank the same token first. */
  top1Agrees: boolean;
}

export interface LogitsAgreement {
  positions: PositionAgreement[];
  maxRelativeDiff: number;
  medianRelativeDiff: number;
  /** Fraction of positions whose top-1 tokens agree (1 when there are no positions). */
  top1Agreement: number;
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

export function comparePosition(ours: Float32Array, reference: Float32Array): PositionAgreement {
  if (ours.length !== reference.length) throw new RangeError(`rows of ${ours.length} and ${reference.length} logits`);
  let min = Infinity;
  let max = -Infinity;
  let diff = 0;
  for (let i = 0; i < reference.length; i++) {
    min = Math.min(min, reference[i]);
    max = Math.max(max, reference[i]);
    // A NaN on either side must count as a total disagreement, not vanish in Math.max.
    const d = Math.abs(ours[i] - reference[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
  }
  const spread = max - min;
  return { relativeDiff: spread > 0 ? diff / spread : diff === 0 ? 0 : Infinity, top1Agrees: argmax(ours) === argmax(reference) };
}

/** Compares the first `count` positions (all of the shorter run by default). */
export function compareLogits(ours: Float32Array[], reference: Float32Array[], count = Math.min(ours.length, reference.length)): LogitsAgreement {
  const positions = Array.from({ length: count }, (_, p) => comparePosition(ours[p], reference[p]));
  const diffs = positions.map((p) => p.relativeDiff).sort((a, b) => a - b);
  return {
    positions,
    maxRelativeDiff: diffs.length > 0 ? diffs[diffs.length - 1] : 0,
    medianRelativeDiff: diffs.length > 0 ? diffs[Math.floor((diffs.length - 1) / 2)] : 0,
    top1Agreement: count > 0 ? positions.filter((p) => p.top1Agrees).length / count : 1,
  };
}

/** Natural-log cross-entropy of each next token: logits[p] predicts tokens[p + 1], for p = 0..T-2. */
export function nextTokenNll(logits: readonly Float32Array[], tokens: readonly number[]): number[] {
  const out: number[] = [];
  for (let p = 0; p + 1 < tokens.length; p++) {
    const row = logits[p]!;
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    out.push(Math.log(sum) + max - row[tokens[p + 1]!]!);
  }
  return out;
}

/** exp(mean next-token cross-entropy): the perplexity of `tokens` under `logits`. */
export function perplexity(logits: readonly Float32Array[], tokens: readonly number[]): number {
  const nll = nextTokenNll(logits, tokens);
  return Math.exp(nll.reduce((a, b) => a + b, 0) / nll.length);
}
