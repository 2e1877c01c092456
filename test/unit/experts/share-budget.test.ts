/**
 * The expert budget shared among expert slot layouts (streaming-scheduler.ts):
 * llama-quantize's mixes give some layers' experts more bytes than others,
 * and each layout's cache gets a share of the budget in proportion to its
 * experts' bytes, so each keeps about the same fraction resident.
 */
import { describe, expect, it } from 'vitest';
import { ExpertBudgetError } from '../../../src/experts/expert-cache';
import { shareBudget } from '../../../src/experts/streaming-scheduler';
import { expertSlotLayout } from '../../../src/kernels/expert-slots';
import { GgmlType } from '../../../src/quant/formats';

// Q4_K_M at 256 wide: gate/up Q4_K everywhere, down Q6_K on layers 0, 3, 6, 7 of 8.
const q4 = expertSlotLayout({ hidden: 256, ffn: 256, gateUpType: GgmlType.Q4_K, downType: GgmlType.Q4_K });
const q6 = expertSlotLayout({ hidden: 256, ffn: 256, gateUpType: GgmlType.Q4_K, downType: GgmlType.Q6_K });
const groups = [
  { layout: q6, layers: [0, 3, 6, 7], pinned: [] },
  { layout: q4, layers: [1, 2, 4, 5], pinned: [] },
];
const NEXPERTS = 8;
const TOPK = 2;
const allBytes = 4 * NEXPERTS * (q4.slotBytes + q6.slotBytes);

describe('shareBudget', () => {
  it('gives each layout the same fraction of its experts, within one slot', () => {
    for (const fraction of [0.25, 0.5, 0.9]) {
      const [six, four] = shareBudget(groups, fraction * allBytes, NEXPERTS, TOPK);
      expect(six! * q6.slotBytes + four! * q4.slotBytes).toBeLessThanOrEqual(fraction * allBytes);
      for (const slots of [six!, four!]) {
        expect(slots).toBeGreaterThanOrEqual(Math.floor(fraction * 4 * NEXPERTS) - 1);
        expect(slots).toBeLessThanOrEqual(Math.ceil(fraction * 4 * NEXPERTS));
      }
    }
  });

  it('holds all of them at the full budget', () => {
    expect(shareBudget(groups, allBytes, NEXPERTS, TOPK)).toEqual([4 * NEXPERTS, 4 * NEXPERTS]);
  });

  it('one layout: the budget in whole slots', () => {
    expect(shareBudget([{ layout: q4, layers: [0, 1], pinned: [] }], 5 * q4.slotBytes + 7, NEXPERTS, TOPK)).toEqual([5]);
  });

  it('below top-k in any layout is an ExpertBudgetError whose minimum works', () => {
    const tooSmall = 3 * q4.slotBytes;
    let error: unknown;
    try {
      shareBudget(groups, tooSmall, NEXPERTS, TOPK);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ExpertBudgetError);
    const minimum = (error as ExpertBudgetError).minimumBytes;
    expect((error as Error).message).toContain(`give at least ${minimum} bytes`);
    expect(shareBudget(groups, minimum, NEXPERTS, TOPK).every((slots) => slots >= TOPK)).toBe(true);
    expect(() => shareBudget(groups, minimum - 1, NEXPERTS, TOPK)).toThrow(ExpertBudgetError);
  });

  it('pinned experts add to their own layout\'s need', () => {
    const pinnedGroups = [{ ...groups[0]!, pinned: [{}, {}, {}] }, groups[1]!];
    let error: unknown;
    try {
      shareBudget(pinnedGroups, 0, NEXPERTS, TOPK);
    } catch (e) {
      error = e;
    }
    const minimum = (error as ExpertBudgetError).minimumBytes;
    expect(shareBudget(pinnedGroups, minimum, NEXPERTS, TOPK)[0]).toBeGreaterThanOrEqual(TOPK + 3);
  });
});
