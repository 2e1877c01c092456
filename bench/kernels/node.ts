/**
 * `npm run bench:kernels:node`: the kernel benchmark in Node, on Dawn (the
 * `webgpu` package). Progress goes to stderr, the markdown report to stdout.
 *
 * The benchmark body is loaded through Vite's module runner because the
 * kernels find their WGSL through Vite's glob import (src/gpu/shader-files.ts);
 * Dawn itself is loaded here, outside it.
 */

import { resolve } from 'node:path';
import { runnerImport } from 'vite';
import { nodeGpu } from '../../src/gpu/node';
import { parseBenchOptions, USAGE } from './options';

type RunModule = typeof import('./run');

async function main(args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log(USAGE);
    return;
  }
  const options = parseBenchOptions(args);
  const gpu = await nodeGpu();
  const { module } = await runnerImport<RunModule>(resolve(import.meta.dirname, 'run.ts'), { configFile: false, logLevel: 'warn' });
  const report = await module.runKernelBench({ gpu, runtime: 'Node, Dawn (npm webgpu)', log: (line) => process.stderr.write(`${line}\n`) }, options);
  process.stdout.write(report);
}

await main(process.argv.slice(2));
