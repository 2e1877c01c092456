/**
 * Conversions between f32 and the small float encodings found in GGUF tensors:
 * IEEE binary16 (f16), bfloat16 (bf16) and E8M0 (the power-of-two block scale
 * of MXFP4). Encodings are passed around as their raw bit patterns (numbers
 * 0..0xFFFF or 0..0xFF); decoded values are plain numbers that are exactly
 * representable in f32.
 */

// One scratch word shared by the bit casts below; safe because JS is single-threaded
// per agent and no function here re-enters another while it holds a value in it.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bits of `value` rounded to f32. */
export function f32ToBits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0];
}

/** The f32 whose bits are `bits` (a u32). */
export function bitsToF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

const TWO_POW_MINUS_24 = 2 ** -24;

/** Decodes an f16 bit pattern exactly, including subnormals, ±0, ±Inf and NaN. */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * TWO_POW_MINUS_24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (0x400 + mantissa) * 2 ** (exponent - 25);
}

/** f32 bit patterns (magnitude only) that bound the f16 ranges. */
const F32_BITS_INF = 0x7f800000;
/** 65520 = halfway between f16 max (65504) and 2^16; the tie rounds up to Inf. */
const F32_BITS_F16_OVERFLOW = 0x477ff000;
/** 2^-14, the smallest normal f16. */
const F32_BITS_F16_MIN_NORMAL = 0x38800000;
/** ggml writes every NaN as this quiet NaN, keeping only the sign. */
const F16_QUIET_NAN = 0x7e00;

/**
 * Encodes `value` as f16 with round-to-nearest-even, as ggml's fp32->fp16
 * conversion does. The value is first rounded to f32, since ggml's input is an
 * f32. Overflow gives ±Inf; NaN gives sign | 0x7E00.
 */
export function f32ToF16Bits(value: number): number {
  const bits = f32ToBits(value);
  const sign = (bits >>> 16) & 0x8000;
  const magnitude = bits & 0x7fffffff;
  if (magnitude > F32_BITS_INF) return sign | F16_QUIET_NAN;
  if (magnitude >= F32_BITS_F16_OVERFLOW) return sign | 0x7c00;
  if (magnitude < F32_BITS_F16_MIN_NORMAL) {
    // Subnormal range: the result is |value| in units of 2^-24, rounded to an
    // integer. A result of 0x400 is the smallest normal, which is also its encoding.
    return sign | roundHalfToEven(bitsToF32(magnitude) / TWO_POW_MINUS_24);
  }
  const exponent = (magnitude >>> 23) - 127 + 15;
  const dropped = magnitude & 0x1fff;
  let half = (exponent << 10) | ((magnitude >>> 13) & 0x3ff);
  // A carry out of the mantissa correctly bumps the exponent.
  if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half += 1;
  return sign | half;
}

function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Decodes a bf16 bit pattern: the top half of an f32, so always exact. */
export function bf16BitsToF32(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

/**
 * Encodes `value` (rounded to f32 first) as bf16 with round-to-nearest-even,
 * as ggml does: subnormals are kept, overflow gives ±Inf, and a NaN keeps its
 * sign and top payload bits with the quiet bit forced on.
 */
export function f32ToBf16Bits(value: number): number {
  const bits = f32ToBits(value);
  if ((bits & 0x7fffffff) > F32_BITS_INF) return ((bits >>> 16) | 0x40) & 0xffff;
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  // Above 2^32 the sum must not wrap, so do it in doubles and shift by division.
  return Math.floor((bits + roundingBias) / 0x10000) & 0xffff;
}

/**
 * Decodes an E8M0 byte to 2^(e - 127), as ggml_e8m0_to_fp32 does: e = 0 gives
 * 2^-127 (an f32 subnormal) and e = 255 gives +Inf (ggml does not special-case
 * it as NaN, although the OCP MX spec calls it NaN).
 */
export function e8m0ToF32(e: number): number {
  if (e === 0) return 2 ** -127;
  return bitsToF32((e & 0xff) << 23);
}

/**
 * Decodes an E8M0 byte to half its value, 2^(e - 128), as
 * ggml_e8m0_to_fp32_half does. MXFP4 dequantisation uses this one because
 * ggml's E2M1 value table holds doubled values (so it can be stored as
 * integers). Every byte gives a finite value: e = 255 gives 2^127.
 */
export function e8m0ToF32Half(e: number): number {
  return 2 ** ((e & 0xff) - 128);
}

/** Reads a little-endian f16 at any byte offset (no alignment needed) and decodes it. */
export function readF16(bytes: Uint8Array, offset: number): number {
  return f16BitsToF32(bytes[offset] | (bytes[offset + 1] << 8));
}
