/**
 * CPU reference dequantisation: bytes of a GGML tensor (in any supported
 * type) to f32, element for element as llama.cpp's dequantize_row_* produce
 * them. Used to check GPU kernels and to run the CPU reference forward pass.
 */

import { checkedBlockCount } from './block-extent';
import {
  dequantBF16,
  dequantF16,
  dequantF32,
  dequantMXFP4,
  dequantQ4_0,
  dequantQ4_1,
  dequantQ5_0,
  dequantQ5_1,
  dequantQ8_0,
} from './dequant-basic';
import {
  dequantIQ1M,
  dequantIQ1S,
  dequantIQ2S,
  dequantIQ2XS,
  dequantIQ2XXS,
  dequantIQ3S,
  dequantIQ3XXS,
  dequantIQ4NL,
  dequantIQ4XS,
  dequantTQ1_0,
  dequantTQ2_0,
} from './dequant-iq';
import { dequantQ2K, dequantQ3K, dequantQ4K, dequantQ5K, dequantQ6K, dequantQ8K } from './dequant-k';
import { GgmlType, ggmlTypeName } from './formats';

export {
  dequantBF16,
  dequantF16,
  dequantF32,
  dequantMXFP4,
  dequantQ4_0,
  dequantQ4_1,
  dequantQ5_0,
  dequantQ5_1,
  dequantQ8_0,
} from './dequant-basic';
export { dequantQ2K, dequantQ3K, dequantQ4K, dequantQ5K, dequantQ6K, dequantQ8K } from './dequant-k';
export {
  dequantIQ1M,
  dequantIQ1S,
  dequantIQ2S,
  dequantIQ2XS,
  dequantIQ2XXS,
  dequantIQ3S,
  dequantIQ3XXS,
  dequantIQ4NL,
  dequantIQ4XS,
  dequantTQ1_0,
  dequantTQ2_0,
} from './dequant-iq';

/** Writes the elements encoded in `bytes` into `out` (all of it). */
export type Dequantizer = (bytes: Uint8Array, out: Float32Array) => void;

const DEQUANTIZERS: ReadonlyMap<GgmlType, Dequantizer> = new Map<GgmlType, Dequantizer>([
  [GgmlType.F32, dequantF32],
  [GgmlType.F16, dequantF16],
  [GgmlType.BF16, dequantBF16],
  [GgmlType.Q8_0, dequantQ8_0],
  [GgmlType.Q4_0, dequantQ4_0],
  [GgmlType.Q4_1, dequantQ4_1],
  [GgmlType.Q5_0, dequantQ5_0],
  [GgmlType.Q5_1, dequantQ5_1],
  [GgmlType.Q2_K, dequantQ2K],
  [GgmlType.Q3_K, dequantQ3K],
  [GgmlType.Q4_K, dequantQ4K],
  [GgmlType.Q5_K, dequantQ5K],
  [GgmlType.Q6_K, dequantQ6K],
  [GgmlType.Q8_K, dequantQ8K],
  [GgmlType.MXFP4, dequantMXFP4],
  [GgmlType.IQ4_NL, dequantIQ4NL],
  [GgmlType.IQ4_XS, dequantIQ4XS],
  [GgmlType.IQ2_XXS, dequantIQ2XXS],
  [GgmlType.IQ2_XS, dequantIQ2XS],
  [GgmlType.IQ2_S, dequantIQ2S],
  [GgmlType.IQ3_XXS, dequantIQ3XXS],
  [GgmlType.IQ3_S, dequantIQ3S],
  [GgmlType.IQ1_S, dequantIQ1S],
  [GgmlType.IQ1_M, dequantIQ1M],
  [GgmlType.TQ1_0, dequantTQ1_0],
  [GgmlType.TQ2_0, dequantTQ2_0],
]);

/** The types `dequantize` accepts. */
export const SUPPORTED_DEQUANT_TYPES: readonly GgmlType[] = [...DEQUANTIZERS.keys()];

/** Thrown for a tensor type that has no CPU dequantiser here. */
export class UnsupportedTypeError extends Error {
  override readonly name = 'UnsupportedTypeError';

  constructor(readonly type: number) {
    super(
      `tensor type ${ggmlTypeName(type)} (id ${type}) cannot be dequantized; ` +
        `supported types: ${SUPPORTED_DEQUANT_TYPES.map(ggmlTypeName).join(', ')}. ` +
        `Re-quantize the model to one of them.`,
    );
  }
}

export function isDequantSupported(type: number): type is GgmlType {
  return DEQUANTIZERS.has(type as GgmlType);
}

function dequantizerFor(type: number): Dequantizer {
  const dequantizer = DEQUANTIZERS.get(type as GgmlType);
  if (!dequantizer) throw new UnsupportedTypeError(type);
  return dequantizer;
}

/**
 * Decodes the first `nElements` elements of a tensor of `type` stored in
 * `bytes` (a view at any byte offset; extra trailing bytes are ignored).
 * Throws UnsupportedTypeError for a type without a dequantiser, and a
 * RangeError when `nElements` is not a whole number of blocks or `bytes` is
 * too short to hold them.
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, nElements: number): Float32Array {
  const dequantizer = dequantizerFor(type);
  checkedBlockCount(type, bytes.length, nElements);
  const out = new Float32Array(nElements);
  dequantizer(bytes, out);
  return out;
}

/**
 * As `dequantize`, but writes `out.length` elements into a caller-owned array
 * (to decode a tensor row by row without allocating).
 */
export function dequantizeInto(type: GgmlType, bytes: Uint8Array, out: Float32Array): void {
  dequantizerFor(type)(bytes, out);
}
