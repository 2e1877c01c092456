/**
 * A file-name slug for a WebGPU adapter, as the GPU kit names its result
 * files (kernels-<slug>.md): 'gpu-nvidia-h200' from Dawn's device name on a
 * GPU, 'cpu-lavapipe' or 'cpu-swiftshader' for the software adapters (the
 * names bench/results already uses).
 */

import { isSoftwareAdapter } from '../src/gpu/adapter-kind';

export interface AdapterNames {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

const slugify = (text: string): string => text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');

/** True for adapters that run WebGPU on the CPU: the same test the kernels choose their geometry by (src/gpu/adapter-kind.ts). */
export function isCpuAdapter(info: AdapterNames): boolean {
  return isSoftwareAdapter(info);
}

/** 'gpu-<device>' ('gpu-nvidia-h200') or 'cpu-<implementation>' ('cpu-lavapipe'), in letters, digits and dashes. */
export function adapterSlug(info: AdapterNames): string {
  const names = `${info.architecture} ${info.device} ${info.description}`;
  if (/llvmpipe|lavapipe/i.test(names)) return 'cpu-lavapipe';
  if (/swiftshader/i.test(names)) return 'cpu-swiftshader';
  const vendor = slugify(info.vendor);
  // Dawn's device field is the driver's device name, already slug-like ('nvidia-h200'); the vendor leads unless it is there.
  const device = slugify(info.device) || slugify(info.architecture);
  const name = device === '' ? vendor : vendor === '' || device.startsWith(vendor) ? device : `${vendor}-${device}`;
  return `${isCpuAdapter(info) ? 'cpu' : 'gpu'}-${name || 'unknown'}`;
}
