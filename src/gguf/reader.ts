/**
 * GGUF header reader (versions 2 and 3) built for untrusted input.
 *
 * The header is read through a cursor that fetches growing chunks from a
 * ByteSource, never the whole file. Parsing is synchronous over the buffered
 * bytes; when a field runs past the buffer, the current top-level item (one
 * metadata pair or one tensor info) is parsed again after the next fetch, so
 * the parsing code has no awaits and restarts cost at most a constant factor.
 *
 * Every count and length is checked against the configured limits and the
 * bytes left in the source before anything is allocated, so time and memory
 * stay proportional to the header's real size. Every failure is a GgufError
 * naming the field and its byte offset.
 */

import { blockFormat, ggmlTypeName, tensorBytes } from '../quant/formats';
import { GgufError, quoteName } from './errors';
import { ByteCursor, parseWithRefill } from './source';
import type { ByteSource } from './source';
import { GgufValueType } from './types';
import type { GgufArray, GgufFile, GgufKv, GgufTensorInfo, GgufValue } from './types';

export interface ReadGgufOptions {
  /** Most bytes the header (everything before the tensor data) may take. Default 512 MiB. */
  maxHeaderBytes?: number;
  /** Most items in one metadata array. Default 16 Mi. */
  maxArrayItems?: number;
  /** Longest key, value or tensor name in bytes. Default 16 MiB. */
  maxStringBytes?: number;
  /** Most tensor infos. Default 1 Mi. */
  maxTensors?: number;
  /** Most metadata pairs. Default 1 Mi. */
  maxKvs?: number;
  /** Deepest nesting of arrays in arrays (1 = no nesting). Default 4, at most 64. */
  maxArrayDepth?: number;
  /** Size of the first read; later reads double it. Default 256 KiB. */
  initialChunkBytes?: number;
}

type Limits = Required<ReadGgufOptions>;

const MIB = 1024 * 1024;
const MAX_ARRAY_DEPTH = 64;
const DEFAULT_LIMITS: Limits = {
  maxHeaderBytes: 512 * MIB,
  maxArrayItems: 16 * MIB,
  maxStringBytes: 16 * MIB,
  maxTensors: MIB,
  maxKvs: MIB,
  maxArrayDepth: 4,
  initialChunkBytes: 256 * 1024,
};
export const DEFAULT_ALIGNMENT = 32;
export const ALIGNMENT_KEY = 'general.alignment';
/** GGML_MAX_DIMS in llama.cpp. */
export const MAX_TENSOR_DIMS = 4;
const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
/** Smallest possible encodings, used to reject counts the remaining bytes cannot hold. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length, 1-byte key, type, u8 value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8; // name length, n_dims, one dim, type, offset
const MIN_ARRAY_BYTES = 4 + 8; // item type, count

/** Encoded size of a fixed-size value type, or undefined for STRING, ARRAY and unknown ids. */
export function scalarValueBytes(type: GgufValueType): number | undefined {
  return SCALAR_BYTES[type];
}
const SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Parses the header of a GGUF file and checks every tensor's byte range against the source. */
export async function readGguf(source: ByteSource, options: ReadGgufOptions = {}): Promise<GgufFile> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...stripUndefined(options) };
  // Nesting is parsed by recursion: keep it far from the stack limit whatever the caller asks.
  limits.maxArrayDepth = Math.min(limits.maxArrayDepth, MAX_ARRAY_DEPTH);
  const cur = new ByteCursor(source, {
    limitBytes: limits.maxHeaderBytes,
    limitName: 'maxHeaderBytes',
    initialChunkBytes: limits.initialChunkBytes,
  });
  const header = await parseWithRefill(cur, () => parseFixedHeader(cur, limits));

  const metadata = new Map<string, GgufKv>();
  const places = new Map<string, KvPlace>();
  for (let i = 0; i < header.kvCount; i++) {
    const kv = await parseWithRefill(cur, () => parseKv(cur, i, limits, places));
    metadata.set(kv.key, kv);
  }
  const alignment = resolveAlignment(metadata, places);

  const raw: RawTensor[] = [];
  const tensorIndexByName = new Map<string, number>();
  for (let i = 0; i < header.tensorCount; i++) {
    const tensor = await parseWithRefill(cur, () => parseTensorInfo(cur, i, limits, tensorIndexByName));
    tensorIndexByName.set(tensor.name, i);
    raw.push(tensor);
  }
  const dataOffset = alignUp(cur.pos, alignment);
  checkTensorPlacement(raw, dataOffset, alignment, source.size);

  const tensors: GgufTensorInfo[] = raw.map(({ name, dims, type, offset, nElements, nBytes }) => ({
    name, dims, type, offset, nElements, nBytes,
  }));
  return { version: header.version, alignment, metadata, tensors, dataOffset, fileBytes: source.size };
}

