/**
 * CPU reference of the embedding lookup: rows of a [vocab][hidden] table in
 * any dequantisable format, dequantised by src/quant and scaled in f32:
 *
 *   out[t][i] = fround(scale * table[ids[t]][i])
 *
 * An id >= vocab gives a row of zeros, as in the kernel.
 */

import { dequantize } from '../quant/dequant';
import { tensorBytes } from '../quant/formats';
import type { GgmlType } from '../quant/formats';

export function embeddingLookup(type: GgmlType, table: Uint8Array, vocab: number, hidden: number, ids: ArrayLike<number>, scale = 1): Float32Array {
  const rowBytes = tensorBytes(type, hidden);
  if (rowBytes === undefined) throw new RangeError(`${hidden} elements are not a whole number of blocks`);
  if (table.length < vocab * rowBytes) throw new RangeError(`table has ${table.length} bytes, ${vocab * rowBytes} needed`);
  const scaleF32 = Math.fround(scale);
  const out = new Float32Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (id >= vocab) continue;
    const row = dequantize(type, table.subarray(id * rowBytes, (id + 1) * rowBytes), hidden);
    for (let i = 0; i < hidden; i++) out[t * hidden + i] = Math.fround(row[i] * scaleF32);
  }
  return out;
}
