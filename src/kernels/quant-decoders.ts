/**
 * The WGSL block-format decoders (shaders/quant_<format>.wgsl) as data: which
 * file decodes a GGML type, and the block geometry that decoder uses. Every
 * kernel that reads weights picks its decoder here and includes it with
 * `#include DECODER` (defines: `decoderDefines(type)`).
 *
 * Decoder interface (see shaders/quant_common.wgsl): the including kernel
 * defines `fn wload(word: u32) -> u32`; the decoder defines `QK` (elements
 * per block), `QBYTES` (bytes per block) and
 * `fn dequant8(block_byte: u32, g: u32) -> array<f32, 8>`, elements [8g, 8g + 8)
 * of the block starting at byte `block_byte`, bit for bit as src/quant's
 * CPU dequantisation. Float types (F32, F16, BF16) have no blocks; their
 * decoders treat 8 consecutive values as one block, so QK is 8 for them.
 */

import { GgmlType, ggmlTypeName } from '../quant/formats';

export interface QuantDecoder {
  readonly type: GgmlType;
  /** Lower-case type name ('q4_k'), used in pipeline keys and labels. */
  readonly name: string;
  /** The decoder's file in shaders/. */
  readonly fileName: string;
  /** Elements per decoder block (QK): 8 for float types, else the GGML block size. */
  readonly blockElements: number;
  /** Bytes per decoder block (QBYTES). */
  readonly blockBytes: number;
}

/** [type, elements per block, bytes per block]: the geometry each decoder file declares. */
const DECODER_GEOMETRY: ReadonlyArray<readonly [GgmlType, number, number]> = [
  [GgmlType.F32, 8, 32],
  [GgmlType.F16, 8, 16],
  [GgmlType.BF16, 8, 16],
  [GgmlType.Q8_0, 32, 34],
  [GgmlType.Q4_0, 32, 18],
  [GgmlType.Q4_1, 32, 20],
  [GgmlType.Q5_0, 32, 22],
  [GgmlType.Q5_1, 32, 24],
  [GgmlType.MXFP4, 32, 17],
  [GgmlType.Q2_K, 256, 84],
  [GgmlType.Q3_K, 256, 110],
  [GgmlType.Q4_K, 256, 144],
  [GgmlType.Q5_K, 256, 176],
  [GgmlType.Q6_K, 256, 210],
  [GgmlType.Q8_K, 256, 292],
  [GgmlType.IQ4_NL, 32, 18],
  [GgmlType.IQ4_XS, 256, 136],
  [GgmlType.IQ2_XXS, 256, 66],
  [GgmlType.IQ2_XS, 256, 74],
  [GgmlType.IQ2_S, 256, 82],
  [GgmlType.IQ3_XXS, 256, 98],
  [GgmlType.IQ3_S, 256, 110],
  [GgmlType.IQ1_S, 256, 50],
  [GgmlType.IQ1_M, 256, 56],
  [GgmlType.TQ1_0, 256, 54],
  [GgmlType.TQ2_0, 256, 66],
];

const DECODERS: ReadonlyMap<GgmlType, QuantDecoder> = new Map(
  DECODER_GEOMETRY.map(([type, blockElements, blockBytes]) => {
    const name = ggmlTypeName(type).toLowerCase();
    return [type, { type, name, fileName: `quant_${name}.wgsl`, blockElements, blockBytes }];
  }),
);

/** The weight types the GPU kernels can read, in a fixed order. */
export const GPU_WEIGHT_TYPES: readonly GgmlType[] = DECODER_GEOMETRY.map(([type]) => type);

export function hasGpuDecoder(type: number): type is GgmlType {
  return DECODERS.has(type as GgmlType);
}

/** Thrown when a kernel is asked to read weights of a type no decoder handles. */
export class UnsupportedGpuTypeError extends Error {
  override readonly name = 'UnsupportedGpuTypeError';

  constructor(
    readonly type: number,
    what: string,
  ) {
    super(
      `${what}: no GPU decoder for tensor type ${ggmlTypeName(type)} (id ${type}); ` +
        `supported: ${GPU_WEIGHT_TYPES.map(ggmlTypeName).join(', ')}`,
    );
  }
}

/** The decoder of `type`; throws UnsupportedGpuTypeError (naming `what`) when there is none. */
export function quantDecoder(type: number, what = 'kernel'): QuantDecoder {
  const decoder = DECODERS.get(type as GgmlType);
  if (!decoder) throw new UnsupportedGpuTypeError(type, what);
  return decoder;
}

/** The define that makes `#include DECODER` include `type`'s decoder. */
export function decoderDefines(type: number): { DECODER: string } {
  return { DECODER: quantDecoder(type).fileName };
}

/** Bytes of one row of `cols` elements, which must be a whole number of decoder blocks. */
export function rowBytes(decoder: QuantDecoder, cols: number): number {
  if (!Number.isInteger(cols) || cols < 1 || cols % decoder.blockElements !== 0) {
    throw new RangeError(
      `${ggmlTypeName(decoder.type)} rows must hold a positive multiple of ${decoder.blockElements} elements, got ${cols}`,
    );
  }
  return (cols / decoder.blockElements) * decoder.blockBytes;
}

/** Where a weight matrix lies: its binding and the byte offset of row 0 in it. */
export interface WeightPlacement {
  rows: number;
  cols: number;
  /** Byte offset of the matrix inside the binding (any alignment). */
  offsetBytes: number;
}

/**
 * Checks a weight matrix's shape against its decoder and that the binding
 * holds it, within the u32 byte addresses shaders use; `what` names the
 * kernel in errors.
 */
export function checkWeightPlacement(decoder: QuantDecoder, bindingBytes: number, placement: WeightPlacement, what: string): void {
  const { rows, cols, offsetBytes } = placement;
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`${what}: rows must be an integer >= 0, got ${rows}`);
  if (!Number.isInteger(offsetBytes) || offsetBytes < 0) {
    throw new RangeError(`${what}: weight offset must be an integer >= 0, got ${offsetBytes}`);
  }
  const endBytes = offsetBytes + rows * rowBytes(decoder, cols);
  // Decoders address bytes with u32 and may read the word after the last byte.
  if (endBytes + 4 > 2 ** 32) throw new RangeError(`${what}: the weights end past byte 2^32, beyond u32 addressing`);
  if (bindingBytes < endBytes) {
    throw new RangeError(`${what} weights need ${endBytes} bytes but their binding holds ${bindingBytes}`);
  }
}
