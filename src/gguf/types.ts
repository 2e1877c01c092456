/**
 * The data model of a parsed GGUF file (versions 2 and 3).
 *
 * Layout on disk, all little-endian:
 *   magic "GGUF" u32, version u32, tensor count u64, metadata kv count u64,
 *   kv pairs (key: string, value type: u32, value),
 *   tensor infos (name: string, n_dims: u32, dims: u64[n_dims], type: u32, offset: u64),
 *   padding to `general.alignment` (default 32), then the tensor data section.
 * A string is a u64 byte length followed by UTF-8 bytes (no terminator).
 * An array is an item type u32, a u64 count, then the items.
 */

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/**
 * A metadata value. Integers up to 32 bits and floats are `number`; 64-bit
 * integers are `bigint` (exact); arrays keep their item type so a file can be
 * written back unchanged.
 */
export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufArray {
  readonly itemType: GgufValueType;
  readonly items: readonly GgufValue[];
}

export interface GgufKv {
  readonly key: string;
  readonly type: GgufValueType;
  readonly value: GgufValue;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dims[0] is the fastest-varying (row length), as in the file. */
  readonly dims: readonly number[];
  /** GGML type id (see quant/formats.ts). */
  readonly type: number;
  /** Byte offset of the data from the start of the data section. */
  readonly offset: number;
  readonly nElements: number;
  readonly nBytes: number;
}

export interface GgufFile {
  readonly version: 2 | 3;
  readonly alignment: number;
  /** Metadata in file order, keyed by name. */
  readonly metadata: ReadonlyMap<string, GgufKv>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Absolute byte offset of the tensor data section. */
  readonly dataOffset: number;
  /** Total size of the source in bytes. */
  readonly fileBytes: number;
}