/** Absolute byte range of a tensor's data in the file. */
export function tensorDataRange(file: GgufFile, tensor: GgufTensorInfo): { offset: number; length: number } {
  return { offset: file.dataOffset + tensor.offset, length: tensor.nBytes };
}

/** The raw (possibly quantized) bytes of one tensor. */
export function readTensorData(source: ByteSource, file: GgufFile, tensor: GgufTensorInfo): Promise<Uint8Array> {
  const { offset, length } = tensorDataRange(file, tensor);
  return source.read(offset, length);
}

// ---------------------------------------------------------------- header and metadata

interface FixedHeader {
  version: 2 | 3;
  tensorCount: number;
  kvCount: number;
}

function parseFixedHeader(cur: ByteCursor, limits: Limits): FixedHeader {
  cur.need(4, 'header.magic');
  const magic = Array.from(cur.take(4));
  if (magic.some((b, i) => b !== MAGIC[i])) {
    const hex = magic.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new GgufError('BAD_MAGIC', 'header.magic', 0, `expected "GGUF" (47 47 55 46), found ${hex}: not a GGUF file`);
  }
  cur.need(4, 'header.version');
  const version = cur.u32();
  if (version !== 2 && version !== 3) {
    throw new GgufError('UNSUPPORTED_VERSION', 'header.version', 4, unsupportedVersionDetail(version));
  }
  cur.need(8, 'header.tensor_count');
  const tensorCount = readSize(cur, limits.maxTensors, 'header.tensor_count', 8, 'tensor count', 'maxTensors');
  cur.need(8, 'header.kv_count');
  const kvCount = readSize(cur, limits.maxKvs, 'header.kv_count', 16, 'metadata pair count', 'maxKvs');
  cur.checkAvailable(kvCount * MIN_KV_BYTES, 'header.kv_count', 16);
  cur.checkAvailable(kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES, 'header.tensor_count', 8);
  return { version, tensorCount, kvCount };
}

function unsupportedVersionDetail(version: number): string {
  if (version === 1) return 'GGUF v1 (32-bit counts) is not supported; convert the file with a current llama.cpp';
  if ((version & 0xffff) === 0) return `version ${version} looks byte-swapped: big-endian GGUF files are not supported`;
  return `version ${version} is not supported (only 2 and 3 are)`;
}

/** Where a metadata pair sits in the file, for errors found after it was read. */
interface KvPlace {
  index: number;
  typeOffset: number;
  valueOffset: number;
}

function parseKv(cur: ByteCursor, index: number, limits: Limits, places: Map<string, KvPlace>): GgufKv {
  const field = `metadata[${index}]`;
  const keyOffset = cur.pos;
  const key = readString(cur, `${field}.key`, limits);
  if (key.length === 0) throw new GgufError('BAD_VALUE', `${field}.key`, keyOffset, 'empty key');
  const first = places.get(key);
  if (first) {
    throw new GgufError('BAD_VALUE', `${field}.key`, keyOffset, `duplicate key ${quoteName(key)} (first at metadata[${first.index}])`);
  }
  const typeOffset = cur.pos;
  const type = readValueType(cur, `${field}.type`);
  const valueOffset = cur.pos;
  const value = readValue(cur, type, `${field}.value`, 0, limits);
  places.set(key, { index, typeOffset, valueOffset });
  return { key, type, value };
}

function resolveAlignment(metadata: ReadonlyMap<string, GgufKv>, places: ReadonlyMap<string, KvPlace>): number {
  const kv = metadata.get(ALIGNMENT_KEY);
  const place = places.get(ALIGNMENT_KEY);
  if (!kv || !place) return DEFAULT_ALIGNMENT;
  if (kv.type !== GgufValueType.UINT32) {
    throw new GgufError('BAD_VALUE', `metadata[${place.index}].type`, place.typeOffset,
      `${ALIGNMENT_KEY} must be u32, found ${GgufValueType[kv.type]}`);
  }
  const alignment = kv.value as number;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError('BAD_VALUE', `metadata[${place.index}].value`, place.valueOffset,
      `${ALIGNMENT_KEY} must be a non-zero power of two, found ${alignment}`);
  }
  return alignment;
}

