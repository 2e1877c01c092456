/**
 * GGUF writer (versions 2 and 3), the reader's counterpart: used to build test
 * models and fixtures. Two passes over the spec: the first validates every
 * value and measures the file, the second fills one preallocated buffer, so a
 * file of tens of MB is built without intermediate copies. Layout follows
 * llama.cpp: header, padding to the alignment, then each tensor's data padded
 * to the alignment, in the order given.
 */

import { blockFormat, ggmlTypeName, tensorBytes } from '../quant/formats';
import { GgufError, quoteName } from './errors';
import { ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAX_TENSOR_DIMS, alignUp, scalarValueBytes } from './reader';
import { GgufValueType } from './types';
import type { GgufArray, GgufKv, GgufValue } from './types';

export interface GgufTensorSpec {
  name: string;
  /** GGML type id. */
  type: number;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  /** Exactly tensorBytes(type, product(dims)) bytes. */
  data: Uint8Array;
}

export interface GgufWriteSpec {
  /** Default 3. */
  version?: 2 | 3;
  /** Default: `general.alignment` from metadata if present, else 32. Must agree with it when both are given. */
  alignment?: number;
  /** Written in this order. */
  metadata: GgufKv[];
  /** Data laid out in this order. */
  tensors: GgufTensorSpec[];
}

const FIXED_HEADER_BYTES = 4 + 4 + 8 + 8;

/** Serializes a whole GGUF file; throws GgufError (BAD_VALUE / BAD_TENSOR) on an invalid spec. */
export function writeGguf(spec: GgufWriteSpec): Uint8Array<ArrayBuffer> {
  const alignment = resolveAlignment(spec);
  let pos = FIXED_HEADER_BYTES;
  const keys = new Set<string>();
  spec.metadata.forEach((kv, i) => {
    pos = measureKv(kv, i, pos, keys);
  });
  const tensorOffsets: number[] = [];
  const names = new Set<string>();
  let dataBytes = 0;
  spec.tensors.forEach((t, i) => {
    pos = measureTensorInfo(t, i, pos, names);
    tensorOffsets.push(dataBytes);
    dataBytes += alignUp(t.data.byteLength, alignment);
  });
  const dataOffset = alignUp(pos, alignment);

  const out = new ByteWriter(new Uint8Array(dataOffset + dataBytes));
  out.bytes(new Uint8Array([0x47, 0x47, 0x55, 0x46])); // "GGUF"
  out.u32(spec.version ?? 3);
  out.u64(BigInt(spec.tensors.length));
  out.u64(BigInt(spec.metadata.length));
  for (const kv of spec.metadata) {
    out.string(kv.key);
    out.u32(kv.type);
    writeValue(out, kv.type, kv.value);
  }
  spec.tensors.forEach((t, i) => {
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(BigInt(d));
    out.u32(t.type);
    out.u64(BigInt(tensorOffsets[i]));
  });
  spec.tensors.forEach((t, i) => out.bytesAt(dataOffset + tensorOffsets[i], t.data));
  return out.buffer;
}

// ---------------------------------------------------------------- metadata shorthands

export function kv(key: string, type: GgufValueType, value: GgufValue): GgufKv {
  return { key, type, value };
}
export const kvString = (key: string, s: string): GgufKv => kv(key, GgufValueType.STRING, s);
export const kvU32 = (key: string, n: number): GgufKv => kv(key, GgufValueType.UINT32, n);
export const kvI32 = (key: string, n: number): GgufKv => kv(key, GgufValueType.INT32, n);
export const kvU64 = (key: string, n: bigint): GgufKv => kv(key, GgufValueType.UINT64, n);
export const kvF32 = (key: string, x: number): GgufKv => kv(key, GgufValueType.FLOAT32, x);
export const kvBool = (key: string, b: boolean): GgufKv => kv(key, GgufValueType.BOOL, b);
export const kvArray = (key: string, itemType: GgufValueType, items: readonly GgufValue[]): GgufKv =>
  kv(key, GgufValueType.ARRAY, { itemType, items });
export const kvStringArray = (key: string, items: readonly string[]): GgufKv => kvArray(key, GgufValueType.STRING, items);
export const kvF32Array = (key: string, items: readonly number[]): GgufKv => kvArray(key, GgufValueType.FLOAT32, items);
export const kvI32Array = (key: string, items: readonly number[]): GgufKv => kvArray(key, GgufValueType.INT32, items);
export const kvU32Array = (key: string, items: readonly number[]): GgufKv => kvArray(key, GgufValueType.UINT32, items);

// ---------------------------------------------------------------- validation and measuring

