/**
 * Seeded random tensor data in every dequantisable format, for tests and tiny
 * generated models.
 *
 * The data imitates a trained model's weights: centred on zero, with a standard
 * deviation of roughly `std` (default 0.05) after dequantisation, and every
 * scale field (f16, bf16, f32, E8M0) finite. How each format gets there:
 * - F32, F16, BF16: each element is normal(0, std), rounded to the type.
 * - Q4_0, Q5_0, Q8_0: quants uniform over their full range; per block
 *   d = std / (std of those quants) * jitter, jitter uniform in [0.75, 1.25).
 *   (Q4_0 and Q5_0 codes run from -8 to 7 and -16 to 15, so their mean is -d/2.)
 * - Q4_1, Q5_1: as above with unsigned quants; the min m = -d * (mean quant)
 *   centres the block.
 * - Q2_K, Q4_K, Q5_K: quants uniform; sub-block scales uniform in the upper
 *   half of their range (so the packed high bits are exercised); each
 *   sub-block's min equals its scale and dmin = d * (mean quant), so every
 *   sub-block is centred; d is set from std as above.
 * - Q3_K, Q6_K: quants uniform; sub-block scales of random sign and a
 *   magnitude uniform in a moderate range; d from std as above.
 * - Q8_K: as Q8_0 with an f32 d, and bsums filled in consistently.
 * - MXFP4: codes uniform; the exponent is one of the two powers of two around
 *   the ideal scale, drawn so that the expected variance is exactly std^2.
 * - The i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M,
 *   IQ4_NL, IQ4_XS): every grid index, sign and sub-block scale field uniform
 *   (random bytes); the block's f16 d is then set so that the block's root
 *   mean square is std * jitter (decoding it with d = 1 first). Signs are
 *   symmetric and the IQ1 grid has mean ~0, so blocks are centred; IQ4_NL's
 *   levels are not symmetric, so its d gets a random sign.
 * - TQ1_0, TQ2_0: trits uniform, packed as llama.cpp's quantizer packs them;
 *   d set from the block's root mean square as for the i-quants.
 * With a small std, a K-quant's f16 d may be subnormal; it is still finite.
 */

import { GgmlType, blockFormat, ggmlTypeName, tensorBytes } from './formats';
import { UnsupportedTypeError, dequantize, isDequantSupported } from './dequant';
import { f32ToBf16Bits, f32ToF16Bits } from './half';

/** A uniform random source on [0, 1). */
export type Rng = () => number;

/** A small, fast, seeded PRNG (mulberry32): uniform on [0, 1), 2^32 period. */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

