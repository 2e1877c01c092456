/**
 * Setup file of the gpu-browser project, run in the page before each test
 * file: prints the adapter and its features once per browser session (the
 * page's console is forwarded to the terminal), and makes every test file fail
 * when there is no adapter.
 */

import { describeGpu, requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';

// Test files run in separate same-origin frames of one tab, which share sessionStorage.
const REPORTED_KEY = 'webmoe:gpu-adapter-reported';

const context = await requestGpuDevice({ wantFeatures: [...USEFUL_FEATURES] });
if (sessionStorage.getItem(REPORTED_KEY) === null) {
  sessionStorage.setItem(REPORTED_KEY, 'yes');
  console.log(`[gpu-browser] WebGPU in ${navigator.userAgent}\n${describeGpu(context)}`);
}
context.device.destroy();
