/** Pure parts of the buffer helpers: alignment, uniform packing, binding sizes. */

import { describe, expect, it } from 'vitest';
import { alignTo, bindingSizeBytes, checkBindingSize, packUniformScalars } from '../../../src/gpu/buffers';

const fakeBuffer = (size: number) => ({ size }) as GPUBuffer;

describe('alignTo', () => {
  it('rounds up to a multiple', () => {
    expect([alignTo(0, 4), alignTo(1, 4), alignTo(34, 4), alignTo(17, 16)]).toEqual([0, 4, 36, 32]);
  });
});

describe('packUniformScalars', () => {
  it('writes each scalar little-endian in 4 bytes, padded to 16 bytes', () => {
    const bytes = packUniformScalars([
      ['u32', 3],
      ['i32', -2],
      ['f32', 1.5],
    ]);
    expect(bytes.byteLength).toBe(16);
    const view = new DataView(bytes);
    expect([view.getUint32(0, true), view.getInt32(4, true), view.getFloat32(8, true), view.getUint32(12, true)]).toEqual([
      3, -2, 1.5, 0,
    ]);
  });

  it('grows in 16-byte steps', () => {
    expect(packUniformScalars(new Array(5).fill(['u32', 0])).byteLength).toBe(32);
    expect(packUniformScalars([]).byteLength).toBe(16);
  });

  it('rejects integers out of range or fractional, which would wrap silently', () => {
    expect(() => packUniformScalars([['u32', -1]])).toThrow(RangeError);
    expect(() => packUniformScalars([['u32', 2 ** 32]])).toThrow(RangeError);
    expect(() => packUniformScalars([['i32', 0.5]])).toThrow(RangeError);
  });
});

describe('binding sizes', () => {
  it('is the whole buffer, or the rest after an offset, or the explicit size', () => {
    expect(bindingSizeBytes(fakeBuffer(64))).toBe(64);
    expect(bindingSizeBytes({ buffer: fakeBuffer(64), offset: 16 })).toBe(48);
    expect(bindingSizeBytes({ buffer: fakeBuffer(64), offset: 16, size: 8 })).toBe(8);
  });

  it('checkBindingSize names what is too small', () => {
    expect(() => checkBindingSize(fakeBuffer(8), 12, 'matvec x')).toThrow('matvec x needs 12 bytes but its binding holds 8');
    expect(() => checkBindingSize(fakeBuffer(12), 12, 'matvec x')).not.toThrow();
  });
});
