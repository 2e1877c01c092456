/** Workgroup grids that stay within the per-dimension limit. */

import { describe, expect, it } from 'vitest';
import { ceilDiv, workgroupGrid } from '../../../src/gpu/dispatch';

describe('ceilDiv', () => {
  it('rounds up', () => {
    expect([ceilDiv(0, 64), ceilDiv(1, 64), ceilDiv(64, 64), ceilDiv(65, 64)]).toEqual([0, 1, 1, 2]);
  });
});

describe('workgroupGrid', () => {
  it('is one-dimensional up to the limit', () => {
    expect(workgroupGrid(0)).toEqual([0, 1]);
    expect(workgroupGrid(7)).toEqual([7, 1]);
    expect(workgroupGrid(65535)).toEqual([65535, 1]);
  });

  it('goes two-dimensional past the limit, covering every workgroup with little waste', () => {
    for (const count of [65536, 100_000, 65535 * 3 + 1, 1_000_003]) {
      const [x, y] = workgroupGrid(count);
      expect(x).toBeLessThanOrEqual(65535);
      expect(x * y).toBeGreaterThanOrEqual(count);
      expect(x * y - count).toBeLessThan(y); // at most one short row per column of the grid
    }
  });

  it('honours a smaller limit', () => {
    expect(workgroupGrid(10, 4)).toEqual([4, 3]);
  });

  it('rejects counts that are negative, fractional or beyond a square grid', () => {
    expect(() => workgroupGrid(-1)).toThrow(RangeError);
    expect(() => workgroupGrid(1.5)).toThrow(RangeError);
    expect(() => workgroupGrid(17, 4)).toThrow(/exceed/);
  });
});
