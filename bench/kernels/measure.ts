/**
 * What the benchmark times and how: a BenchCase describes one kernel call
 * (its bytes read, and how to prepare it), a PreparedCase records call
 * number i into a compute pass or a command encoder, and `measureCase` turns
 * it into a median time per call.
 *
 * One measurement records `batch` consecutive calls (cycling through the
 * case's weight ring) and divides the time by `batch`. The batch is calibrated
 * after warm-up so that a measurement lasts about targetMeasurementMs: a
 * single fast dispatch is too short for timestamps (Chromium quantises them
 * to 0.1 ms unless told otherwise) and too noisy for the wall clock, while a
 * slow one (software adapters) needs no batching. On software adapters one
 * call can take seconds, so a case stops taking measurements once the next
 * would end past caseBudgetMs (it always gets at least one).
 */

import type { GpuTimer } from '../../src/gpu/timing';

/** The section of the copy cases, and their kernel names (the report's roofline columns). */
export const ROOFLINE_SECTION = 'roofline';
export const COPY_BUFFER_KERNEL = 'copyBufferToBuffer';
export const COPY_COMPUTE_KERNEL = 'compute copy (u32)';

export type CaseRecorder =
  | { kind: 'pass'; encode(pass: GPUComputePassEncoder, call: number): void }
  | { kind: 'commands'; encode(encoder: GPUCommandEncoder, call: number): void };

export interface PreparedCase {
  readonly recorder: CaseRecorder;
  /** A note for the report (e.g. how many distinct weight copies the case cycles through). */
  readonly note?: string;
  destroy(): void;
}

export interface BenchCase {
  /** Table section: 'roofline', a model's name, ... */
  section: string;
  kernel: string;
  /** Shape as printed, e.g. '[1024, 2048]'. */
  shape: string;
  /** Weight format name, or '-' for copies. */
  format: string;
  /** Bytes one call reads (weights; activations are not counted). */
  bytes: number;
  prepare(device: GPUDevice): Promise<PreparedCase>;
}

export interface MeasureSettings {
  warmup: number;
  reps: number;
  targetMeasurementMs: number;
  maxBatch: number;
  /** Wall-clock time after which a case takes no further measurement. */
  caseBudgetMs: number;
}

/** Per-call times of one case, in ns. */
export interface Measurement {
  batch: number;
  /** Measurements taken (fewer than asked when the case's budget ran out). */
  reps: number;
  medianNs: number;
  minNs: number;
  maxNs: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Calls per measurement so that one lasts about `targetNs`, given one call's time; 1..maxBatch. */
export function calibratedBatch(singleCallNs: number, targetNs: number, maxBatch: number): number {
  if (!(singleCallNs > 0)) return maxBatch;
  return Math.max(1, Math.min(maxBatch, Math.round(targetNs / singleCallNs)));
}

/** ns of `batch` calls starting at call number `first`, in one pass (or one encoder). */
function timeBatch(timer: GpuTimer, label: string, recorder: CaseRecorder, first: number, batch: number): Promise<number> {
  if (recorder.kind === 'pass') {
    return timer.timePass(label, (pass) => {
      for (let i = 0; i < batch; i++) recorder.encode(pass, first + i);
    });
  }
  return timer.timeCommands(label, (encoder) => {
    for (let i = 0; i < batch; i++) recorder.encode(encoder, first + i);
  });
}

/**
 * Warm-up, calibration of the batch, then up to `reps` timed batches (within
 * the case's budget): per-call median, min and max.
 */
export async function measureCase(timer: GpuTimer, label: string, recorder: CaseRecorder, settings: MeasureSettings): Promise<Measurement> {
  const startMs = performance.now();
  let call = 0;
  for (let i = 0; i < settings.warmup; i++) await timeBatch(timer, label, recorder, call++, 1);
  const singleNs = await timeBatch(timer, label, recorder, call++, 1);
  const batch = calibratedBatch(singleNs, settings.targetMeasurementMs * 1e6, settings.maxBatch);
  // With a batch of 1 the calibration run is a timed measurement like the others: keep it (slow adapters).
  const perCallNs: number[] = batch === 1 ? [singleNs] : [];
  while (perCallNs.length < settings.reps) {
    const lastBatchMs = ((perCallNs.at(-1) ?? singleNs) * batch) / 1e6;
    if (perCallNs.length > 0 && performance.now() - startMs + lastBatchMs > settings.caseBudgetMs) break;
    perCallNs.push((await timeBatch(timer, label, recorder, call, batch)) / batch);
    call += batch;
  }
  return {
    batch,
    reps: perCallNs.length,
    medianNs: median(perCallNs),
    minNs: Math.min(...perCallNs),
    maxNs: Math.max(...perCallNs),
  };
}
