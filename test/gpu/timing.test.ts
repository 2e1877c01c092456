/**
 * The GPU timer measures real work: a positive number of nanoseconds that
 * grows with the amount of work, with timestamp queries where the device has
 * them and with the wall clock otherwise (forced here so both paths run on
 * every adapter).
 *
 * "Grows" is checked as: six times the work takes longer than once the work,
 * comparing the fastest of three measurements of each. The work is a matvec
 * of 2 MB of f32 weights, or a copy of 16 MB (milliseconds on the software
 * adapters, far above Chromium's 0.1 ms timestamp quantisation and the wall
 * clock's submit latency). Software adapters share the CPU with everything
 * else running, which can stretch any one measurement several times; the
 * minimum of three filters that out. Nothing stricter (such as
 * proportionality) is asserted.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/device';
import { GpuTimer } from '../../src/gpu/timing';
import type { GpuTimingMethod } from '../../src/gpu/timing';
import { MatvecKernel } from '../../src/kernels/matvec';
import { GgmlType } from '../../src/quant/formats';
import { acquireTestGpu } from './support/gpu';

const ROWS = 512;
const COLS = 1024;
const COPY_BYTES = 16 << 20;
const HEAVY_REPEATS = 6;
const TRIES = 3;

/** The smallest of TRIES results of `measure`. */
async function fastestOf(measure: () => Promise<number>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < TRIES; i++) fastest = Math.min(fastest, await measure());
  return fastest;
}

describe('GpuTimer', () => {
  let gpu: GpuContext;
  let kernel: MatvecKernel;
  let buffers: { w: GPUBuffer; x: GPUBuffer; y: GPUBuffer };

  beforeAll(async () => {
    gpu = await acquireTestGpu();
    kernel = await MatvecKernel.create(gpu.device, GgmlType.F32);
    const weights = Float32Array.from({ length: ROWS * COLS }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    buffers = {
      w: createStorageBuffer(gpu.device, weights, 'timed weights'),
      x: createStorageBuffer(gpu.device, new Float32Array(COLS).fill(1), 'timed x'),
      y: createEmptyStorageBuffer(gpu.device, ROWS * 4, 'timed y'),
    };
  });
  afterAll(() => gpu?.device.destroy());

  const matvecs = (pass: GPUComputePassEncoder, count: number) => {
    for (let i = 0; i < count; i++) kernel.encode(pass, buffers, { rows: ROWS, cols: COLS });
  };

  it('uses timestamp queries exactly when the device has them, unless told to use the wall clock', () => {
    const expected: GpuTimingMethod = gpu.features.has('timestamp-query') ? 'timestamp-query' : 'wall-clock';
    const timer = GpuTimer.create(gpu.device);
    const wallClock = GpuTimer.create(gpu.device, { forceWallClock: true });
    expect(timer.method).toBe(expected);
    expect(wallClock.method).toBe('wall-clock');
    expect(wallClock.describe()).toMatch(/wall clock/);
    timer.destroy();
    wallClock.destroy();
  });

  for (const forceWallClock of [false, true]) {
    const name = forceWallClock ? 'wall clock' : 'default method';
    it(`times a compute pass as positive and growing with the work (${name})`, async () => {
      const timer = GpuTimer.create(gpu.device, { forceWallClock });
      await timer.timePass('warm-up', (pass) => matvecs(pass, 1));
      const onceNs = await fastestOf(() => timer.timePass('one matvec', (pass) => matvecs(pass, 1)));
      const sixNs = await fastestOf(() => timer.timePass('six matvecs', (pass) => matvecs(pass, HEAVY_REPEATS)));
      timer.destroy();
      expect(onceNs).toBeGreaterThan(0);
      expect(sixNs).toBeGreaterThan(onceNs);
    });

    it(`times commands outside passes (buffer copies) as positive and growing with the work (${name})`, async () => {
      const timer = GpuTimer.create(gpu.device, { forceWallClock });
      const source = createEmptyStorageBuffer(gpu.device, COPY_BYTES, 'copy source');
      const target = createEmptyStorageBuffer(gpu.device, COPY_BYTES, 'copy target');
      const copies = (encoder: GPUCommandEncoder, count: number) => {
        for (let i = 0; i < count; i++) encoder.copyBufferToBuffer(source, 0, target, 0, COPY_BYTES);
      };
      await timer.timeCommands('warm-up', (encoder) => copies(encoder, 1));
      const onceNs = await fastestOf(() => timer.timeCommands('one copy', (encoder) => copies(encoder, 1)));
      const sixNs = await fastestOf(() => timer.timeCommands('six copies', (encoder) => copies(encoder, HEAVY_REPEATS)));
      timer.destroy();
      source.destroy();
      target.destroy();
      expect(onceNs).toBeGreaterThan(0);
      expect(sixNs).toBeGreaterThan(onceNs);
    });
  }

  it('queues measurements started together, each getting its own result', async () => {
    const timer = GpuTimer.create(gpu.device);
    const counts = Array.from({ length: 2 * TRIES }, (_, i) => (i % 2 === 0 ? 1 : HEAVY_REPEATS));
    const results = await Promise.all(counts.map((count) => timer.timePass(`${count} matvecs`, (pass) => matvecs(pass, count))));
    timer.destroy();
    const onceNs = Math.min(...results.filter((_, i) => counts[i] === 1));
    const sixNs = Math.min(...results.filter((_, i) => counts[i] === HEAVY_REPEATS));
    expect(onceNs).toBeGreaterThan(0);
    expect(sixNs).toBeGreaterThan(onceNs);
  });
});
