/**
 * The group list of the grouped (prefill) expert FFN, built on the GPU from
 * the router's ids and the expert table, is the list the CPU builds with
 * groupPairsByExpert + packGroupList (pair indices placed after room for the
 * most groups), word for word: null and masked ids left out, NO_SLAB table
 * entries kept, experts split into tiles. Its group count never passes
 * maxGroups, which sizes the FFN's grid; and the FFN run from it over that
 * grid gives the bits of the per-token expert-table FFN.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { ExpertFfnKernel, expertFfnScratchBytes } from '../../src/kernels/expert-ffn';
import { ExpertGroupListKernel, maxGroups } from '../../src/kernels/expert-group-list';
import { expertSlotLayout, groupListWords, groupPairsByExpert, NO_SLAB, packExpertSlot, packGroupList, packSlotRefs } from '../../src/kernels/expert-slots';
import type { ExpertSlotRef } from '../../src/kernels/expert-slots';
import { packRouting, routingBytes } from '../../src/kernels/router';
import { GgmlType } from '../../src/quant/formats';
import { mulberry32, randomBlocks, randomNormal } from '../../src/quant/random';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

const MASKED = 0xffffffff;

/** ids [tokens * topK] with distinct ids per token, some of them null (>= nExperts) or masked. */
function randomIds(tokens: number, topK: number, nExperts: number, seed: number): Uint32Array {
  const rng = mulberry32(seed);
  const ids = new Uint32Array(tokens * topK);
  for (let t = 0; t < tokens; t++) {
    const pool = Array.from({ length: nExperts + 2 }, (_, e) => e);
    for (let j = 0; j < topK; j++) {
      const pick = pool.splice(Math.floor(rng() * pool.length), 1)[0];
      ids[t * topK + j] = pick === nExperts + 1 ? MASKED : pick;
    }
  }
  return ids;
}

/** What the GPU must write: the CPU's list, its pair indices moved to start at 4 + 4 * pairs. */
function expectedList(ids: Uint32Array, nExperts: number, tile: number, refOf: (e: number) => ExpertSlotRef | undefined): Uint32Array {
  const groups = groupPairsByExpert(ids, nExperts, tile);
  const packed = packGroupList(groups, refOf);
  const pairs = ids.length;
  const out = new Uint32Array(groupListWords(pairs));
  out.set(packed.subarray(0, 4 + 4 * groups.length));
  const pairBase = 4 + 4 * pairs;
  const packedBase = 4 + 4 * groups.length;
  for (let g = 0; g < groups.length; g++) out[4 + 4 * g + 2] = pairBase + (packed[4 + 4 * g + 2] - packedBase);
  out.set(packed.subarray(packedBase), pairBase);
  return out;
}

