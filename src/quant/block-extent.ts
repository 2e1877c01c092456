/**
 * The size check shared by every dequantiser: how many whole blocks an output
 * of `nElements` needs, and whether the input bytes hold them.
 */

import { blockFormat, ggmlTypeName } from './formats';
import type { GgmlType } from './formats';

/**
 * Number of blocks in `nElements` elements of `type`. Throws a RangeError when
 * the count is not a non-negative whole number of blocks or when `byteLength`
 * is too short to hold them (longer is fine: the rest is ignored).
 */
export function checkedBlockCount(type: GgmlType, byteLength: number, nElements: number): number {
  const format = blockFormat(type);
  if (!format) throw new RangeError(`unknown GGML type id ${type}`);
  const name = ggmlTypeName(type);
  if (!Number.isSafeInteger(nElements) || nElements < 0 || nElements % format.blockSize !== 0) {
    throw new RangeError(
      `${name}: element count ${nElements} is not a whole number of ${format.blockSize}-element blocks`,
    );
  }
  const nBlocks = nElements / format.blockSize;
  const neededBytes = nBlocks * format.blockBytes;
  if (byteLength < neededBytes) {
    throw new RangeError(
      `${name}: ${nElements} elements need ${neededBytes} bytes, but only ${byteLength} were given`,
    );
  }
  return nBlocks;
}
