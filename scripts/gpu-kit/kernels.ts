/**
 * The kernel benchmark's Node entry as the GPU kit bundles it: the same as
 * bench/kernels/node.ts, but importing the benchmark body directly, since in
 * the bundle the WGSL is already inlined and there is no Vite to run it.
 */

import { nodeGpu } from '../../src/gpu/node';
import { parseBenchOptions, USAGE } from '../../bench/kernels/options';
import { runKernelBench } from '../../bench/kernels/run';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log(USAGE);
} else {
  const options = parseBenchOptions(args);
  const report = await runKernelBench(
    { gpu: await nodeGpu(), runtime: 'Node, Dawn (npm webgpu)', log: (line) => process.stderr.write(`${line}\n`) },
    options,
  );
  process.stdout.write(report);
}
