/**
 * Which adapters count as software (WebGPU on the CPU), the fact kernels
 * choose their default geometry by.
 */
import { describe, expect, it } from 'vitest';
import { isSoftwareAdapter, isSoftwareDevice } from '../../../src/gpu/adapter-kind';

describe('isSoftwareAdapter', () => {
  it('knows SwiftShader and Mesa lavapipe by their names, and any fallback adapter', () => {
    expect(isSoftwareAdapter({ architecture: 'swiftshader', isFallbackAdapter: true })).toBe(true);
    // Dawn over lavapipe: architecture "software", device "llvmpipe (LLVM 15.0.6, 256 bits)".
    expect(isSoftwareAdapter({ architecture: 'software', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', isFallbackAdapter: false })).toBe(true);
    expect(isSoftwareAdapter({ description: 'lavapipe' })).toBe(true);
    expect(isSoftwareAdapter({ architecture: 'ampere', isFallbackAdapter: true })).toBe(true);
  });

  it('takes GPUs, and adapters that say nothing, for hardware', () => {
    expect(isSoftwareAdapter({ architecture: 'hopper', device: 'nvidia-h200', description: 'NVIDIA H200', isFallbackAdapter: false })).toBe(false);
    expect(isSoftwareAdapter({ architecture: 'gen-12lp', isFallbackAdapter: false })).toBe(false);
    expect(isSoftwareAdapter({})).toBe(false);
    expect(isSoftwareAdapter(undefined)).toBe(false);
  });

  it('reads a device by its adapterInfo, and treats a device without one as hardware', () => {
    expect(isSoftwareDevice({ adapterInfo: { architecture: 'swiftshader', isFallbackAdapter: true } } as unknown as GPUDevice)).toBe(true);
    expect(isSoftwareDevice({} as GPUDevice)).toBe(false);
  });
});
