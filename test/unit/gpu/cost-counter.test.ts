/**
 * The cost counter (src/gpu/cost-counter.ts) and what Recording counts on
 * it, on a stand-in device that records calls: per-device counters, exact
 * sums and differences, encode time that leaves out awaited waits, round
 * trips, counted uploads, passes and submissions.
 */

import { describe, expect, it, vi } from 'vitest';
import {
  COST_FIELDS, CostCounter, addCosts, costCounterOf, countDispatch, perCosts, subtractCosts, writeBufferCounted, zeroCosts,
} from '../../../src/gpu/cost-counter';
import { createUniformBuffer } from '../../../src/gpu/buffers';
import { Recording } from '../../../src/gpu/recording';

/** A device that does nothing but count what the code under test calls. */
function fakeDevice() {
  const calls = { passesBegun: 0, passesEnded: 0, submits: 0, writes: [] as number[] };
  const encoder = () => ({
    beginComputePass: () => {
      calls.passesBegun++;
      return { end: () => void calls.passesEnded++ };
    },
    finish: () => ({}),
  });
  const device = {
    createCommandEncoder: encoder,
    createBuffer: (d: { size: number }) => ({ getMappedRange: () => new ArrayBuffer(d.size), unmap: () => {} }),
    queue: {
      submit: () => void calls.submits++,
      writeBuffer: (_b: unknown, _o: number, data: ArrayBufferView) => void calls.writes.push(data.byteLength),
    },
  };
  return { device: device as unknown as GPUDevice, calls };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('cost counter', () => {
  it('is one counter per device, and dispatches add their weight bytes exactly', () => {
    const a = fakeDevice().device;
    const b = fakeDevice().device;
    expect(costCounterOf(a)).toBe(costCounterOf(a));
    expect(costCounterOf(a)).not.toBe(costCounterOf(b));
    countDispatch(a, 144);
    countDispatch(a, 2 ** 40); // beyond 32 bits: counts are plain numbers, exact to 2^53
    countDispatch(a);
    expect(costCounterOf(a).snapshot()).toMatchObject({ dispatches: 3, weightBytes: 2 ** 40 + 144 });
    expect(costCounterOf(b).snapshot()).toEqual(zeroCosts());
  });

  it('sums, differences and per-token views are field by field', () => {
    const x = { dispatches: 10, passes: 2, submissions: 3, roundTrips: 1, weightBytes: 1000, uploadBytes: 40, storeBytes: 7, encodeMs: 1.5 };
    const y = { dispatches: 4, passes: 1, submissions: 1, roundTrips: 1, weightBytes: 600, uploadBytes: 8, storeBytes: 0, encodeMs: 0.5 };
    expect(addCosts(x, y)).toEqual({ dispatches: 14, passes: 3, submissions: 4, roundTrips: 2, weightBytes: 1600, uploadBytes: 48, storeBytes: 7, encodeMs: 2 });
    expect(subtractCosts(x, y)).toEqual({ dispatches: 6, passes: 1, submissions: 2, roundTrips: 0, weightBytes: 400, uploadBytes: 32, storeBytes: 7, encodeMs: 1 });
    expect(perCosts(x, 2)).toEqual({ dispatches: 5, passes: 1, submissions: 1.5, roundTrips: 0.5, weightBytes: 500, uploadBytes: 20, storeBytes: 3.5, encodeMs: 0.75 });
    expect(perCosts(x, 0)).toEqual(zeroCosts());
    expect(Object.keys(zeroCosts()).sort()).toEqual([...COST_FIELDS].sort());
  });

  it('times encoding without the awaits it pauses for, and counts each mapAsync as a round trip', async () => {
    const counter = new CostCounter();
    counter.startEncode();
    const busyUntil = performance.now() + 20;
    while (performance.now() < busyUntil) {
      // JS work: counted
    }
    await counter.wait(sleep(60));
    await counter.roundTrip(sleep(60));
    counter.stopEncode();
    expect(counter.roundTrips).toBe(1);
    expect(counter.encodeMs).toBeGreaterThanOrEqual(19);
    // 120 ms were spent waiting; none of it may count (a generous margin for a busy machine).
    expect(counter.encodeMs).toBeLessThan(80);
    // A wait outside an encode interval does not open one.
    await counter.wait(sleep(5));
    expect(counter.snapshot().encodeMs).toBe(counter.encodeMs);
    counter.reset();
    expect(counter.snapshot()).toEqual(zeroCosts());
  });

  it('counts uploads: writeBuffer with its data bytes, and buffers made with data (uniform blocks)', () => {
    const { device, calls } = fakeDevice();
    const buffer = {} as GPUBuffer;
    writeBufferCounted(device, buffer, 0, new Uint32Array(6));
    writeBufferCounted(device, buffer, 8, new Uint8Array(5));
    expect(calls.writes).toEqual([24, 5]);
    // Node has no GPUBufferUsage until Dawn installs it; the flags' values do not matter to the stand-in device.
    vi.stubGlobal('GPUBufferUsage', { UNIFORM: 0x40, COPY_DST: 0x8 });
    try {
      createUniformBuffer(device, new ArrayBuffer(32));
    } finally {
      vi.unstubAllGlobals();
    }
    expect(costCounterOf(device).uploadBytes).toBe(24 + 5 + 32);
  });

  it('Recording counts the passes it begins and the submissions it makes', () => {
    const { device, calls } = fakeDevice();
    const rec = new Recording(device, 'test');
    rec.endPass();
    rec.beginPass();
    rec.submit(); // ends the pass, submits, opens a new encoder and pass
    rec.submit();
    rec.finish();
    expect(calls).toMatchObject({ passesBegun: 4, passesEnded: 4, submits: 3 });
    expect(costCounterOf(device).snapshot()).toMatchObject({ passes: 4, submissions: 3, dispatches: 0 });
  });
});
