/**
 * WebGPU in Node through Dawn (the `webgpu` npm package). This is the only
 * module that imports 'webgpu'; nothing browser-facing may import it, which is
 * why the gpu barrel (index.ts) does not re-export it.
 */

let gpuPromise: Promise<GPU> | undefined;

/**
 * The process-wide Dawn GPU object, created on first call. Also installs the
 * WebGPU constant globals (GPUBufferUsage, GPUMapMode, GPUShaderStage, ...)
 * that browsers define and code written for them uses; globals that already
 * exist are left alone.
 */
export function nodeGpu(): Promise<GPU> {
  gpuPromise ??= createNodeGpu();
  return gpuPromise;
}

/**
 * Dawn's start-up warnings ("maxDynamicUniformBuffersPerPipelineLayout
 * artificially reduced from 1000000 to 16 ...", and the same for storage
 * buffers) come from its limit normalisation when the first requestAdapter
 * enumerates a Vulkan driver that advertises more dynamic buffers than Dawn
 * supports (lavapipe says a million, RADV half that). Native code writes them
 * with fprintf to file descriptor 2, so they stay off stdout: `webmoe run`'s
 * text and a program's own output are all that stdout carries
 * (test/gpu-node/quiet-stdout.test.ts). Nothing here can silence them: no
 * Dawn toggle or `create()` flag controls that log, the driver's limits are
 * read before any device limits are requested, and process.stderr hooks never
 * see native writes.
 */
async function createNodeGpu(): Promise<GPU> {
  const { create, globals } = await import('webgpu');
  installMissingGlobals(globals as Record<string, unknown>);
  return create([]);
}

function installMissingGlobals(globals: Record<string, unknown>): void {
  const target = globalThis as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(globals)) {
    if (!(name in target)) target[name] = value;
  }
}

/**
 * Makes `navigator.gpu` answer with `gpu`, creating a minimal `navigator` where
 * the runtime has none (Node 20), so that code written for browsers finds it.
 */
export function installNavigatorGpu(gpu: GPU): void {
  const global = globalThis as unknown as { navigator?: object };
  if (global.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  }
  Object.defineProperty(global.navigator, 'gpu', { value: gpu, configurable: true });
}
