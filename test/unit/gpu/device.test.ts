/**
 * Device acquisition against fake WebGPU objects: the errors when WebGPU is
 * missing, the limits and features requested, and the adapter description.
 */

import { describe, expect, it } from 'vitest';
import {
  chooseFeatures,
  describeGpu,
  REQUESTED_LIMITS,
  requestGpuDevice,
  summarizeAdapter,
} from '../../../src/gpu/device';
import { GpuUnavailableError } from '../../../src/gpu/errors';

const ADAPTER_LIMITS = {
  maxStorageBufferBindingSize: 1 << 30,
  maxBufferSize: 2 ** 32 - 1,
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxStorageBuffersPerShaderStage: 16,
  maxComputeWorkgroupsPerDimension: 65535,
};

const ADAPTER_INFO = {
  vendor: 'acme',
  architecture: 'rdna9',
  device: '0x1234',
  description: 'Acme GPU',
  isFallbackAdapter: false,
  subgroupMinSize: 32,
  subgroupMaxSize: 64,
};

/** A fake GPU whose adapter records the device descriptor it is asked for. */
function fakeGpu(adapterFeatures: string[]) {
  const requests: GPUDeviceDescriptor[] = [];
  const adapter = {
    features: new Set(adapterFeatures),
    limits: ADAPTER_LIMITS,
    info: ADAPTER_INFO,
    async requestDevice(descriptor: GPUDeviceDescriptor) {
      requests.push(descriptor);
      return { features: new Set(descriptor.requiredFeatures), limits: { ...ADAPTER_LIMITS, ...descriptor.requiredLimits } };
    },
  };
  const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
  return { gpu, requests };
}

describe('requestGpuDevice', () => {
  it('fails with NO_WEBGPU when there is no navigator.gpu', async () => {
    const error = await requestGpuDevice().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuUnavailableError);
    expect(error).toMatchObject({ code: 'NO_WEBGPU', message: expect.stringMatching(/navigator\.gpu is missing/) });
  });

  it('fails with NO_WEBGPU when the GPU offers no adapter', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    await expect(requestGpuDevice({ gpu })).rejects.toMatchObject({ code: 'NO_WEBGPU' });
  });

  it("asks for the adapter's maximum of every limit that matters", async () => {
    const { gpu, requests } = fakeGpu([]);
    const context = await requestGpuDevice({ gpu });
    expect(Object.keys(requests[0].requiredLimits!).sort()).toEqual([...REQUESTED_LIMITS].sort());
    for (const name of REQUESTED_LIMITS) expect(requests[0].requiredLimits![name]).toBe(ADAPTER_LIMITS[name]);
    expect(context.limits.maxStorageBufferBindingSize).toBe(1 << 30);
  });

  it('takes the wanted features the adapter has and skips the others', async () => {
    const { gpu, requests } = fakeGpu(['subgroups', 'timestamp-query']);
    const context = await requestGpuDevice({ gpu, wantFeatures: ['shader-f16', 'subgroups'] });
    expect(requests[0].requiredFeatures).toEqual(['subgroups']);
    expect([...context.features]).toEqual(['subgroups']);
  });

  it('fails with MISSING_FEATURE naming a required feature the adapter lacks', async () => {
    const { gpu, requests } = fakeGpu(['subgroups']);
    await expect(requestGpuDevice({ gpu, requiredFeatures: ['shader-f16'] })).rejects.toMatchObject({
      code: 'MISSING_FEATURE',
      message: expect.stringContaining('shader-f16'),
    });
    expect(requests).toHaveLength(0);
  });

  it('fails with DEVICE_REQUEST_FAILED when the adapter refuses, keeping the cause', async () => {
    const cause = new Error('limit too high');
    const adapter = { features: new Set(), limits: ADAPTER_LIMITS, info: ADAPTER_INFO, requestDevice: async () => Promise.reject(cause) };
    const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
    await expect(requestGpuDevice({ gpu })).rejects.toMatchObject({ code: 'DEVICE_REQUEST_FAILED', cause });
  });
});

describe('chooseFeatures', () => {
  it('lists required then available wanted features once each', () => {
    const available = new Set(['subgroups', 'shader-f16', 'timestamp-query']);
    const chosen = chooseFeatures(available, ['shader-f16'], ['shader-f16', 'subgroups', 'float32-filterable']);
    expect(chosen).toEqual(['shader-f16', 'subgroups']);
  });
});

describe('describing the adapter', () => {
  it('copies the info fields into plain data, subgroup sizes included', () => {
    const adapter = { info: ADAPTER_INFO } as unknown as GPUAdapter;
    expect(summarizeAdapter(adapter)).toEqual(ADAPTER_INFO);
  });

  it('reads isFallbackAdapter from the adapter where the info lacks it', () => {
    const adapter = { info: { vendor: 'v', architecture: '', device: '', description: '' }, isFallbackAdapter: true };
    expect(summarizeAdapter(adapter as unknown as GPUAdapter)).toMatchObject({ vendor: 'v', isFallbackAdapter: true });
  });

  it('names the adapter, its features, the granted features and the limits', async () => {
    const { gpu } = fakeGpu(['timestamp-query', 'subgroups']);
    const text = describeGpu(await requestGpuDevice({ gpu, wantFeatures: ['subgroups'] }));
    expect(text).toContain('vendor "acme", architecture "rdna9", device "0x1234", description "Acme GPU", fallback false, subgroups 32..64');
    expect(text).toContain('adapter features: subgroups, timestamp-query');
    expect(text).toContain('device features: subgroups');
    expect(text).toContain(`maxStorageBufferBindingSize=${1 << 30}`);
  });
});
