/** Expert slot layouts, slot refs and group lists: the data the expert FFN kernels read. */

import { describe, expect, it } from 'vitest';
import {
  expertSlotLayout,
  groupListWords,
  groupPairsByExpert,
  NO_SLAB,
  packExpertSlot,
  packGroupList,
  packSlotRefs,
  SLOT_ALIGNMENT_BYTES,
  slotsPerSlab,
} from '../../../src/kernels/expert-slots';
import { packRouting, routingBytes, unpackRouting } from '../../../src/kernels/router';
import { GgmlType } from '../../../src/quant/formats';

describe('expertSlotLayout', () => {
  it('places gate, up and down back to back in their block formats, padded to the slot alignment', () => {
    // H 256, F 512: Q4_K gate/up rows are 1 block (144 bytes); Q6_K down rows are 2 blocks (420 bytes).
    const layout = expertSlotLayout({ hidden: 256, ffn: 512, gateUpType: GgmlType.Q4_K, downType: GgmlType.Q6_K });
    expect(layout.gate).toEqual({ offsetBytes: 0, sizeBytes: 512 * 144 });
    expect(layout.up).toEqual({ offsetBytes: 512 * 144, sizeBytes: 512 * 144 });
    expect(layout.down).toEqual({ offsetBytes: 2 * 512 * 144, sizeBytes: 256 * 420 });
    expect(layout.biases).toBeUndefined();
    expect(layout.slotBytes).toBe(Math.ceil((2 * 512 * 144 + 256 * 420) / SLOT_ALIGNMENT_BYTES) * SLOT_ALIGNMENT_BYTES);
    expect(slotsPerSlab(layout, 10 * layout.slotBytes - 1)).toBe(9);
  });

  it('puts f32 biases after the matrices at 4-byte aligned offsets', () => {
    // MXFP4 rows of 64: 2 blocks of 17 bytes, so the matrices end at an odd byte.
    const layout = expertSlotLayout({ hidden: 64, ffn: 3 * 32, gateUpType: GgmlType.MXFP4, downType: GgmlType.MXFP4, hasBiases: true });
    const matricesEnd = 96 * 34 * 2 + 64 * 51;
    expect(layout.biases!.gate.offsetBytes).toBe(Math.ceil(matricesEnd / 4) * 4);
    expect(layout.biases!.up.offsetBytes).toBe(layout.biases!.gate.offsetBytes + 96 * 4);
    expect(layout.biases!.down).toEqual({ offsetBytes: layout.biases!.up.offsetBytes + 96 * 4, sizeBytes: 64 * 4 });
    expect(layout.slotBytes % SLOT_ALIGNMENT_BYTES).toBe(0);
  });

  it('rejects rows that are not whole blocks and types without a GPU decoder', () => {
    expect(() => expertSlotLayout({ hidden: 64, ffn: 64, gateUpType: GgmlType.Q4_K, downType: GgmlType.Q8_0 })).toThrow(/multiple of 256/);
    expect(() => expertSlotLayout({ hidden: 64, ffn: 64, gateUpType: GgmlType.Q8_1, downType: GgmlType.Q8_0 })).toThrow(/Q8_1/);
  });
});

