/**
 * Whether a device runs WebGPU on the CPU (SwiftShader, Mesa's lavapipe):
 * kernels pick a different default geometry there. A software adapter runs
 * each workgroup on one CPU thread, its lanes in SIMD, and a barrier costs a
 * switch between all of them; so one thread per row with no workgroup
 * reduction is faster there (matvec 1.7x, expert FFN 1.1x, whole decode and
 * prefill 1.25x on lavapipe), while a GPU wants neighbouring threads reading
 * neighbouring bytes of a row.
 */

/** The adapter facts the choice reads (GPUAdapterInfo has more). */
export interface AdapterKindFacts {
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|software/i;

export function isSoftwareAdapter(info: AdapterKindFacts | undefined): boolean {
  if (!info) return false;
  return Boolean(info.isFallbackAdapter) || SOFTWARE_NAMES.test(`${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`);
}

/** From the device's own adapter info (GPUDevice.adapterInfo); false where an implementation lacks it. */
export function isSoftwareDevice(device: GPUDevice): boolean {
  return isSoftwareAdapter((device as GPUDevice & { adapterInfo?: AdapterKindFacts }).adapterInfo);
}
