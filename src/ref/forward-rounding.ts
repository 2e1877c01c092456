/**
 * Optional emulation of what llama.cpp's CPU backend does to a matrix
 * multiplication's input: before multiplying by weights of a quantized (or
 * half-precision) type it converts the activations to that type's partner
 * format ("vec_dot_type"): F16 → f16, BF16 → bf16, Q8_0/Q4_0/Q5_0/MXFP4/IQ4_NL →
 * Q8_0 (blocks of 32, f16 scale), Q4_1/Q5_1 → Q8_1 (same values), K-quants, the other i-quants and TQ1_0/TQ2_0 →
 * Q8_K (blocks of 256, f32 scale). Applying the same rounding here makes the
 * reference agree with llama.cpp on quantized models to near f32 precision,
 * which checks the dequantizers and the graph far more tightly than top-1
 * agreement does. The plain reference (no rounding) stays the yardstick for
 * kernels that keep activations in f32.
 */

import { GgmlType } from '../quant/formats';
import { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits } from '../quant/half';

/** What a matrix input is rounded to before a product with weights of some type. */
export type InputRounding = 'none' | 'f16' | 'bf16' | 'q8_0' | 'q8_k';

/** How llama.cpp's CPU backend rounds the input of a product with weights of `type`. */
export function inputRoundingFor(type: GgmlType): InputRounding {
  switch (type) {
    case GgmlType.F32:
      return 'none';
    case GgmlType.F16:
      return 'f16';
    case GgmlType.BF16:
      return 'bf16';
    case GgmlType.Q4_0:
    case GgmlType.Q4_1:
    case GgmlType.Q5_0:
    case GgmlType.Q5_1:
    case GgmlType.Q8_0:
    case GgmlType.MXFP4:
    case GgmlType.IQ4_NL:
      return 'q8_0';
    default:
      return 'q8_k';
  }
}

/** A copy of x rounded as `rounding` says (x itself for 'none'); x's length must be a whole number of blocks. */
export function roundInput(x: Float32Array, rounding: InputRounding): Float32Array {
  switch (rounding) {
    case 'none':
      return x;
    case 'f16':
      return x.map((v) => f16BitsToF32(f32ToF16Bits(v)));
    case 'bf16':
      return x.map((v) => bf16BitsToF32(f32ToBf16Bits(v)));
    case 'q8_0':
      return roundBlocks(x, 32, roundQ8_0Block);
    case 'q8_k':
      return roundBlocks(x, 256, roundQ8KBlock);
  }
}

function roundBlocks(x: Float32Array, blockSize: number, roundBlock: (block: Float32Array) => void): Float32Array {
  if (x.length % blockSize !== 0) throw new RangeError(`${x.length} values are not whole blocks of ${blockSize}`);
  const out = x.slice();
  for (let b = 0; b < out.length; b += blockSize) roundBlock(out.subarray(b, b + blockSize));
  return out;
}

const f = Math.fround;

/** Q8_0 as x86 ggml quantizes activations: q = round-half-even(x * 127/amax), value = q * f16(amax/127). */
function roundQ8_0Block(block: Float32Array): void {
  let amax = 0;
  for (const v of block) amax = Math.max(amax, Math.abs(v));
  const d = f16BitsToF32(f32ToF16Bits(f(amax / 127)));
  const inverse = amax !== 0 ? f(127 / amax) : 0;
  for (let i = 0; i < block.length; i++) block[i] = roundHalfEven(f(block[i] * inverse)) * d;
}

/** Q8_K: scale from the value of largest magnitude m, q = min(127, round-half-even(x * -127/m)), value = q / (-127/m). */
function roundQ8KBlock(block: Float32Array): void {
  let amax = 0;
  let max = 0;
  for (const v of block) {
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  if (amax === 0) {
    block.fill(0);
    return;
  }
  const inverseScale = f(-127 / max);
  const d = f(1 / inverseScale);
  for (let i = 0; i < block.length; i++) block[i] = f(Math.min(127, roundHalfEven(f(inverseScale * block[i]))) * d);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends .5 up; ties go to the even neighbour instead.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
