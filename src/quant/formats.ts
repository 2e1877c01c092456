/**
 * GGML tensor types: ids as stored in GGUF tensor infos, and the block geometry
 * of every type (elements per block, bytes per block), as laid out by llama.cpp
 * (ggml-common.h). The geometry is needed even for types we cannot dequantize,
 * so that a GGUF reader can check every tensor's byte extent.
 */

export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

export interface BlockFormat {
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

const QK_K = 256;

const FORMATS: ReadonlyMap<GgmlType, BlockFormat> = new Map<GgmlType, BlockFormat>([
  [GgmlType.F32, { blockSize: 1, blockBytes: 4 }],
  [GgmlType.F16, { blockSize: 1, blockBytes: 2 }],
  [GgmlType.BF16, { blockSize: 1, blockBytes: 2 }],
  [GgmlType.F64, { blockSize: 1, blockBytes: 8 }],
  [GgmlType.I8, { blockSize: 1, blockBytes: 1 }],
  [GgmlType.I16, { blockSize: 1, blockBytes: 2 }],
  [GgmlType.I32, { blockSize: 1, blockBytes: 4 }],
  [GgmlType.I64, { blockSize: 1, blockBytes: 8 }],
  [GgmlType.Q4_0, { blockSize: 32, blockBytes: 2 + 16 }],
  [GgmlType.Q4_1, { blockSize: 32, blockBytes: 4 + 16 }],
  [GgmlType.Q5_0, { blockSize: 32, blockBytes: 2 + 4 + 16 }],
  [GgmlType.Q5_1, { blockSize: 32, blockBytes: 4 + 4 + 16 }],
  [GgmlType.Q8_0, { blockSize: 32, blockBytes: 2 + 32 }],
  [GgmlType.Q8_1, { blockSize: 32, blockBytes: 4 + 32 }],
  [GgmlType.MXFP4, { blockSize: 32, blockBytes: 1 + 16 }],
  [GgmlType.IQ4_NL, { blockSize: 32, blockBytes: 2 + 16 }],
  [GgmlType.Q2_K, { blockSize: QK_K, blockBytes: 4 + QK_K / 16 + QK_K / 4 }],
  [GgmlType.Q3_K, { blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 + 12 }],
  [GgmlType.Q4_K, { blockSize: QK_K, blockBytes: 4 + 12 + QK_K / 2 }],
  [GgmlType.Q5_K, { blockSize: QK_K, blockBytes: 4 + 12 + QK_K / 2 + QK_K / 8 }],
  [GgmlType.Q6_K, { blockSize: QK_K, blockBytes: 2 + QK_K / 16 + (3 * QK_K) / 4 }],
  [GgmlType.Q8_K, { blockSize: QK_K, blockBytes: 4 + QK_K + (QK_K / 16) * 2 }],
  [GgmlType.IQ2_XXS, { blockSize: QK_K, blockBytes: 2 + QK_K / 4 }],
  [GgmlType.IQ2_XS, { blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 32 }],
  [GgmlType.IQ2_S, { blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 16 }],
  [GgmlType.IQ3_XXS, { blockSize: QK_K, blockBytes: 2 + (3 * QK_K) / 8 }],
  [GgmlType.IQ3_S, { blockSize: QK_K, blockBytes: 2 + (13 * QK_K) / 32 + QK_K / 64 }],
  [GgmlType.IQ1_S, { blockSize: QK_K, blockBytes: 2 + QK_K / 8 + QK_K / 16 }],
  [GgmlType.IQ1_M, { blockSize: QK_K, blockBytes: QK_K / 8 + QK_K / 16 + QK_K / 32 }],
  [GgmlType.IQ4_XS, { blockSize: QK_K, blockBytes: 2 + 2 + QK_K / 64 + QK_K / 2 }],
  [GgmlType.TQ1_0, { blockSize: QK_K, blockBytes: 2 + QK_K / 64 + (QK_K - (4 * QK_K) / 64) / 5 }],
  [GgmlType.TQ2_0, { blockSize: QK_K, blockBytes: 2 + QK_K / 4 }],
]);

/** Block geometry of a type id, or undefined for an id this library does not know. */
export function blockFormat(type: number): BlockFormat | undefined {
  return FORMATS.get(type as GgmlType);
}

/** Name of a type id as llama.cpp spells it ("Q4_K"), or "type#N" for an unknown id. */
export function ggmlTypeName(type: number): string {
  return GgmlType[type] ?? `type#${type}`;
}

/**
 * Bytes of a row-major tensor of `nElements` elements, or undefined when the
 * type is unknown or the count is not a whole number of blocks.
 */
export function tensorBytes(type: number, nElements: number): number | undefined {
  const f = blockFormat(type);
  if (!f || nElements % f.blockSize !== 0) return undefined;
  return (nElements / f.blockSize) * f.blockBytes;
}
