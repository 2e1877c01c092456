/**
 * The small numeric steps of the CPU reference forward pass. Dot products and
 * sums are accumulated in f64 (JavaScript numbers) and stored as f32, so each
 * result is the f32 rounding of a near-exact value.
 */

/**
 * out[r] = sum_c w[wOffset + r*cols + c] * x[c] for r < rows: a matrix stored
 * as GGUF stores it (ggml dims [cols, rows]: each output row is contiguous).
 */
export function matVec(out: Float32Array, w: Float32Array, x: Float32Array, rows: number, cols: number, wOffset = 0): void {
  for (let r = 0; r < rows; r++) {
    const base = wOffset + r * cols;
    // Four independent f64 sums run about twice as fast as one and are as exact for f32 inputs.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let c = 0;
    for (; c + 3 < cols; c += 4) {
      s0 += w[base + c] * x[c];
      s1 += w[base + c + 1] * x[c + 1];
      s2 += w[base + c + 2] * x[c + 2];
      s3 += w[base + c + 3] * x[c + 3];
    }
    for (; c < cols; c++) s0 += w[base + c] * x[c];
    out[r] = s0 + s1 + (s2 + s3);
  }
}

/** a[i] += b[i] */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

/** a[i] += scale * b[i] */
export function addScaled(a: Float32Array, b: Float32Array, scale: number): void {
  for (let i = 0; i < a.length; i++) a[i] += scale * b[i];
}

/** a[i] *= scale, the scale rounded to f32 as ggml_scale takes it; nothing when it is 1. */
export function scaleInPlace(a: Float32Array, scale: number): void {
  if (scale === 1) return;
  const f = Math.fround(scale);
  for (let i = 0; i < a.length; i++) a[i] *= f;
}

/** Numerically stable softmax of x[0..n) in place. */
export function softmaxInPlace(x: Float32Array, n = x.length): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[i] - max);
    x[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) x[i] /= sum;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** SwiGLU in place: gate[i] = silu(gate[i]) * up[i], silu(x) = x * sigmoid(x). */
export function swiGluInPlace(gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < gate.length; i++) gate[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

/**
 * RMSNorm of `count` consecutive vectors of length `dim` in x, each scaled by
 * weight[0..dim): x / sqrt(mean(x^2) + eps) * w. eps is rounded to f32 first,
 * as llama.cpp stores it.
 */
export function rmsNormInPlace(x: Float32Array, weight: Float32Array, dim: number, count: number, eps: number): void {
  const epsF32 = Math.fround(eps);
  for (let v = 0; v < count; v++) {
    const base = v * dim;
    let sumSquares = 0;
    for (let i = 0; i < dim; i++) sumSquares += x[base + i] * x[base + i];
    const scale = 1 / Math.sqrt(sumSquares / dim + epsF32);
    for (let i = 0; i < dim; i++) x[base + i] = x[base + i] * scale * weight[i];
  }
}