describe('expert group list kernel', () => {
  let gpu: GpuContext;
  let kernel: ExpertGroupListKernel;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
    kernel = await ExpertGroupListKernel.create(gpu.device);
  });
  afterAll(() => gpu?.device.destroy());

  const cases = [
    { tokens: 1, topK: 2, nExperts: 4, tile: 8, layer: 0 },
    { tokens: 13, topK: 4, nExperts: 8, tile: 3, layer: 1 },
    { tokens: 40, topK: 8, nExperts: 64, tile: 8, layer: 2 },
    { tokens: 70, topK: 2, nExperts: 300, tile: 16, layer: 0 },
  ];
  for (const c of cases) {
    it(`gathers ${c.tokens} tokens x ${c.topK} of ${c.nExperts} experts in tiles of ${c.tile} as the CPU does`, async () => {
      const { device } = gpu;
      const ids = randomIds(c.tokens, c.topK, c.nExperts, c.tokens * 31 + c.nExperts);
      const weights = Float32Array.from(ids, (_, i) => i / ids.length);
      // Layer c.layer's row of the table: every third expert not resident; other layers' rows are decoys.
      const refOf = (e: number): ExpertSlotRef | undefined => (e % 3 === 1 ? undefined : { slab: e % 2, offsetBytes: 256 * (e + 1) });
      const table = Array.from({ length: (c.layer + 1) * c.nExperts }, (_, i) =>
        i >= c.layer * c.nExperts ? refOf(i - c.layer * c.nExperts) : { slab: 7, offsetBytes: 4 * i },
      );
      const pairs = c.tokens * c.topK;
      const list = createEmptyStorageBuffer(device, groupListWords(pairs) * 4, 'group list');
      // Stale words from an earlier batch must not matter where the list is read.
      device.queue.writeBuffer(list, 0, new Uint32Array(groupListWords(pairs)).fill(0xabcdef));
      let bound = 0;
      await withGpuErrorScope(device, 'group list', () =>
        submitComputePass(device, 'group list', (pass) => {
          bound = kernel.encode(
            pass,
            {
              routing: createStorageBuffer(device, packRouting({ ids, weights }, c.tokens, c.topK)),
              table: createStorageBuffer(device, packSlotRefs(table)),
              list,
            },
            { tokens: c.tokens, topK: c.topK, nExperts: c.nExperts, layer: c.layer, tile: c.tile },
          );
        }),
      );
      const actual = new Uint32Array(await readBuffer(device, list));
      const expected = expectedList(ids, c.nExperts, c.tile, refOf);
      const groups = expected[0];
      expect(groups, 'the case has groups').toBeGreaterThan(0);
      expect(bound).toBe(maxGroups(pairs, c.nExperts, c.tile));
      expect(groups).toBeLessThanOrEqual(bound);
      // Compare what the FFN reads: the header, the records and the pair indices.
      const read = (words: Uint32Array) => [...words.subarray(0, 4 + 4 * groups), ...words.subarray(4 + 4 * pairs, 4 + 4 * pairs + (pairs - ids.filter((id) => id >= c.nExperts).length))];
      expect(read(actual)).toEqual(read(expected));
      if (c.tokens > 1) expect([...expected.subarray(4, 4 + 4 * groups)].filter((_, i) => i % 4 === 0), 'the case has a non-resident expert').toContain(NO_SLAB);
    });
  }

  it('feeds the grouped FFN over a grid of maxGroups, giving the bits of the per-token expert table', async () => {
    const { device } = gpu;
    const rng = mulberry32(5);
    const [tokens, topK, nExperts, hidden, ffn] = [21, 4, 8, 64, 32];
    const layout = expertSlotLayout({ hidden, ffn, gateUpType: GgmlType.Q8_0, downType: GgmlType.Q8_0 });
    const slab = new Uint8Array(nExperts * layout.slotBytes);
    for (let e = 0; e < nExperts; e++) {
      const tensors = { gate: randomBlocks(GgmlType.Q8_0, ffn * hidden, rng, 0.05), up: randomBlocks(GgmlType.Q8_0, ffn * hidden, rng, 0.05), down: randomBlocks(GgmlType.Q8_0, hidden * ffn, rng, 0.05) };
      slab.set(packExpertSlot(layout, tensors), e * layout.slotBytes);
    }
    const ids = randomIds(tokens, topK, nExperts, 9);
    const weights = Float32Array.from(ids, () => rng());
    const x = Float32Array.from({ length: tokens * hidden }, () => randomNormal(rng));
    const y0 = Float32Array.from({ length: tokens * hidden }, () => randomNormal(rng) * 0.01);
    const table = createStorageBuffer(device, packSlotRefs(Array.from({ length: nExperts }, (_, e) => ({ slab: 0, offsetBytes: e * layout.slotBytes }))));
    const routing = createStorageBuffer(device, packRouting({ ids, weights }, tokens, topK));
    const common = { x: createStorageBuffer(device, x), routing, slabs: [createStorageBuffer(device, slab)] };
    const run = async (grouped: boolean): Promise<Float32Array> => {
      const variant = { layout, topK, mode: grouped ? ('grouped' as const) : ('expert-table' as const), activation: 'silu' as const, slabCount: 1 };
      const ffnKernel = await ExpertFfnKernel.create(device, variant);
      const scratch = expertFfnScratchBytes(variant, tokens);
      const y = createStorageBuffer(device, y0);
      const list = createEmptyStorageBuffer(device, groupListWords(tokens * topK) * 4);
      const binding = ffnKernel.bind(
        { ...common, y, hidden: createEmptyStorageBuffer(device, scratch.hidden), pairOutput: createEmptyStorageBuffer(device, scratch.pairOutput), slots: grouped ? list : table },
        { tokens, nRealExperts: nExperts },
      );
      await withGpuErrorScope(device, 'ffn', () =>
        submitComputePass(device, 'ffn', (pass) => {
          if (!grouped) return ffnKernel.encode(pass, binding);
          const bound = kernel.encode(pass, { routing, table, list }, { tokens, topK, nExperts, layer: 0, tile: ffnKernel.pairTile });
          ffnKernel.encode(pass, binding, bound);
        }),
      );
      return readFloat32(device, y, tokens * hidden);
    };
    const perToken = await run(false);
    expect(firstMismatch(perToken, y0), 'the FFN changed y').toBeDefined();
    expect(firstMismatch(await run(true), perToken)).toBeUndefined();
  });

  it('bounds the groups tightly: the worst routing reaches maxGroups', () => {
    // 64 experts, tile 8: 63 experts with one pair each and one with the rest.
    const pairs = 200;
    const ids = Uint32Array.from({ length: pairs }, (_, p) => (p < 63 ? p : 63));
    expect(groupPairsByExpert(ids, 64, 8).length).toBe(maxGroups(pairs, 64, 8));
    expect(maxGroups(16, 64, 8)).toBe(16);
    expect(maxGroups(1024, 64, 8)).toBe(64 + 120);
  });
});