/** A standard normal sample (Box-Muller, one of the pair). */
export function randomNormal(rng: Rng): number {
  const u1 = 1 - rng(); // in (0, 1], so the log is finite
  const u2 = rng();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Integer uniform on [lo, hi], inclusive. */
function randomInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Standard deviation of an integer uniform over n consecutive values. */
function uniformStd(n: number): number {
  return Math.sqrt((n * n - 1) / 12);
}

function jitter(rng: Rng): number {
  return 0.75 + 0.5 * rng();
}

function writeF16(bytes: Uint8Array, offset: number, value: number): void {
  const bits = f32ToF16Bits(value);
  bytes[offset] = bits & 0xff;
  bytes[offset + 1] = bits >> 8;
}

/** Largest std accepted: keeps every f16 scale well below f16's max (65504). */
const MAX_STD = 1000;

/**
 * `nElements` elements of `type` as raw block bytes, drawn from `rng` (see the
 * module comment for the distributions; `std` is the target standard deviation
 * of the dequantized values). Throws UnsupportedTypeError for a type that
 * cannot be dequantized, and a RangeError for a count that is not a whole
 * number of blocks or a std outside (0, 1000].
 */
export function randomBlocks(type: GgmlType, nElements: number, rng: Rng, std = 0.05): Uint8Array {
  if (!isDequantSupported(type)) throw new UnsupportedTypeError(type);
  const byteLength = Number.isSafeInteger(nElements) && nElements >= 0 ? tensorBytes(type, nElements) : undefined;
  if (byteLength === undefined) {
    throw new RangeError(`${ggmlTypeName(type)}: ${nElements} elements are not a whole number of blocks`);
  }
  if (!(std > 0 && std <= MAX_STD)) throw new RangeError(`std must be in (0, ${MAX_STD}], got ${std}`);
  const bytes = new Uint8Array(byteLength);
  const format = blockFormat(type)!; // supported types always have a format
  const nBlocks = nElements / format.blockSize;
  for (let b = 0; b < nBlocks; b++) {
    writeBlock(type, bytes.subarray(b * format.blockBytes, (b + 1) * format.blockBytes), rng, std);
  }
  return bytes;
}

function writeBlock(type: GgmlType, block: Uint8Array, rng: Rng, std: number): void {
  switch (type) {
    case GgmlType.F32:
      new DataView(block.buffer, block.byteOffset, 4).setFloat32(0, randomNormal(rng) * std, true);
      return;
    case GgmlType.F16:
      writeF16(block, 0, randomNormal(rng) * std);
      return;
    case GgmlType.BF16: {
      const bits = f32ToBf16Bits(randomNormal(rng) * std);
      block[0] = bits & 0xff;
      block[1] = bits >> 8;
      return;
    }
    case GgmlType.Q8_0:
      return writeQ8_0(block, rng, std);
    case GgmlType.Q4_0:
    case GgmlType.Q4_1:
      return writeQ4(block, rng, std, type === GgmlType.Q4_1);
    case GgmlType.Q5_0:
    case GgmlType.Q5_1:
      return writeQ5(block, rng, std, type === GgmlType.Q5_1);
    case GgmlType.Q2_K:
      return writeQ2K(block, rng, std);
    case GgmlType.Q3_K:
      return writeQ3K(block, rng, std);
    case GgmlType.Q4_K:
    case GgmlType.Q5_K:
      return writeQ45K(block, rng, std, type === GgmlType.Q5_K);
    case GgmlType.Q6_K:
      return writeQ6K(block, rng, std);
    case GgmlType.Q8_K:
      return writeQ8K(block, rng, std);
    case GgmlType.MXFP4:
      return writeMXFP4(block, rng, std);
    case GgmlType.IQ2_XXS:
    case GgmlType.IQ2_XS:
    case GgmlType.IQ2_S:
    case GgmlType.IQ3_XXS:
    case GgmlType.IQ3_S:
    case GgmlType.IQ1_S:
    case GgmlType.IQ1_M:
    case GgmlType.IQ4_XS:
      fillRandomBytes(block, rng);
      return scaleToStd(type, block, rng, std, false);
    case GgmlType.IQ4_NL:
      fillRandomBytes(block, rng);
      return scaleToStd(type, block, rng, std, true);
    case GgmlType.TQ1_0:
      writeTQ1_0Trits(block, rng);
      return scaleToStd(type, block, rng, std, false);
    case GgmlType.TQ2_0:
      writeTQ2_0Trits(block, rng);
      return scaleToStd(type, block, rng, std, false);
    default:
      throw new UnsupportedTypeError(type);
  }
}

function fillRandomBytes(bytes: Uint8Array, rng: Rng): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = randomInt(rng, 0, 255);
}

function writeQ8_0(block: Uint8Array, rng: Rng, std: number): void {
  writeF16(block, 0, (std / uniformStd(255)) * jitter(rng));
  for (let j = 0; j < 32; j++) block[2 + j] = randomInt(rng, -127, 127) & 0xff;
}

/** Q4_0 / Q4_1: random nibbles; Q4_1's min centres the unsigned quants. */
function writeQ4(block: Uint8Array, rng: Rng, std: number, withMin: boolean): void {
  const d = (std / uniformStd(16)) * jitter(rng);
  writeF16(block, 0, d);
  if (withMin) writeF16(block, 2, -7.5 * d);
  fillRandomBytes(block.subarray(withMin ? 4 : 2), rng);
}

