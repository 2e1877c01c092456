/** Cache policies on hand-made access sequences, with exact hit counts. */
import { describe, expect, it } from 'vitest';
import { KeyHeap } from '../../../src/experts/heap';
import { FifoPolicy, LfuDecayPolicy, LfuPolicy, LruPolicy, createPolicy, log2AddExp, POLICY_NAMES } from '../../../src/experts/policies';
import { expertKey, keyExpert, keyLayer, type ExpertCachePolicy } from '../../../src/experts/policy';

function hitsOf(policy: ExpertCachePolicy, keys: number[]): number {
  for (const k of keys) policy.access(k);
  expect(policy.hits + policy.misses).toBe(keys.length);
  return policy.hits;
}

// Two classic reference strings of operating-systems textbooks.
const BELADY_ANOMALY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
const TWENTY_REFS = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];

describe('expert keys', () => {
  it('encode (layer, expert) as layer * nExperts + expert and back', () => {
    expect(expertKey(3, 5, 8)).toBe(29);
    expect(keyLayer(29, 8)).toBe(3);
    expect(keyExpert(29, 8)).toBe(5);
  });
});

describe('KeyHeap', () => {
  it('keeps the comparator minimum on top through pushes, updates and removals', () => {
    const prio: number[] = [];
    const heap = new KeyHeap((a, b) => prio[a] - prio[b]);
    [5, 3, 8, 1, 9, 2].forEach((p, key) => {
      prio[key] = p;
      heap.push(key);
    });
    expect(heap.peek()).toBe(3);
    prio[3] = 10;
    heap.update(3);
    expect(heap.peek()).toBe(5);
    expect(heap.remove(5)).toBe(true);
    expect(heap.remove(5)).toBe(false);
    expect(heap.peek()).toBe(1);
    expect(heap.size).toBe(5);
    expect(() => heap.push(1)).toThrow(/already/);
  });
});

describe('LRU', () => {
  it('hits 2 of the 12 anomaly references with 3 slots and 4 with 4 slots', () => {
    expect(hitsOf(new LruPolicy(3), BELADY_ANOMALY)).toBe(2);
    expect(hitsOf(new LruPolicy(4), BELADY_ANOMALY)).toBe(4);
  });

  it('faults 12 times on the twenty-reference string with 3 slots', () => {
    const p = new LruPolicy(3);
    hitsOf(p, TWENTY_REFS);
    expect(p.misses).toBe(12);
  });

  it('evicts the least recently used key and reports it', () => {
    const p = new LruPolicy(2);
    p.access(1);
    p.access(2);
    p.access(1);
    expect(p.victim()).toBe(2);
    expect(p.access(3)).toEqual({ hit: false, admitted: true, evicted: 2 });
    expect(p.residentKeys()).toEqual([1, 3]);
  });

  it('always misses a cycle one longer than the cache', () => {
    const cycle = [0, 1, 2, 3];
    expect(hitsOf(new LruPolicy(3), [...cycle, ...cycle, ...cycle])).toBe(0);
  });
});

describe('FIFO', () => {
  it('shows Belady\'s anomaly: 3 hits with 3 slots, only 2 with 4', () => {
    expect(hitsOf(new FifoPolicy(3), BELADY_ANOMALY)).toBe(3);
    expect(hitsOf(new FifoPolicy(4), BELADY_ANOMALY)).toBe(2);
  });

  it('faults 15 times on the twenty-reference string with 3 slots', () => {
    const p = new FifoPolicy(3);
    hitsOf(p, TWENTY_REFS);
    expect(p.misses).toBe(15);
  });
});

