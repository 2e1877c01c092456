/**
 * Typed access to GGUF metadata. `getX` throws a GgufError (BAD_VALUE, field =
 * the key) when the key is missing or holds another type; `optX` returns
 * undefined when the key is absent but still throws on a wrong type, so a
 * malformed file is never silently read as "not set".
 */

import { GgufError, NO_OFFSET } from './errors';
import { GgufValueType } from './types';
import type { GgufArray, GgufFile, GgufKv, GgufValue } from './types';

const NUMERIC_TYPES: ReadonlySet<GgufValueType> = new Set([
  GgufValueType.UINT8, GgufValueType.INT8, GgufValueType.UINT16, GgufValueType.INT16,
  GgufValueType.UINT32, GgufValueType.INT32, GgufValueType.UINT64, GgufValueType.INT64,
  GgufValueType.FLOAT32, GgufValueType.FLOAT64,
]);

export const ARCHITECTURE_KEY = 'general.architecture';

/** Full key of an architecture-specific field: archKey(file, 'block_count') → "qwen3moe.block_count". */
export function archKey(file: GgufFile, suffix: string): string {
  return `${getString(file, ARCHITECTURE_KEY)}.${suffix}`;
}

export function getString(file: GgufFile, key: string): string {
  return required(key, optString(file, key));
}
export function getNumber(file: GgufFile, key: string): number {
  return required(key, optNumber(file, key));
}
export function getBool(file: GgufFile, key: string): boolean {
  return required(key, optBool(file, key));
}
export function getStringArray(file: GgufFile, key: string): string[] {
  return required(key, optStringArray(file, key));
}
export function getNumberArray(file: GgufFile, key: string): number[] {
  return required(key, optNumberArray(file, key));
}

export function optString(file: GgufFile, key: string): string | undefined {
  const kv = file.metadata.get(key);
  if (!kv) return undefined;
  expectType(kv, kv.type === GgufValueType.STRING, 'a string');
  return kv.value as string;
}

/** Any integer or float scalar; 64-bit integers only when exactly representable. */
export function optNumber(file: GgufFile, key: string): number | undefined {
  const kv = file.metadata.get(key);
  if (!kv) return undefined;
  expectType(kv, NUMERIC_TYPES.has(kv.type), 'a number');
  return toNumber(kv.value, key);
}

export function optBool(file: GgufFile, key: string): boolean | undefined {
  const kv = file.metadata.get(key);
  if (!kv) return undefined;
  expectType(kv, kv.type === GgufValueType.BOOL, 'a bool');
  return kv.value as boolean;
}

export function optStringArray(file: GgufFile, key: string): string[] | undefined {
  const array = optArray(file, key, (t) => t === GgufValueType.STRING, 'an array of strings');
  return array && (array.items as string[]).slice();
}

export function optNumberArray(file: GgufFile, key: string): number[] | undefined {
  const array = optArray(file, key, (t) => NUMERIC_TYPES.has(t), 'an array of numbers');
  return array?.items.map((item) => toNumber(item, key));
}

/** The raw pair, for callers that handle several types themselves. */
export function optKv(file: GgufFile, key: string): GgufKv | undefined {
  return file.metadata.get(key);
}

function optArray(
  file: GgufFile,
  key: string,
  itemTypeOk: (t: GgufValueType) => boolean,
  expected: string,
): GgufArray | undefined {
  const kv = file.metadata.get(key);
  if (!kv) return undefined;
  const ok = kv.type === GgufValueType.ARRAY && itemTypeOk((kv.value as GgufArray).itemType);
  expectType(kv, ok, expected);
  return kv.value as GgufArray;
}

function required<T>(key: string, value: T | undefined): T {
  if (value === undefined) throw new GgufError('BAD_VALUE', key, NO_OFFSET, 'required metadata key is missing');
  return value;
}

function expectType(kv: GgufKv, ok: boolean, expected: string): void {
  if (!ok) throw new GgufError('BAD_VALUE', kv.key, NO_OFFSET, `expected ${expected}, found ${typeName(kv)}`);
}

function typeName(kv: GgufKv): string {
  if (kv.type !== GgufValueType.ARRAY) return GgufValueType[kv.type] ?? `type ${kv.type}`;
  const itemType = (kv.value as GgufArray).itemType;
  return `ARRAY of ${GgufValueType[itemType] ?? `type ${itemType}`}`;
}

function toNumber(value: GgufValue, key: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') {
    if (value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
    throw new GgufError('BAD_VALUE', key, NO_OFFSET, `${value} does not fit exactly in a JavaScript number`);
  }
  throw new GgufError('BAD_VALUE', key, NO_OFFSET, `expected a number, found ${typeof value}`);
}
