/** The CPU reference of the matmul kernel: every token's row is a matvec, laid out [tokens, rows]. */

import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/quant/formats';
import { mulberry32, randomBlocks, randomNormal } from '../../../src/quant/random';
import { matmul, matmulAbs, matmulDense } from '../../../src/ref/matmul';
import { matvec, matvecAbs } from '../../../src/ref/matvec';

describe('matmul (CPU reference)', () => {
  it('computes Y[t, r] = sum_c W[r, c] X[t, c] for a dense W', () => {
    // W = [[1, 2], [3, 4], [5, 6]]; X = [[1, 0], [0, 1]] gives Y = W^T laid out by token.
    const y = matmulDense(Float32Array.of(1, 2, 3, 4, 5, 6), { rows: 3, cols: 2 }, Float32Array.of(1, 0, 0, 1), 2);
    expect([...y]).toEqual([1, 3, 5, 2, 4, 6]);
  });

  it('equals one matvec per token, for quantized weights too', () => {
    const rng = mulberry32(3);
    const [rows, cols, tokens] = [3, 256, 4];
    const weights = randomBlocks(GgmlType.Q4_K, rows * cols, rng);
    const x = Float32Array.from({ length: tokens * cols }, () => randomNormal(rng));
    const y = matmul(GgmlType.Q4_K, weights, { rows, cols }, x, tokens);
    const abs = matmulAbs(GgmlType.Q4_K, weights, { rows, cols }, x, tokens);
    for (let t = 0; t < tokens; t++) {
      const xt = x.subarray(t * cols, (t + 1) * cols);
      expect([...y.subarray(t * rows, (t + 1) * rows)]).toEqual([...matvec(GgmlType.Q4_K, weights, { rows, cols }, xt)]);
      expect([...abs.subarray(t * rows, (t + 1) * rows)]).toEqual([...matvecAbs(GgmlType.Q4_K, weights, { rows, cols }, xt)]);
    }
  });

  it('gives an empty result for zero tokens', () => {
    expect(matmulDense(new Float32Array(4), { rows: 2, cols: 2 }, new Float32Array(0), 0)).toHaveLength(0);
  });

  it('rejects X that does not match the token count', () => {
    expect(() => matmulDense(new Float32Array(4), { rows: 2, cols: 2 }, new Float32Array(5), 2)).toThrow(RangeError);
    expect(() => matmulDense(new Float32Array(4), { rows: 2, cols: 2 }, new Float32Array(4), 1.5)).toThrow(RangeError);
  });
});
