/**
 * The GPU kit's first step: names the adapter Dawn picks, as `key=value`
 * lines that run.sh reads (slug, cpu) after the human-readable ones.
 * Exits 1 with the reason when there is no adapter or no device.
 */

import { describeGpu, requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import { adapterSlug, isCpuAdapter } from '../../bench/adapter-slug';

try {
  const context = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'gpu kit adapter' });
  const info = context.adapterInfo;
  console.log(describeGpu(context));
  console.log(`vendor=${info.vendor}`);
  console.log(`architecture=${info.architecture}`);
  console.log(`device=${info.device}`);
  console.log(`description=${info.description}`);
  console.log(`cpu=${isCpuAdapter(info) ? 'yes' : 'no'}`);
  console.log(`slug=${adapterSlug(info)}`);
  context.device.destroy();
} catch (error) {
  console.error(`no usable WebGPU adapter: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