describe('LFU', () => {
  it('evicts the least frequently used key, ties to the least recently used', () => {
    const p = new LfuPolicy(2);
    expect(hitsOf(p, [1, 1, 2, 3, 1])).toBe(2); // 3 evicts 2 (1 use against 2)
    expect(p.residentKeys()).toEqual([1, 3]);
    const q = new LfuPolicy(2);
    q.access(5);
    q.access(4);
    expect(q.victim()).toBe(5); // equal counts: 5 was used longer ago
  });

  it('keeps the counts of evicted keys by default, and forgets them on request', () => {
    const seq = [1, 1, 2, 2, 2, 3, 1, 4, 2];
    // with history, 1 returns with 3 uses and 4 then evicts 2 (equal counts, older); without, 4 evicts 1
    expect(hitsOf(new LfuPolicy(2), seq)).toBe(3);
    expect(hitsOf(new LfuPolicy(2, { keepHistory: false }), seq)).toBe(4);
  });

  it('does not count a prefetch as a use', () => {
    const p = new LfuPolicy(2);
    p.access(1);
    p.prefetch(2);
    p.prefetch(2);
    expect(p.victim()).toBe(2);
    expect(p.hits + p.misses).toBe(1);
  });
});

describe('LFU with exponential decay', () => {
  it('weighs each use by 2^-(age / half-life), age in demand accesses', () => {
    const p = new LfuDecayPolicy(4, { halfLifeAccesses: 2 });
    p.access(1); // t = 1
    p.access(2); // t = 2
    p.access(1); // t = 3: key 1 weighs 2^-1 + 2^0
    expect(p.weight(1)).toBeCloseTo(1.5, 12);
    expect(p.weight(2)).toBeCloseTo(2 ** -0.5, 12);
    expect(p.weight(7)).toBe(0);
  });

  it('acts like LRU with a short half-life and like LFU with a long one', () => {
    const seq = [1, 1, 1, 2];
    const short = new LfuDecayPolicy(2, { halfLifeAccesses: 0.5 });
    const long = new LfuDecayPolicy(2, { halfLifeAccesses: 1e6 });
    hitsOf(short, seq);
    hitsOf(long, seq);
    expect(short.victim()).toBe(1);
    expect(long.victim()).toBe(2);
  });

  it('stays finite over thousands of half-lives (scores kept in log space)', () => {
    const p = new LfuDecayPolicy(2, { halfLifeAccesses: 1 });
    for (let i = 0; i < 3_000; i++) p.access(i % 3);
    expect(Number.isFinite(p.weight(2))).toBe(true);
    expect(p.weight(2)).toBeCloseTo(8 / 7, 12); // 1 + 2^-3 + 2^-6 + ...
  });

  it('adds in log space exactly', () => {
    expect(log2AddExp(3, 3)).toBe(4);
    expect(log2AddExp(-Infinity, 5)).toBe(5);
    expect(log2AddExp(2000, 0)).toBe(2000);
  });
});

describe('pins', () => {
  it('keep pinned keys resident; the rest share the remaining slots', () => {
    for (const name of POLICY_NAMES) {
      const p = createPolicy(name, 2);
      p.pin([9]);
      expect(hitsOf(p, [1, 2, 1, 2, 9])).toBe(1); // one free slot: only the pinned key hits
      expect(p.has(9)).toBe(true);
      expect(p.isPinned(9)).toBe(true);
    }
  });

  it('nest, and a key becomes evictable when its last pin goes', () => {
    const p = new LruPolicy(2);
    p.pin([1]);
    p.pin([1]);
    p.access(2);
    p.unpin([1]);
    expect(p.victim()).toBe(2);
    p.unpin([1]);
    expect(p.victim()).toBe(1);
  });

  it('refuse admission when every slot is pinned, counting the access a miss', () => {
    const p = new LruPolicy(1);
    p.pin([1]);
    expect(p.access(2)).toEqual({ hit: false, admitted: false, evicted: undefined });
    expect(p.misses).toBe(1);
    expect(p.victim()).toBeUndefined();
    expect(() => p.pin([3])).toThrow(/all 1 slots are pinned/);
  });

  it('with capacity 0 nothing is admitted', () => {
    const p = createPolicy('lfu', 0);
    expect(hitsOf(p, [1, 1, 1])).toBe(0);
    expect(p.size).toBe(0);
  });
});

describe('createPolicy', () => {
  it('builds every named policy with the given capacity', () => {
    for (const name of POLICY_NAMES) {
      const p = createPolicy(name, 5);
      expect(p.name).toBe(name);
      expect(p.capacity).toBe(5);
    }
    expect(() => createPolicy('lru', -1)).toThrow(RangeError);
  });
});
