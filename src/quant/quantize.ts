/**
 * CPU quantizers for the 32-element block formats Q8_0 and Q4_0, producing
 * exactly the blocks of llama.cpp's reference quantizers
 * (quantize_row_q8_0_ref, quantize_row_q4_0_ref in ggml-quants.c): the same
 * scale choice, f16 rounding of the scale and rounding of each quant.
 *
 * Both quantize with the f32 scale's reciprocal and store the scale rounded
 * to f16, as llama.cpp does, so a value's reconstruction error is at most
 * half a quant step plus the scale's f16 rounding (relative 2^-11) times the
 * quant.
 */

import { GgmlType, tensorBytes } from './formats';
import { f32ToF16Bits } from './half';

const QK = 32;
const Q8_0_BYTES = 34;
const Q4_0_BYTES = 18;

/** The ggml types this module can produce. */
export type QuantizableType = GgmlType.F32 | GgmlType.Q8_0 | GgmlType.Q4_0;

const f = Math.fround;

/** C's roundf: halves away from zero. */
function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

function checkLength(type: GgmlType, n: number): number {
  const bytes = tensorBytes(type, n);
  if (bytes === undefined) throw new RangeError(`${n} values are not a whole number of ${GgmlType[type]} blocks of ${QK}`);
  return bytes;
}

function writeF16(out: Uint8Array, offset: number, value: number): void {
  const bits = f32ToF16Bits(value);
  out[offset] = bits & 0xff;
  out[offset + 1] = bits >> 8;
}

/** Q8_0: d = max|x| / 127 (f16), q = round(x / d) in int8. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array(checkLength(GgmlType.Q8_0, x.length));
  for (let b = 0; b * QK < x.length; b++) {
    const src = b * QK;
    const base = b * Q8_0_BYTES;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[src + j]));
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    writeF16(out, base, d);
    for (let j = 0; j < QK; j++) out[base + 2 + j] = roundHalfAway(f(x[src + j] * id)) & 0xff;
  }
  return out;
}

/**
 * Q4_0: d = (the value of largest magnitude) / -8 (f16), so that value maps
 * to quant 0 and the other end of the range gets 15 levels;
 * q = min(15, trunc(x / d + 8.5)); element j in the low nibble of byte j,
 * element j + 16 in its high nibble.
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array(checkLength(GgmlType.Q4_0, x.length));
  for (let b = 0; b * QK < x.length; b++) {
    const src = b * QK;
    const base = b * Q4_0_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[src + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d !== 0 ? f(1 / d) : 0;
    writeF16(out, base, d);
    const level = (v: number): number => Math.min(15, Math.trunc(f(f(v * id) + 8.5)));
    for (let j = 0; j < QK / 2; j++) {
      out[base + 2 + j] = level(x[src + j]) | (level(x[src + j + QK / 2]) << 4);
    }
  }
  return out;
}

/** The tensor's bytes in `type`: raw little-endian f32, or quantized blocks. */
export function quantize(type: QuantizableType, x: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
    case GgmlType.Q8_0:
      return quantizeQ8_0(x);
    case GgmlType.Q4_0:
      return quantizeQ4_0(x);
    default:
      throw new RangeError(`no quantizer for ggml type ${GgmlType[type as GgmlType] ?? type}`);
  }
}
