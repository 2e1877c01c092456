/**
 * CPU reference of the matvec kernel (decode): y[r] = sum_c W[r, c] * x[c] for
 * a row-major weight matrix W [rows, cols] stored in any dequantisable GGML
 * type.
 *
 * W is dequantized with src/quant (bit for bit as llama.cpp does it, and as
 * the GPU decoders do), then each row's dot product is accumulated in f64 and
 * rounded to f32 once: a near-exact yardstick, so a GPU result's distance from
 * it is the GPU's own rounding. `matvecAbs` gives sum_c |W[r, c] * x[c]|, the
 * scale that rounding error is measured against.
 */

import { dequantize } from '../quant/dequant';
import type { GgmlType } from '../quant/formats';

export interface MatrixShape {
  rows: number;
  cols: number;
}

function checkShape(w: Float32Array, { rows, cols }: MatrixShape, x: Float32Array, xLength: number): void {
  if (w.length !== rows * cols) throw new RangeError(`W has ${w.length} values, expected ${rows}x${cols}`);
  if (x.length !== xLength) throw new RangeError(`x has ${x.length} values, expected ${xLength}`);
}

/** sum_c f(W[r, c] * x[c]) for every row, in f64. */
function rowSums(w: Float32Array, shape: MatrixShape, x: Float32Array, f: (product: number) => number): Float64Array {
  const { rows, cols } = shape;
  const sums = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += f(w[r * cols + c] * x[c]);
    sums[r] = sum;
  }
  return sums;
}

const identity = (v: number): number => v;

/** y = W x for a dense f32 W [rows, cols]; f64 accumulation, one rounding to f32. */
export function matvecDense(w: Float32Array, shape: MatrixShape, x: Float32Array): Float32Array {
  checkShape(w, shape, x, shape.cols);
  return Float32Array.from(rowSums(w, shape, x, identity));
}

/** sum_c |W[r, c] * x[c]| for every row of a dense f32 W. */
export function matvecAbsDense(w: Float32Array, shape: MatrixShape, x: Float32Array): Float32Array {
  checkShape(w, shape, x, shape.cols);
  return Float32Array.from(rowSums(w, shape, x, Math.abs));
}

/** y = W x with W [rows, cols] given as raw `type` bytes (a view at any offset). */
export function matvec(type: GgmlType, weights: Uint8Array, shape: MatrixShape, x: Float32Array): Float32Array {
  return matvecDense(dequantize(type, weights, shape.rows * shape.cols), shape, x);
}

/** sum_c |W[r, c] * x[c]| for every row, with W given as raw `type` bytes. */
export function matvecAbs(type: GgmlType, weights: Uint8Array, shape: MatrixShape, x: Float32Array): Float32Array {
  return matvecAbsDense(dequantize(type, weights, shape.rows * shape.cols), shape, x);
}
