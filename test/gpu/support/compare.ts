/**
 * Comparisons of GPU output with CPU references that report where and by how
 * much they differ, so a failing assertion says more than "not equal".
 */

export interface Mismatch {
  index: number;
  actual: number;
  expected: number;
}

/**
 * The first element whose value differs from the reference, comparing f32 bit
 * patterns except that +0 equals -0 (WGSL does not promise the sign of zero)
 * and any NaN equals any NaN. Undefined when the arrays match exactly.
 */
export function firstMismatch(actual: Float32Array, expected: Float32Array): Mismatch | undefined {
  if (actual.length !== expected.length) {
    return { index: Math.min(actual.length, expected.length), actual: NaN, expected: NaN };
  }
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const same = a === e || (Number.isNaN(a) && Number.isNaN(e));
    if (!same) return { index: i, actual: a, expected: e };
  }
  return undefined;
}

export interface WorstError extends Mismatch {
  /** |actual - expected| / |expected|; Infinity where expected is 0 and actual is not. */
  relativeError: number;
}

/** The element with the largest relative error (lengths must match). */
export function worstRelativeError(actual: Float32Array, expected: Float32Array): WorstError {
  if (actual.length !== expected.length) {
    throw new RangeError(`lengths differ: ${actual.length} actual, ${expected.length} expected`);
  }
  let worst: WorstError = { index: -1, actual: NaN, expected: NaN, relativeError: 0 };
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i] - expected[i]);
    const relativeError = difference === 0 ? 0 : difference / Math.abs(expected[i]);
    // NaN compares false, so it must be caught explicitly.
    if (relativeError > worst.relativeError || Number.isNaN(relativeError)) {
      worst = { index: i, actual: actual[i], expected: expected[i], relativeError: Number.isNaN(relativeError) ? Infinity : relativeError };
    }
  }
  return worst;
}
