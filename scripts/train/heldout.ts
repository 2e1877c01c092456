/** Held-out token windows of the default model's corpus (tokenize.ts output). */
import { readFileSync } from 'node:fs';

export function readIds(path: string): Uint16Array {
  const bytes = readFileSync(path);
  return new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** `count` evenly spaced, non-overlapping windows of `tokens` ids each. */
export function heldoutWindows(path: string, count: number, tokens: number): number[][] {
  const ids = readIds(path);
  const stride = Math.floor((ids.length - tokens) / count);
  if (stride < tokens) throw new RangeError(`${ids.length} held-out tokens do not hold ${count} windows of ${tokens}`);
  return Array.from({ length: count }, (_, i) => Array.from(ids.subarray(i * stride, i * stride + tokens)));
}