/** Q5_0 / Q5_1: random nibbles and fifth bits. */
function writeQ5(block: Uint8Array, rng: Rng, std: number, withMin: boolean): void {
  const d = (std / uniformStd(32)) * jitter(rng);
  writeF16(block, 0, d);
  if (withMin) writeF16(block, 2, -15.5 * d);
  fillRandomBytes(block.subarray(withMin ? 4 : 2), rng);
}

/** Q2_K: scales 8..15 with min = scale, so d * scale * 1.5 - dmin * min = 0 on average. */
function writeQ2K(block: Uint8Array, rng: Rng, std: number): void {
  const d = (std / (uniformStd(4) * 11.5)) * jitter(rng);
  for (let s = 0; s < 16; s++) {
    const scale = randomInt(rng, 8, 15);
    block[s] = scale | (scale << 4);
  }
  fillRandomBytes(block.subarray(16, 80), rng);
  writeF16(block, 80, d);
  writeF16(block, 82, 1.5 * d);
}

/** Q3_K: 6-bit scales (stored + 32) of magnitude 8..31 and random sign. */
function writeQ3K(block: Uint8Array, rng: Rng, std: number): void {
  fillRandomBytes(block.subarray(0, 96), rng); // hmask and low bits
  const scales = block.subarray(96, 108);
  scales.fill(0);
  for (let s = 0; s < 16; s++) {
    const magnitude = randomInt(rng, 8, 31);
    const stored = 32 + (rng() < 0.5 ? -magnitude : magnitude);
    const low = stored & 0x0f;
    if (s < 8) scales[s] |= low;
    else scales[s - 8] |= low << 4;
    scales[8 + (s & 3)] |= (stored >> 4) << (2 * (s >> 2));
  }
  writeF16(block, 108, (std / (uniformStd(8) * 21)) * jitter(rng));
}

/** Packs eight 6-bit scales and mins into the 12-byte K-quant layout. */
function packScaleMin6(scales: Uint8Array, scale: readonly number[], min: readonly number[]): void {
  for (let j = 0; j < 4; j++) {
    scales[j] = (scale[j] & 63) | ((scale[j + 4] >> 4) << 6);
    scales[j + 4] = (min[j] & 63) | ((min[j + 4] >> 4) << 6);
    scales[j + 8] = (scale[j + 4] & 0x0f) | ((min[j + 4] & 0x0f) << 4);
  }
}

/** Q4_K / Q5_K: 6-bit scales 32..63, min = scale, dmin = d * mean quant. */
function writeQ45K(block: Uint8Array, rng: Rng, std: number, fiveBit: boolean): void {
  const levels = fiveBit ? 32 : 16;
  const d = (std / (uniformStd(levels) * 48)) * jitter(rng);
  writeF16(block, 0, d);
  writeF16(block, 2, ((levels - 1) / 2) * d);
  const scale = Array.from({ length: 8 }, () => randomInt(rng, 32, 63));
  packScaleMin6(block.subarray(4, 16), scale, scale);
  fillRandomBytes(block.subarray(16), rng);
}

/** Q6_K: int8 scales of magnitude 4..20 and random sign. */
function writeQ6K(block: Uint8Array, rng: Rng, std: number): void {
  fillRandomBytes(block.subarray(0, 192), rng); // ql and qh
  for (let s = 0; s < 16; s++) {
    const magnitude = randomInt(rng, 4, 20);
    block[192 + s] = (rng() < 0.5 ? -magnitude : magnitude) & 0xff;
  }
  writeF16(block, 208, (std / (uniformStd(64) * 13)) * jitter(rng));
}

