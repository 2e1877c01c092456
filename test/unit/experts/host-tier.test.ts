import { describe, expect, it } from 'vitest';
import type { ExpertSource } from '../../../src/experts/expert-source';
import { defaultHostBudgetBytes, deviceMemory, expertTensorBytes, HostTier } from '../../../src/experts/host-tier';
import type { ExpertTensors } from '../../../src/kernels/expert-slots';

/** A store whose records are `bytesOf(layer, expert)` bytes (gate, up and down thirds); each read waits for `release()` when held. */
class FakeStore implements ExpertSource {
  readonly name = 'fake store';
  readonly reads: string[] = [];
  hold = false;
  failNext = false;
  private waiting: (() => void)[] = [];

  constructor(private readonly bytesOf: (layer: number, expert: number) => number = () => 300) {}

  async readExpert(layer: number, expert: number): Promise<ExpertTensors> {
    this.reads.push(`${layer}.${expert}`);
    if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.failNext) {
      this.failNext = false;
      throw new Error('store read failed');
    }
    const third = this.bytesOf(layer, expert) / 3;
    const part = () => new Uint8Array(third).fill(layer * 16 + expert);
    return { gate: part(), up: part(), down: part() };
  }

  release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    waiting.forEach((resolve) => resolve());
  }
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('host tier', () => {
  it('serves a read of a held record from memory, and the first read of each from the store', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 900 });
    const first = await host.readExpert(0, 1);
    const again = await host.readExpert(0, 1);
    expect(again).toBe(first);
    expect(store.reads).toEqual(['0.1']);
    expect(host.stats()).toMatchObject({ hits: 1, misses: 1, storeReads: 1, storeBytes: 300, heldBytes: 300, heldRecords: 1, budgetBytes: 900 });
  });

  it('never holds more than its budget: the least recently used records go first', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 900 });
    for (const e of [0, 1, 2]) await host.readExpert(0, e);
    await host.readExpert(0, 0); // 0 is now the most recent: 1 is the oldest
    await host.readExpert(0, 3);
    expect([0, 1, 2, 3].map((e) => host.has(0, e))).toEqual([true, false, true, true]);
    expect(host.stats()).toMatchObject({ heldBytes: 900, heldRecords: 3, evictions: 1 });
    for (let e = 4; e < 20; e++) {
      await host.readExpert(1, e);
      expect(host.stats().heldBytes).toBeLessThanOrEqual(900);
    }
  });

  it('keeps what the GPU just evicted longer: its eviction counts as a use', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 900 });
    for (const e of [0, 1, 2]) await host.readExpert(0, e);
    host.gpuEvicted(0, 0); // 0 was in GPU slots until now: 1 is the oldest
    host.gpuEvicted(0, 7); // not held: nothing happens
    await host.readExpert(0, 3);
    expect([0, 1, 2, 3].map((e) => host.has(0, e))).toEqual([true, false, true, true]);
  });

  it('keeps records of mixed sizes under the budget, and passes through a record larger than the whole budget', async () => {
    const store = new FakeStore((_, expert) => (expert === 9 ? 1200 : 150 * (1 + (expert % 3))));
    const host = new HostTier(store, { budgetBytes: 1000 });
    for (let e = 0; e < 9; e++) {
      await host.readExpert(0, e);
      expect(host.stats().heldBytes).toBeLessThanOrEqual(1000);
    }
    const held = host.stats().heldRecords;
    const big = await host.readExpert(0, 9);
    expect(expertTensorBytes(big)).toBe(1200);
    expect(host.has(0, 9)).toBe(false);
    expect(host.stats().heldRecords).toBe(held); // nothing was evicted for it
    await host.readExpert(0, 9);
    expect(store.reads.filter((r) => r === '0.9')).toHaveLength(2);
  });

  it('shares one store read among reads of a record in flight, and warms join them', async () => {
    const store = new FakeStore();
    store.hold = true;
    const host = new HostTier(store, { budgetBytes: 900 });
    const a = host.readExpert(2, 5);
    const b = host.readExpert(2, 5);
    host.warm(2, 5);
    await flush();
    expect(store.reads).toEqual(['2.5']);
    store.release();
    expect(await a).toBe(await b);
    expect(host.stats()).toMatchObject({ hits: 1, misses: 1, storeReads: 1, warmReads: 0 });
  });

  it('warms records ahead of need without passing its budget, and counts those a read then used', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 600, warmConcurrency: 1 });
    host.warm(0, 1);
    host.warm(0, 2);
    host.warm(0, 3);
    await host.settle();
    // One at a time: 1 starts at once, then the youngest waiting guess first (3, then 2, which evicts 1).
    expect(store.reads).toEqual(['0.1', '0.3', '0.2']);
    expect([1, 2, 3].map((e) => host.has(0, e))).toEqual([false, true, true]);
    await host.readExpert(0, 2);
    expect(host.stats()).toMatchObject({ hits: 1, misses: 0, storeReads: 3, warmReads: 3, warmUsed: 1, heldBytes: 600 });
  });

  it('drops the oldest queued warms beyond its queue limit, and a demand read overtakes a queued warm', async () => {
    const store = new FakeStore();
    store.hold = true;
    const host = new HostTier(store, { budgetBytes: 3000, warmConcurrency: 1, warmQueueLimit: 2 });
    host.warm(0, 0); // starts at once
    host.warm(0, 1);
    host.warm(0, 2);
    host.warm(0, 3); // queue [2, 3]: 1 was dropped
    const demand = host.readExpert(0, 2); // taken out of the queue and read now
    await flush();
    expect(store.reads).toEqual(['0.0', '0.2']);
    store.release();
    await demand;
    await flush();
    store.release();
    await host.settle();
    expect(store.reads).toEqual(['0.0', '0.2', '0.3']);
    expect(host.has(0, 1)).toBe(false);
    expect(host.stats()).toMatchObject({ misses: 1, warmReads: 2, storeReads: 3 });
  });

  it('forgets a failed read: the next read goes to the store again', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 900 });
    store.failNext = true;
    await expect(host.readExpert(0, 0)).rejects.toThrow('store read failed');
    expect(host.has(0, 0)).toBe(false);
    await host.readExpert(0, 0);
    expect(store.reads).toEqual(['0.0', '0.0']);
    expect(host.stats()).toMatchObject({ storeReads: 1, heldRecords: 1 });
  });

  it('a demand read that joins a failed warm read goes to the store itself rather than failing', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 900 });
    store.hold = true;
    store.failNext = true;
    host.warm(0, 2);
    await flush();
    const demand = host.readExpert(0, 2);
    store.hold = false;
    store.release();
    const tensors = await demand;
    expect(tensors.gate[0]).toBe(2);
    expect(store.reads).toEqual(['0.2', '0.2']);
    expect(host.has(0, 2)).toBe(true);
  });

  it('holds nothing that was in flight when cleared', async () => {
    const store = new FakeStore();
    const host = new HostTier(store, { budgetBytes: 900 });
    store.hold = true;
    const read = host.readExpert(0, 1);
    host.warm(0, 2);
    await flush();
    host.clear();
    store.release();
    await read;
    await flush();
    expect([host.has(0, 1), host.has(0, 2)]).toEqual([false, false]);
    expect(host.stats().heldBytes).toBe(0);
  });

  it('with a budget of 0 holds and warms nothing, and reports every store read to onStoreRead', async () => {
    const store = new FakeStore();
    let reported = 0;
    const host = new HostTier(store, { budgetBytes: 0, onStoreRead: (bytes) => (reported += bytes) });
    await host.readExpert(0, 0);
    await host.readExpert(0, 0);
    host.warm(0, 1);
    await host.settle();
    expect(store.reads).toEqual(['0.0', '0.0']);
    expect(reported).toBe(600);
    expect(host.stats()).toMatchObject({ misses: 2, hits: 0, storeReads: 2, storeBytes: 600, heldBytes: 0, warmReads: 0 });
    host.resetStats();
    expect(host.stats()).toMatchObject({ misses: 0, storeReads: 0, storeBytes: 0 });
  });

  it('rejects a budget that is not a number of bytes >= 0', () => {
    const store = new FakeStore();
    for (const budgetBytes of [-1, Number.NaN, Infinity]) expect(() => new HostTier(store, { budgetBytes })).toThrow(RangeError);
  });

  it('defaults to a quarter of the device memory, at most every expert', () => {
    expect(defaultHostBudgetBytes(10 * 2 ** 30, 16 * 2 ** 30)).toBe(4 * 2 ** 30);
    expect(defaultHostBudgetBytes(2 ** 30, 16 * 2 ** 30)).toBe(2 ** 30);
    expect(defaultHostBudgetBytes(2 ** 30, 0)).toBe(0);
    // In Node the device memory is os.totalmem().
    expect(deviceMemory()).toBeGreaterThan(0);
  });
});