function resolveAlignment(spec: GgufWriteSpec): number {
  const index = spec.metadata.findIndex((kv) => kv.key === ALIGNMENT_KEY);
  const fromMetadata = index >= 0 ? spec.metadata[index] : undefined;
  if (fromMetadata && fromMetadata.type !== GgufValueType.UINT32) {
    throw writeError('BAD_VALUE', `metadata[${index}].type`, `${ALIGNMENT_KEY} must be u32`);
  }
  const alignment = spec.alignment ?? (fromMetadata?.value as number | undefined) ?? DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0 || alignment > 0x80000000) {
    throw writeError('BAD_VALUE', 'alignment', `alignment must be a power of two, found ${alignment}`);
  }
  if (!fromMetadata && alignment !== DEFAULT_ALIGNMENT) {
    // Readers assume 32 when the key is absent; any other alignment would produce an unreadable file.
    throw writeError('BAD_VALUE', 'alignment', `alignment ${alignment} requires a ${ALIGNMENT_KEY} (u32) entry in metadata`);
  }
  if (fromMetadata && fromMetadata.value !== alignment) {
    throw writeError('BAD_VALUE', `metadata[${index}].value`,
      `${ALIGNMENT_KEY} is ${String(fromMetadata.value)} but the alignment used is ${alignment}`);
  }
  return alignment;
}

function writeError(code: 'BAD_VALUE' | 'BAD_TENSOR', field: string, detail: string, offset = -1): GgufError {
  return new GgufError(code, field, offset, detail);
}

function measureKv(kv: GgufKv, index: number, pos: number, keys: Set<string>): number {
  const field = `metadata[${index}]`;
  if (typeof kv.key !== 'string' || kv.key.length === 0) throw writeError('BAD_VALUE', `${field}.key`, 'key must be a non-empty string', pos);
  if (keys.has(kv.key)) throw writeError('BAD_VALUE', `${field}.key`, `duplicate key ${quoteName(kv.key)}`, pos);
  keys.add(kv.key);
  pos += 8 + utf8ByteLength(kv.key);
  if (!isValueType(kv.type)) throw writeError('BAD_VALUE', `${field}.type`, `unknown value type ${String(kv.type)}`, pos);
  return measureValue(kv.type, kv.value, `${field}.value`, pos + 4);
}

/** Validates a value against its type and returns the position after it. */
function measureValue(type: GgufValueType, value: GgufValue, field: string, pos: number): number {
  const fail = (what: string): never => {
    throw writeError('BAD_VALUE', field, `${what}, found ${describe(value)}`, pos);
  };
  if (type === GgufValueType.STRING) {
    if (typeof value !== 'string') fail('expected a string');
    return pos + 8 + utf8ByteLength(value as string);
  }
  if (type === GgufValueType.ARRAY) {
    const array = value as GgufArray;
    if (typeof array !== 'object' || array === null || !Array.isArray(array.items)) fail('expected { itemType, items }');
    if (!isValueType(array.itemType)) fail(`unknown array item type ${String(array.itemType)}`);
    pos += 4 + 8;
    for (let i = 0; i < array.items.length; i++) pos = measureValue(array.itemType, array.items[i], `${field}[${i}]`, pos);
    return pos;
  }
  const problem = scalarProblem(type, value);
  if (problem) fail(problem);
  return pos + (scalarValueBytes(type) as number);
}

