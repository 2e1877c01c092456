/**
 * How GPU tests get their device: navigator.gpu, which is Chromium's own in
 * the gpu-browser project and Dawn's (installed by test/setup) in gpu-node.
 * No adapter is an error, never a skip.
 */

import { requestGpuDevice, USEFUL_FEATURES } from '../../../src/gpu/device';
import type { GpuContext } from '../../../src/gpu/device';

export async function acquireTestGpu(): Promise<GpuContext> {
  return requestGpuDevice({ wantFeatures: [...USEFUL_FEATURES], label: 'test device' });
}
