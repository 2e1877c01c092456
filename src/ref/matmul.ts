/**
 * CPU reference of the matmul kernel (prefill): Y[t, r] = sum_c W[r, c] * X[t, c]
 * for n tokens, with W [rows, cols] row-major in any dequantisable GGML type,
 * X [tokens, cols] and Y [tokens, rows] row-major f32.
 *
 * As the matvec reference: W is dequantized once with src/quant, every dot
 * product is accumulated in f64 and rounded to f32 once. `matmulAbs` gives
 * sum_c |W[r, c] * X[t, c]|, the scale rounding error is measured against.
 */

import { dequantize } from '../quant/dequant';
import type { GgmlType } from '../quant/formats';
import { matvecAbsDense, matvecDense } from './matvec';
import type { MatrixShape } from './matvec';

/** Applies a per-token matvec to every row of X [tokens, cols], giving [tokens, rows]. */
function perToken(
  w: Float32Array,
  shape: MatrixShape,
  x: Float32Array,
  tokens: number,
  matvecOf: (w: Float32Array, shape: MatrixShape, x: Float32Array) => Float32Array,
): Float32Array {
  const { rows, cols } = shape;
  if (!Number.isInteger(tokens) || tokens < 0) throw new RangeError(`tokens must be an integer >= 0, got ${tokens}`);
  if (x.length !== tokens * cols) throw new RangeError(`X has ${x.length} values, expected ${tokens}x${cols}`);
  const y = new Float32Array(tokens * rows);
  for (let t = 0; t < tokens; t++) y.set(matvecOf(w, shape, x.subarray(t * cols, (t + 1) * cols)), t * rows);
  return y;
}

/** Y = X W^T for a dense f32 W [rows, cols]; f64 accumulation, one rounding to f32. */
export function matmulDense(w: Float32Array, shape: MatrixShape, x: Float32Array, tokens: number): Float32Array {
  return perToken(w, shape, x, tokens, matvecDense);
}

/** sum_c |W[r, c] * X[t, c]| for every token and row of a dense f32 W. */
export function matmulAbsDense(w: Float32Array, shape: MatrixShape, x: Float32Array, tokens: number): Float32Array {
  return perToken(w, shape, x, tokens, matvecAbsDense);
}

/** Y = X W^T with W [rows, cols] given as raw `type` bytes (a view at any offset). */
export function matmul(type: GgmlType, weights: Uint8Array, shape: MatrixShape, x: Float32Array, tokens: number): Float32Array {
  return matmulDense(dequantize(type, weights, shape.rows * shape.cols), shape, x, tokens);
}

/** sum_c |W[r, c] * X[t, c]| for every token and row, with W given as raw `type` bytes. */
export function matmulAbs(type: GgmlType, weights: Uint8Array, shape: MatrixShape, x: Float32Array, tokens: number): Float32Array {
  return matmulAbsDense(dequantize(type, weights, shape.rows * shape.cols), shape, x, tokens);
}
