/**
 * The suite really runs on a WebGPU adapter, and the device it gets has the
 * raised limits and the optional features the adapter offers.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeGpu, REQUESTED_LIMITS, USEFUL_FEATURES } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { acquireTestGpu } from './support/gpu';

describe('the GPU test environment', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  it('has an adapter that identifies itself', () => {
    console.log(describeGpu(gpu));
    const { vendor, architecture, device, description } = gpu.adapterInfo;
    expect([vendor, architecture, device, description].join('')).not.toBe('');
    expect(gpu.device.label).toBe('test device');
  });

  it("gets the adapter's maximum for every limit that matters, not the defaults", () => {
    for (const name of REQUESTED_LIMITS) {
      expect({ name, value: gpu.limits[name] }).toEqual({ name, value: gpu.adapter.limits[name] });
    }
  });

  it('is granted each useful feature exactly when the adapter has it', () => {
    for (const feature of USEFUL_FEATURES) {
      expect({ feature, granted: gpu.features.has(feature) }).toEqual({
        feature,
        granted: gpu.adapter.features.has(feature),
      });
    }
  });
});
