/**
 * CPU reference of RMS normalisation (the rmsnorm kernel's twin):
 *
 *   y[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps) * w[i]
 *
 * The sum of squares is accumulated in f64 (as llama.cpp's CPU backend does),
 * and eps is first rounded to f32 as the kernel receives it, so the result is
 * the f32 rounding of a near-exact value: the yardstick GPU results are
 * compared against.
 */

export function rmsNorm(x: Float32Array, rows: number, cols: number, eps: number, weight?: Float32Array): Float32Array {
  if (x.length !== rows * cols) throw new RangeError(`x has ${x.length} values, expected ${rows}x${cols}`);
  if (weight && weight.length !== cols) throw new RangeError(`weight has ${weight.length} values, expected ${cols}`);
  const epsF32 = Math.fround(eps);
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let sumSquares = 0;
    for (let i = 0; i < cols; i++) sumSquares += x[base + i] * x[base + i];
    const scale = 1 / Math.sqrt(sumSquares / cols + epsF32);
    for (let i = 0; i < cols; i++) y[base + i] = x[base + i] * scale * (weight ? weight[i] : 1);
  }
  return y;
}
