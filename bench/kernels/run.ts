/**
 * The kernel benchmark's body, the same in Node (Dawn) and in a browser page:
 * builds the cases for the options (copies, matvecs, expert FFNs, routers),
 * measures each on one device and returns the markdown report. Progress goes
 * to `log`; figures are printed, never asserted.
 */

import { describeGpu, requestGpuDevice, USEFUL_FEATURES } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { GpuTimer } from '../../src/gpu/timing';
import { quantDecoder } from '../../src/kernels/quant-decoders';
import { computeCopyCase, copyBufferCase } from './copy';
import { expertFfnCase, matvecCase, routerCase } from './kernel-cases';
import { measureCase } from './measure';
import type { BenchCase } from './measure';
import { benchModels } from './models';
import type { MoeShape } from './models';
import type { KernelBenchOptions } from './options';
import { formatReport } from './report';
import type { CaseResult } from './report';

export interface KernelBenchEnvironment {
  /** The WebGPU entry point: navigator.gpu, or Dawn's in Node. */
  gpu: GPU;
  /** Where it runs, for the report's title ('Node, Dawn', 'Chromium'). */
  runtime: string;
  log(line: string): void;
}

/** Copy sizes for a run of copies alone (no kernel byte counts to match). */
const DEFAULT_COPY_BYTES = [1 << 20, 8 << 20, 64 << 20];

function modelSection(model: MoeShape): string {
  return `${model.name} (H ${model.hidden}, F ${model.expertFfn}, E ${model.experts}, top-${model.topK})`;
}

/** Matvecs, expert FFNs and routers of each model, then the [H, H] matvecs every model shares. */
export function kernelCases(options: KernelBenchOptions): BenchCase[] {
  const { formats, ringBytes, parts } = options;
  const models = benchModels(options.small);
  const cases: BenchCase[] = [];
  for (const model of models) {
    const section = modelSection(model);
    const { hidden, expertFfn } = model;
    if (parts.includes('matvec')) {
      for (const type of formats) cases.push(matvecCase({ section, kernel: 'matvec [F, H]', rows: expertFfn, cols: hidden, type, ringBytes }));
    }
    if (parts.includes('ffn')) for (const type of formats) cases.push(expertFfnCase(section, model, type, ringBytes));
    if (parts.includes('router')) cases.push(routerCase(section, model, ringBytes));
  }
  if (parts.includes('matvec')) {
    for (const hidden of new Set(models.map((m) => m.hidden))) {
      const section = `${models.filter((m) => m.hidden === hidden).map((m) => m.name).join(', ')} (H ${hidden})`;
      for (const type of formats) cases.push(matvecCase({ section, kernel: 'matvec [H, H]', rows: hidden, cols: hidden, type, ringBytes }));
    }
  }
  return cases;
}

/** Both copies at every byte count the kernel cases read (or at default sizes when there are none). */
export function copyCases(kernels: readonly BenchCase[], ringBytes: number): BenchCase[] {
  const sizes = kernels.length > 0 ? [...new Set(kernels.map((c) => c.bytes))].sort((a, b) => a - b) : DEFAULT_COPY_BYTES;
  return sizes.flatMap((bytes) => [copyBufferCase(bytes, ringBytes), computeCopyCase(bytes, ringBytes)]);
}

async function runCase(context: GpuContext, timer: GpuTimer, benchCase: BenchCase, options: KernelBenchOptions): Promise<CaseResult> {
  const { device } = context;
  const label = `${benchCase.kernel} ${benchCase.shape} ${benchCase.format}`;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: CaseResult;
  let prepared;
  try {
    prepared = await benchCase.prepare(device);
    const measurement = await measureCase(timer, label, prepared.recorder, options);
    result = { benchCase, measurement, note: prepared.note };
  } catch (error) {
    result = { benchCase, error: error instanceof Error ? error.message : String(error) };
  } finally {
    prepared?.destroy();
  }
  const gpuErrors = [await device.popErrorScope(), await device.popErrorScope()].filter((e) => e !== null);
  // A GPU error makes the timing meaningless, even when nothing threw.
  if (gpuErrors.length > 0) return { benchCase, error: gpuErrors.map((e) => e.message).join('; ') };
  return result;
}

function headerLines(context: GpuContext, timer: GpuTimer, options: KernelBenchOptions, environment: KernelBenchEnvironment): string[] {
  const info = context.adapterInfo;
  const adapter = [info.description, info.vendor, info.architecture, info.device].filter(Boolean).join(' / ');
  const lines = [`adapter: ${adapter || '(no description)'}`];
  if (info.isFallbackAdapter) {
    lines.push('**this is a CPU (software) adapter: the figures measure the CPU running WebGPU, not a GPU**');
  }
  lines.push(
    `device features: ${[...context.features].sort().join(', ') || '(none)'}`,
    `timer: ${timer.describe()}`,
    `shapes: ${options.small ? 'small (H and F / 4)' : 'real'}; formats ${options.formats.map((t) => quantDecoder(t).name).join(', ')}`,
    `up to ${options.reps} timed measurements per case after ${options.warmup} warm-up (fewer when the next would end ` +
      `past the case's ${options.caseBudgetMs / 1000} s budget); batches sized to ~${options.targetMeasurementMs} ms ` +
      `(at most ${options.maxBatch} calls); each case cycles through ~${options.ringBytes >> 20} MiB of weight copies`,
    `runtime: ${environment.runtime}`,
  );
  return lines;
}

/** Runs every case the options select and returns the report (markdown). */
export async function runKernelBench(environment: KernelBenchEnvironment, options: KernelBenchOptions): Promise<string> {
  const { log } = environment;
  const context = await requestGpuDevice({ gpu: environment.gpu, wantFeatures: [...USEFUL_FEATURES], label: 'kernel bench' });
  log(describeGpu(context));
  const timer = GpuTimer.create(context.device, { forceWallClock: options.wallClock });
  const kernels = kernelCases(options);
  const cases = [...(options.parts.includes('copy') ? copyCases(kernels, options.ringBytes) : []), ...kernels];
  const results: CaseResult[] = [];
  const startMs = performance.now();
  try {
    for (const [index, benchCase] of cases.entries()) {
      const caseStartMs = performance.now();
      const result = await runCase(context, timer, benchCase, options);
      results.push(result);
      const outcome = result.measurement ? `${(result.measurement.medianNs / 1e6).toFixed(3)} ms x ${result.measurement.batch}` : `failed: ${result.error}`;
      const caseSeconds = ((performance.now() - caseStartMs) / 1000).toFixed(1);
      log(`[${index + 1}/${cases.length}] ${benchCase.kernel} ${benchCase.shape} ${benchCase.format}: ${outcome} (${caseSeconds} s)`);
    }
  } finally {
    timer.destroy();
    context.device.destroy();
  }
  const lines = headerLines(context, timer, options, environment);
  lines.push(`total run time ${((performance.now() - startMs) / 1000).toFixed(0)} s`);
  return formatReport({ title: `webmoe kernel roofline, ${environment.runtime}`, lines }, results);
}
