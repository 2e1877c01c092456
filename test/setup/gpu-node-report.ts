/**
 * Global setup of the gpu-node project, run once before any test file:
 * prints the adapter Dawn picked and its features, and fails the whole run
 * when there is none (a GPU suite must never pass without a GPU).
 */

import { describeGpu, requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';

export default async function reportNodeAdapter(): Promise<void> {
  const context = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES] });
  console.log(`[gpu-node] WebGPU through Dawn\n${describeGpu(context)}`);
  context.device.destroy();
}
