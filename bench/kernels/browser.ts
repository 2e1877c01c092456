/**
 * The kernel benchmark's in-page entry (bench/kernels/index.html), driven by
 * bench/kernels/chromium.ts: `window.kernelBench.run(args, runtime)` runs the
 * shared body on navigator.gpu and resolves to the markdown report; progress
 * goes to the console, which the driver forwards.
 */

import { parseBenchOptions } from './options';
import { runKernelBench } from './run';

async function run(args: string[], runtime: string): Promise<string> {
  if (!navigator.gpu) throw new Error('navigator.gpu is missing: this page needs WebGPU (Chromium: --enable-unsafe-webgpu)');
  // Without cross-origin isolation performance.now() is coarsened to 0.1 ms, which matters to the wall-clock timer.
  const isolation = crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated: wall clock coarsened to 0.1 ms';
  return runKernelBench({ gpu: navigator.gpu, runtime: `${runtime}, ${isolation}`, log: (line) => console.log(line) }, parseBenchOptions(args));
}

const api = { run, ready: true };
declare global {
  interface Window {
    kernelBench: typeof api;
  }
}
window.kernelBench = api;