function readValueType(cur: ByteCursor, field: string): GgufValueType {
  const offset = cur.pos;
  cur.need(4, field);
  const type = cur.u32();
  if (type > GgufValueType.FLOAT64) throw new GgufError('BAD_VALUE', field, offset, `unknown value type ${type}`);
  return type;
}

function readValue(cur: ByteCursor, type: GgufValueType, field: string, depth: number, limits: Limits): GgufValue {
  if (type === GgufValueType.STRING) return readString(cur, field, limits);
  if (type === GgufValueType.ARRAY) return readArray(cur, field, depth + 1, limits);
  cur.need(SCALAR_BYTES[type] as number, field);
  return readScalar(cur, type, field);
}

/** Reads one fixed-size value that is already buffered. */
function readScalar(cur: ByteCursor, type: GgufValueType, field: string): number | bigint | boolean {
  switch (type) {
    case GgufValueType.UINT8: return cur.u8();
    case GgufValueType.INT8: return cur.i8();
    case GgufValueType.UINT16: return cur.u16();
    case GgufValueType.INT16: return cur.i16();
    case GgufValueType.UINT32: return cur.u32();
    case GgufValueType.INT32: return cur.i32();
    case GgufValueType.FLOAT32: return cur.f32();
    case GgufValueType.UINT64: return cur.u64();
    case GgufValueType.INT64: return cur.i64();
    case GgufValueType.FLOAT64: return cur.f64();
    case GgufValueType.BOOL: {
      const offset = cur.pos;
      const byte = cur.u8();
      if (byte > 1) throw new GgufError('BAD_VALUE', field, offset, `bool must be 0 or 1, found ${byte}`);
      return byte === 1;
    }
    default:
      throw new GgufError('BAD_VALUE', field, cur.pos, `not a fixed-size value type: ${type}`);
  }
}