describe('packExpertSlot', () => {
  const layout = expertSlotLayout({ hidden: 8, ffn: 16, gateUpType: GgmlType.F32, downType: GgmlType.F16, hasBiases: true });
  const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

  it('copies each tensor to its range and leaves the padding zero', () => {
    const slot = packExpertSlot(layout, {
      gate: bytes(16 * 8 * 4, 1),
      up: bytes(16 * 8 * 4, 2),
      down: bytes(8 * 16 * 2, 3),
      gateBias: new Float32Array(16).fill(1.5),
      upBias: new Float32Array(16).fill(-2),
      downBias: new Float32Array(8).fill(4),
    });
    expect(slot.length).toBe(layout.slotBytes);
    expect(slot[layout.up.offsetBytes - 1]).toBe(1);
    expect(slot[layout.up.offsetBytes]).toBe(2);
    expect(slot[layout.down.offsetBytes]).toBe(3);
    const view = new DataView(slot.buffer);
    expect(view.getFloat32(layout.biases!.gate.offsetBytes, true)).toBe(1.5);
    expect(view.getFloat32(layout.biases!.up.offsetBytes + 60, true)).toBe(-2);
    expect(view.getFloat32(layout.biases!.down.offsetBytes + 28, true)).toBe(4);
    expect(slot[layout.slotBytes - 1]).toBe(0);
  });

  it('rejects tensors of the wrong size and missing or unexpected biases', () => {
    const tensors = { gate: bytes(512, 0), up: bytes(512, 0), down: bytes(256, 0) };
    expect(() => packExpertSlot(layout, tensors)).toThrow(/biases/);
    expect(() => packExpertSlot(layout, { ...tensors, gate: bytes(511, 0) })).toThrow(/gate/);
    const plain = expertSlotLayout({ hidden: 8, ffn: 16, gateUpType: GgmlType.F32, downType: GgmlType.F16 });
    expect(() => packExpertSlot(plain, { ...tensors, downBias: new Float32Array(8) })).toThrow(/no biases/);
  });
});

describe('packSlotRefs', () => {
  it('writes {slab, offset} per ref and NO_SLAB for a missing one', () => {
    expect([...packSlotRefs([{ slab: 1, offsetBytes: 512 }, undefined, { slab: 0, offsetBytes: 0 }])]).toEqual([1, 512, NO_SLAB, 0, 0, 0]);
  });

  it('rejects offsets that are not 4-byte aligned u32 and invalid slabs', () => {
    expect(() => packSlotRefs([{ slab: 0, offsetBytes: 6 }])).toThrow(/aligned/);
    expect(() => packSlotRefs([{ slab: 0, offsetBytes: 2 ** 32 }])).toThrow(/aligned/);
    expect(() => packSlotRefs([{ slab: -1, offsetBytes: 0 }])).toThrow(/slab/);
  });
});

describe('groupPairsByExpert and packGroupList', () => {
  // 3 tokens, k = 2: pairs 0..5 routed to experts 4, 1, 1, 9, 4, 1 (9 is a null expert).
  const ids = Uint32Array.of(4, 1, 1, 9, 4, 1);

  it('gathers pairs by ascending expert, in tiles, leaving out null experts', () => {
    expect(groupPairsByExpert(ids, 8, 8)).toEqual([
      { expert: 1, pairs: [1, 2, 5] },
      { expert: 4, pairs: [0, 4] },
    ]);
    expect(groupPairsByExpert(ids, 8, 2)).toEqual([
      { expert: 1, pairs: [1, 2] },
      { expert: 1, pairs: [5] },
      { expert: 4, pairs: [0, 4] },
    ]);
  });

  it('lays out a header, one record per group and the pair indices', () => {
    const groups = groupPairsByExpert(ids, 8, 2);
    const words = packGroupList(groups, (e) => (e === 1 ? { slab: 1, offsetBytes: 1024 } : undefined));
    const pairsStart = 4 + 3 * 4;
    expect([...words]).toEqual([
      3, 0, 0, 0,
      1, 1024, pairsStart, 2,
      1, 1024, pairsStart + 2, 1,
      NO_SLAB, 0, pairsStart + 3, 2,
      1, 2, 5, 0, 4,
    ]);
    expect(words.length).toBeLessThanOrEqual(groupListWords(ids.length));
  });
});

describe('routing words', () => {
  it('hold k ids then k weights per token, and round-trip', () => {
    const routing = { ids: Uint32Array.of(3, 1, 0, 2), weights: Float32Array.of(0.75, 0.25, 0.5, 0.5) };
    const words = packRouting(routing, 2, 2);
    expect(words.byteLength).toBe(routingBytes(2, 2));
    expect([...words.subarray(0, 2)]).toEqual([3, 1]);
    expect(new Float32Array(words.buffer)[2]).toBe(0.75);
    expect(unpackRouting(words, 2, 2)).toEqual(routing);
  });
});