const INTEGER_RANGES: Partial<Record<GgufValueType, [bigint, bigint]>> = {
  [GgufValueType.UINT8]: [0n, 0xffn],
  [GgufValueType.INT8]: [-0x80n, 0x7fn],
  [GgufValueType.UINT16]: [0n, 0xffffn],
  [GgufValueType.INT16]: [-0x8000n, 0x7fffn],
  [GgufValueType.UINT32]: [0n, 0xffffffffn],
  [GgufValueType.INT32]: [-0x80000000n, 0x7fffffffn],
  [GgufValueType.UINT64]: [0n, 0xffffffffffffffffn],
  [GgufValueType.INT64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Why `value` cannot be written as `type`, or undefined if it can. */
function scalarProblem(type: GgufValueType, value: GgufValue): string | undefined {
  if (type === GgufValueType.BOOL) return typeof value === 'boolean' ? undefined : 'expected a boolean';
  if (type === GgufValueType.FLOAT32 || type === GgufValueType.FLOAT64) {
    return typeof value === 'number' ? undefined : 'expected a number';
  }
  const range = INTEGER_RANGES[type] as [bigint, bigint];
  const is64 = type === GgufValueType.UINT64 || type === GgufValueType.INT64;
  const integer = typeof value === 'bigint' && is64 ? value : typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (integer === undefined) return is64 ? 'expected a bigint or a safe integer' : 'expected an integer number';
  return integer < range[0] || integer > range[1] ? `integer out of range for ${GgufValueType[type]}` : undefined;
}

function measureTensorInfo(t: GgufTensorSpec, index: number, pos: number, names: Set<string>): number {
  const label = typeof t.name === 'string' ? `tensor ${quoteName(t.name)}` : `tensors[${index}]`;
  const fail = (what: string, detail: string): never => {
    throw writeError('BAD_TENSOR', `${label}.${what}`, detail, pos);
  };
  if (typeof t.name !== 'string') fail('name', 'name must be a string');
  if (names.has(t.name)) fail('name', 'duplicate tensor name');
  names.add(t.name);
  const format = blockFormat(t.type);
  if (!format) fail('type', `unknown GGML type id ${t.type}`);
  if (t.dims.length < 1 || t.dims.length > MAX_TENSOR_DIMS) fail('dims', `1..${MAX_TENSOR_DIMS} dims required, found ${t.dims.length}`);
  if (!t.dims.every((d) => Number.isSafeInteger(d) && d >= 1)) fail('dims', `dims must be positive integers: [${t.dims.join(', ')}]`);
  if (t.dims[0] % format!.blockSize !== 0) {
    fail('dims', `row length ${t.dims[0]} is not a multiple of the ${ggmlTypeName(t.type)} block size ${format!.blockSize}`);
  }
  const nElements = t.dims.reduce((a, b) => a * b, 1);
  const expectedBytes = tensorBytes(t.type, nElements);
  if (!(t.data instanceof Uint8Array) || t.data.byteLength !== expectedBytes) {
    fail('data', `expected ${expectedBytes} bytes of ${ggmlTypeName(t.type)} data, found ${t.data?.byteLength}`);
  }
  return pos + 8 + utf8ByteLength(t.name) + 4 + 8 * t.dims.length + 4 + 8;
}

function isValueType(type: unknown): type is GgufValueType {
  return typeof type === 'number' && Number.isInteger(type) && type >= 0 && type <= GgufValueType.FLOAT64;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `string of ${value.length} chars`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) return 'an object';
  return String(value);
}

/** UTF-8 length as TextEncoder.encodeInto will write it (lone surrogates become 3-byte U+FFFD). */
export function utf8ByteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

// ---------------------------------------------------------------- serializing

const encoder = new TextEncoder();

class ByteWriter {
  private pos = 0;
  private readonly view: DataView;

  constructor(readonly buffer: Uint8Array<ArrayBuffer>) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  u8(v: number): void { this.view.setUint8(this.pos, v); this.pos += 1; }
  i8(v: number): void { this.view.setInt8(this.pos, v); this.pos += 1; }
  u16(v: number): void { this.view.setUint16(this.pos, v, true); this.pos += 2; }
  i16(v: number): void { this.view.setInt16(this.pos, v, true); this.pos += 2; }
  u32(v: number): void { this.view.setUint32(this.pos, v, true); this.pos += 4; }
  i32(v: number): void { this.view.setInt32(this.pos, v, true); this.pos += 4; }
  u64(v: bigint): void { this.view.setBigUint64(this.pos, v, true); this.pos += 8; }
  i64(v: bigint): void { this.view.setBigInt64(this.pos, v, true); this.pos += 8; }
  f32(v: number): void { this.view.setFloat32(this.pos, v, true); this.pos += 4; }
  f64(v: number): void { this.view.setFloat64(this.pos, v, true); this.pos += 8; }
  bytes(b: Uint8Array): void { this.buffer.set(b, this.pos); this.pos += b.byteLength; }
  bytesAt(offset: number, b: Uint8Array): void { this.buffer.set(b, offset); }

  string(s: string): void {
    const lengthAt = this.pos;
    this.pos += 8;
    const { written } = encoder.encodeInto(s, this.buffer.subarray(this.pos));
    this.view.setBigUint64(lengthAt, BigInt(written), true);
    this.pos += written;
  }
}

function writeValue(out: ByteWriter, type: GgufValueType, value: GgufValue): void {
  switch (type) {
    case GgufValueType.UINT8: return out.u8(value as number);
    case GgufValueType.INT8: return out.i8(value as number);
    case GgufValueType.UINT16: return out.u16(value as number);
    case GgufValueType.INT16: return out.i16(value as number);
    case GgufValueType.UINT32: return out.u32(value as number);
    case GgufValueType.INT32: return out.i32(value as number);
    case GgufValueType.FLOAT32: return out.f32(value as number);
    case GgufValueType.FLOAT64: return out.f64(value as number);
    case GgufValueType.BOOL: return out.u8(value ? 1 : 0);
    case GgufValueType.UINT64: return out.u64(BigInt(value as number | bigint));
    case GgufValueType.INT64: return out.i64(BigInt(value as number | bigint));
    case GgufValueType.STRING: return out.string(value as string);
    case GgufValueType.ARRAY: {
      const array = value as GgufArray;
      out.u32(array.itemType);
      out.u64(BigInt(array.items.length));
      for (const item of array.items) writeValue(out, array.itemType, item);
    }
  }
}