function readArray(cur: ByteCursor, field: string, depth: number, limits: Limits): GgufArray {
  const start = cur.pos;
  if (depth > limits.maxArrayDepth) {
    throw new GgufError('LIMIT_EXCEEDED', field, start, `arrays nested deeper than maxArrayDepth (${limits.maxArrayDepth})`);
  }
  const itemType = readValueType(cur, `${field}.item_type`);
  const countField = `${field}.count`;
  const countOffset = cur.pos;
  cur.need(8, countField);
  const count = readSize(cur, limits.maxArrayItems, countField, countOffset, 'array item count', 'maxArrayItems');
  const itemBytes = SCALAR_BYTES[itemType];
  const minItemBytes = itemBytes ?? (itemType === GgufValueType.STRING ? 8 : MIN_ARRAY_BYTES);
  cur.checkAvailable(count * minItemBytes, countField, countOffset);

  const items: GgufValue[] = [];
  if (itemBytes !== undefined) {
    cur.need(count * itemBytes, field);
    for (let i = 0; i < count; i++) items.push(readScalar(cur, itemType, field));
  } else if (itemType === GgufValueType.STRING) {
    for (let i = 0; i < count; i++) items.push(readString(cur, field, limits, i));
  } else {
    for (let i = 0; i < count; i++) items.push(readArray(cur, `${field}[${i}]`, depth + 1, limits));
  }
  return { itemType, items };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads a string; `index` >= 0 marks an array item, whose field name is only
 * built on error (vocabularies hold hundreds of thousands of strings).
 */
function readString(cur: ByteCursor, field: string, limits: Limits, index = -1): string {
  const start = cur.pos;
  if (!cur.has(8)) cur.need(8, itemField(field, index));
  const lengthBytes = readSize(cur, limits.maxStringBytes, field, start, 'string length', 'maxStringBytes', index);
  if (!cur.has(lengthBytes)) cur.need(lengthBytes, itemField(field, index), start);
  try {
    return utf8.decode(cur.take(lengthBytes));
  } catch (cause) {
    throw new GgufError('BAD_VALUE', itemField(field, index), start, 'invalid UTF-8', { cause });
  }
}

function itemField(field: string, index: number): string {
  return index < 0 ? field : `${field}[${index}]`;
}

/** Reads a buffered u64 count or length as a number, after checking it against its limit. */
function readSize(
  cur: ByteCursor, limit: number, field: string, offset: number, what: string, limitName: string, index = -1,
): number {
  const size = cur.u64Size();
  if (size < 0 || size > limit) {
    throw new GgufError('LIMIT_EXCEEDED', itemField(field, index), offset,
      `${what} ${cur.previousU64()} exceeds ${limitName} (${limit})`);
  }
  return size;
}

// ---------------------------------------------------------------- tensors

interface RawTensor extends GgufTensorInfo {
  readonly label: string;
  /** Where the offset field sits, for errors found once the data section is known. */
  readonly offsetFieldOffset: number;
}

function parseTensorInfo(cur: ByteCursor, index: number, limits: Limits, indexByName: ReadonlyMap<string, number>): RawTensor {
  const nameOffset = cur.pos;
  const name = readString(cur, `tensors[${index}].name`, limits);
  const label = `tensor ${quoteName(name)}`;
  const first = indexByName.get(name);
  if (first !== undefined) {
    throw new GgufError('BAD_TENSOR', `${label}.name`, nameOffset, `duplicate tensor name (first at tensors[${first}])`);
  }

  const nDimsOffset = cur.pos;
  cur.need(4, `${label}.n_dims`);
  const nDims = cur.u32();
  if (nDims < 1 || nDims > MAX_TENSOR_DIMS) {
    throw new GgufError('BAD_TENSOR', `${label}.n_dims`, nDimsOffset, `n_dims must be 1..${MAX_TENSOR_DIMS}, found ${nDims}`);
  }
  const dims: number[] = [];
  let nElements = 1;
  const dimsOffset = cur.pos;
  for (let d = 0; d < nDims; d++) {
    const field = `${label}.dims[${d}]`;
    const offset = cur.pos;
    cur.need(8, field);
    const dim = cur.u64();
    if (dim === 0n) throw new GgufError('BAD_TENSOR', field, offset, 'dimension is 0');
    if (dim > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError('BAD_TENSOR', field, offset, `dimension ${dim} is too large`);
    nElements *= Number(dim);
    if (!Number.isSafeInteger(nElements)) {
      throw new GgufError('BAD_TENSOR', field, offset, 'element count overflows 2^53 - 1');
    }
    dims.push(Number(dim));
  }

  const typeOffset = cur.pos;
  cur.need(4, `${label}.type`);
  const type = cur.u32();
  const format = blockFormat(type);
  if (!format) throw new GgufError('BAD_TENSOR', `${label}.type`, typeOffset, `unknown GGML type id ${type}`);
  if (dims[0] % format.blockSize !== 0) {
    throw new GgufError('BAD_TENSOR', `${label}.dims[0]`, dimsOffset,
      `row length ${dims[0]} is not a multiple of the ${ggmlTypeName(type)} block size ${format.blockSize}`);
  }
  const nBytes = tensorBytes(type, nElements) as number;
  if (!Number.isSafeInteger(nBytes)) {
    throw new GgufError('BAD_TENSOR', `${label}.dims`, dimsOffset, `byte size of ${nElements} ${ggmlTypeName(type)} elements overflows`);
  }

  const offsetFieldOffset = cur.pos;
  cur.need(8, `${label}.offset`);
  const offset = cur.u64();
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new GgufError('BAD_TENSOR', `${label}.offset`, offsetFieldOffset, `offset ${offset} is too large`);
  }
  return { name, dims, type, offset: Number(offset), nElements, nBytes, label, offsetFieldOffset };
}

/** Checks alignment, bounds and overlap of every tensor's data. */
function checkTensorPlacement(tensors: readonly RawTensor[], dataOffset: number, alignment: number, fileBytes: number): void {
  const dataBytes = fileBytes - dataOffset;
  for (const t of tensors) {
    const field = `${t.label}.offset`;
    if (t.offset % alignment !== 0) {
      throw new GgufError('BAD_TENSOR', field, t.offsetFieldOffset, `offset ${t.offset} is not a multiple of the alignment ${alignment}`);
    }
    if (t.offset > dataBytes || t.nBytes > dataBytes - t.offset) {
      throw new GgufError('TRUNCATED', field, t.offsetFieldOffset,
        `data [${dataOffset + t.offset}, ${dataOffset + t.offset + t.nBytes}) ends past the end of the file (${fileBytes} bytes)`);
    }
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    const next = byOffset[i];
    if (next.offset < prev.offset + prev.nBytes) {
      throw new GgufError('BAD_TENSOR', `${next.label}.offset`, next.offsetFieldOffset,
        `data at +${next.offset} overlaps ${prev.label} (+${prev.offset}, ${prev.nBytes} bytes)`);
    }
  }
}

function stripUndefined(options: ReadGgufOptions): ReadGgufOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}
