/**
 * CPU reference of argmax: the index of the largest value, the lowest index
 * among equal ones (-0 equals +0).
 */

export function argmax(values: ArrayLike<number>): number {
  if (values.length === 0) throw new RangeError('argmax of no values');
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}
