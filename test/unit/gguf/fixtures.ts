/**
 * Helpers for the GGUF specs: a byte-by-byte builder (so files can be made
 * without our writer), a seeded PRNG, a rich writer spec covering every value
 * type, and an assertion for typed errors.
 */

import { expect } from 'vitest';
import { GgmlType, tensorBytes } from '../../../src/quant/formats';
import { GgufError } from '../../../src/gguf/errors';
import type { GgufErrorCode } from '../../../src/gguf/errors';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufWriteSpec, GgufTensorSpec } from '../../../src/gguf/writer';
import { kv, kvArray, kvBool, kvF32, kvString, kvStringArray, kvU32 } from '../../../src/gguf/writer';

/** mulberry32: small, fast, good enough for test data and mutation choices. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** Byte equality without a per-element deep comparison (too slow for MBs). */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected), 'byte contents differ').toBe(0);
}

/** Appends little-endian fields and remembers named offsets. */
export class ByteBuilder {
  private readonly bytes: number[] = [];
  readonly marks = new Map<string, number>();

  get pos(): number {
    return this.bytes.length;
  }
  mark(name: string): this {
    this.marks.set(name, this.pos);
    return this;
  }
  at(name: string): number {
    const offset = this.marks.get(name);
    if (offset === undefined) throw new Error(`no mark ${name}`);
    return offset;
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.bytes.push(bytes[i] & 0xff);
    return this;
  }
  u8(v: number): this {
    return this.raw([v]);
  }
  u32(v: number): this {
    return this.raw([v, v >>> 8, v >>> 16, v >>> 24]);
  }
  u64(v: bigint | number): this {
    let x = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++, x >>= 8n) this.bytes.push(Number(x & 0xffn));
    return this;
  }
  f32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.raw(b);
  }
  /** A GGUF string: u64 byte length then UTF-8 bytes. */
  str(s: string): this {
    const utf8 = new TextEncoder().encode(s);
    return this.u64(utf8.length).raw(utf8);
  }
  strBytes(bytes: ArrayLike<number>): this {
    return this.u64(bytes.length).raw(bytes);
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.bytes.push(0);
    return this;
  }
  padTo(alignment: number): this {
    return this.zeros((alignment - (this.pos % alignment)) % alignment);
  }
  build(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export interface HandMadeOptions {
  magic?: string;
  version?: number;
  tensorCount: number | bigint;
  kvCount: number | bigint;
  /** Writes the metadata pairs and tensor infos. */
  body?: (b: ByteBuilder) => void;
  alignment?: number;
  /** Bytes of (zero) tensor data after the padded header. */
  dataBytes?: number;
}

/** A GGUF file assembled field by field, with marks "tensor_count", "kv_count", "header_end", "data". */
export function handMade(options: HandMadeOptions): { bytes: Uint8Array; b: ByteBuilder } {
  const b = new ByteBuilder();
  b.raw(new TextEncoder().encode(options.magic ?? 'GGUF'));
  b.mark('version').u32(options.version ?? 3);
  b.mark('tensor_count').u64(options.tensorCount);
  b.mark('kv_count').u64(options.kvCount);
  options.body?.(b);
  b.mark('header_end').padTo(options.alignment ?? 32);
  b.mark('data').zeros(options.dataBytes ?? 0);
  return { bytes: b.build(), b };
}

/** Writes a tensor info: name, n_dims, dims, type, offset. */
export function tensorInfo(b: ByteBuilder, name: string, dims: (number | bigint)[], type: number, offset: number | bigint): ByteBuilder {
  b.str(name).u32(dims.length);
  for (const d of dims) b.u64(d);
  return b.u32(type).u64(offset);
}

/** Runs `action` and checks it rejects with a GgufError of this code (and field/offset when given). */
export async function expectGgufError(
  action: () => Promise<unknown>,
  code: GgufErrorCode,
  field?: string,
  offset?: number,
): Promise<GgufError> {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a GgufError').toBeInstanceOf(GgufError);
  const error = caught as GgufError;
  expect({ code: error.code, field: error.field }).toEqual({ code, field: field ?? error.field });
  if (offset !== undefined) expect(error.offset).toBe(offset);
  expect(error.message).toContain(error.field);
  return error;
}

function tensorSpec(random: () => number, name: string, type: GgmlType, dims: number[]): GgufTensorSpec {
  const nBytes = tensorBytes(type, dims.reduce((a, b) => a * b, 1));
  if (nBytes === undefined) throw new Error(`bad test tensor ${name}`);
  return { name, type, dims, data: randomBytes(random, nBytes) };
}

/** A file spec using every value type, nested and empty arrays, odd strings, and several tensor types. */
export function richSpec(seed = 1, alignment = 64): GgufWriteSpec {
  const random = seededRandom(seed);
  const T = GgufValueType;
  return {
    version: 3,
    metadata: [
      kvString('general.architecture', 'qwen3moe'),
      kvU32('general.alignment', alignment),
      kv('v.u8', T.UINT8, 200),
      kv('v.i8', T.INT8, -100),
      kv('v.u16', T.UINT16, 60000),
      kv('v.i16', T.INT16, -30000),
      kvU32('v.u32', 4_000_000_000),
      kv('v.i32', T.INT32, -2_000_000_000),
      kvF32('v.f32', 1.5),
      kv('v.f64', T.FLOAT64, Math.PI),
      kvBool('v.true', true),
      kvBool('v.false', false),
      kvString('v.empty', ''),
      kvString('v.utf8', 'héllo wörld, 世界, 🎉'),
      kv('v.u64', T.UINT64, 2n ** 40n + 5n),
      kv('v.u64max', T.UINT64, 2n ** 64n - 1n),
      kv('v.i64', T.INT64, -(2n ** 62n) - 3n),
      kvArray('a.empty', T.UINT32, []),
      kvStringArray('a.strings', ['a', '', 'ü', '日本語', 'x'.repeat(100), '🎉 emoji']),
      kvArray('a.bools', T.BOOL, [true, false, true]),
      kvArray('a.u64', T.UINT64, [0n, 2n ** 33n, 2n ** 64n - 1n]),
      kvArray('a.i64', T.INT64, [-(2n ** 63n), 2n ** 63n - 1n]),
      kvArray('a.f64', T.FLOAT64, [0.1, -2.5e300]),
      kvArray('a.i8', T.INT8, [-128, 127, 0]),
      kvArray('a.nested', T.ARRAY, [
        { itemType: T.INT32, items: [1, -2, 3] },
        { itemType: T.STRING, items: ['in', 'nér'] },
        { itemType: T.FLOAT32, items: [] },
        { itemType: T.ARRAY, items: [{ itemType: T.UINT8, items: [7] }] },
      ]),
    ],
    tensors: [
      tensorSpec(random, 'token_embd.weight', GgmlType.F32, [8, 3]),
      tensorSpec(random, 'blk.0.attn_norm.weight', GgmlType.F16, [16]),
      tensorSpec(random, 'blk.0.ffn_gate_exps.weight', GgmlType.Q8_0, [64, 2, 4]),
      tensorSpec(random, 'blk.0.ffn_down_exps.weight', GgmlType.Q4_K, [256, 2, 2]),
      tensorSpec(random, 'blk.0.ffn_up_exps.weight', GgmlType.MXFP4, [32, 1, 3]),
      tensorSpec(random, 'output.bias', GgmlType.I8, [5, 1, 1, 1]),
    ],
  };
}