function writeQ8K(block: Uint8Array, rng: Rng, std: number): void {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  view.setFloat32(0, (std / uniformStd(255)) * jitter(rng), true);
  for (let g = 0; g < 16; g++) {
    let sum = 0;
    for (let l = 0; l < 16; l++) {
      const q = randomInt(rng, -127, 127);
      block[4 + 16 * g + l] = q & 0xff;
      sum += q;
    }
    view.setInt16(260 + 2 * g, sum, true);
  }
}

/** Root mean square of MXFP4's doubled E2M1 values over all 16 codes. */
const MXFP4_DOUBLED_RMS = Math.sqrt(274 / 8);

function writeMXFP4(block: Uint8Array, rng: Rng, std: number): void {
  // value = doubled * 2^(e - 128), so the ideal (fractional) e is 128 + log2(std / rms).
  // Taking the power of two above it with probability p = (4^fraction - 1) / 3 and
  // the one below otherwise makes the expected variance exactly std^2.
  const ideal = 128 + Math.log2(std / MXFP4_DOUBLED_RMS);
  const below = Math.floor(ideal);
  const pAbove = (4 ** (ideal - below) - 1) / 3;
  block[0] = Math.min(254, Math.max(1, below + (rng() < pAbove ? 1 : 0)));
  fillRandomBytes(block.subarray(1), rng);
}

/** Byte offset of the f16 d in a block of the i-quant and ternary types (IQ1_M has none: see writeIqScale). */
const IQ_SCALE_OFFSET: ReadonlyMap<GgmlType, number> = new Map([
  [GgmlType.TQ1_0, 52],
  [GgmlType.TQ2_0, 64],
]);

/** Writes the block's f16 d; IQ1_M keeps its 16 bits in the top nibbles of its four u16 scale words. */
function writeIqScale(type: GgmlType, block: Uint8Array, value: number): void {
  if (type !== GgmlType.IQ1_M) return writeF16(block, IQ_SCALE_OFFSET.get(type) ?? 0, value);
  const bits = f32ToF16Bits(value);
  for (let k = 0; k < 4; k++) block[49 + 2 * k] = (block[49 + 2 * k] & 0x0f) | (((bits >> (4 * k)) & 0x0f) << 4);
}

/** Sets d so that the block's root mean square is std * jitter (with a random sign when `signed`). */
function scaleToStd(type: GgmlType, block: Uint8Array, rng: Rng, std: number, signed: boolean): void {
  writeIqScale(type, block, 1);
  const values = dequantize(type, block, blockFormat(type)!.blockSize);
  let squares = 0;
  for (const v of values) squares += v * v;
  const rms = Math.sqrt(squares / values.length);
  if (rms === 0) return; // every quant decodes to zero: any d gives zeros
  const sign = signed && rng() < 0.5 ? -1 : 1;
  writeIqScale(type, block, (sign * std * jitter(rng)) / rms);
}

/** Base-3 digits (first most significant) as llama.cpp's TQ1_0 quantizer packs them: ceil(value * 256 / 243). */
function packTrits(trits: readonly number[]): number {
  const value = trits.reduce((q, t) => 3 * q + t, 0) * 3 ** (5 - trits.length);
  return Math.floor((value * 256 + 242) / 243);
}

/** TQ1_0: uniform trits; 48 bytes of 5, 4 bytes of 4 (their fifth digit is zero). */
function writeTQ1_0Trits(block: Uint8Array, rng: Rng): void {
  for (let i = 0; i < 48; i++) block[i] = packTrits(Array.from({ length: 5 }, () => randomInt(rng, 0, 2)));
  for (let i = 48; i < 52; i++) block[i] = packTrits(Array.from({ length: 4 }, () => randomInt(rng, 0, 2)));
}

/** TQ2_0: uniform trits 0..2 (the code 3, never written by the quantizer, is left out). */
function writeTQ2_0Trits(block: Uint8Array, rng: Rng): void {
  for (let i = 0; i < 64; i++) {
    let byte = 0;
    for (let k = 0; k < 4; k++) byte |= randomInt(rng, 0, 2) << (2 * k);
    block[i] = byte;
  }
}
