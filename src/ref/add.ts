/**
 * CPU reference of the residual add: y = a + scale * b in f32 (the product
 * and the sum each rounded to f32).
 */

export function add(a: Float32Array, b: Float32Array, scale = 1): Float32Array {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} and ${b.length}`);
  const scaleF32 = Math.fround(scale);
  return a.map((value, i) => Math.fround(value + Math.fround(scaleF32 * b[i])));
}
