/**
 * What the forward pass asks of the GPU, counted as it is recorded: kernel
 * dispatches, compute passes, queue submissions, CPU↔GPU round trips, weight
 * bytes the kernels read, bytes uploaded, expert bytes read from the store,
 * and the JS time spent building commands. Always on: one counter per
 * device, a few integer adds per dispatch, nothing allocated per dispatch,
 * and nothing recorded differs, so outputs are the same bits.
 *
 * Kernel wrappers (src/kernels) count their own dispatches and compute the
 * weight bytes from their shapes; Recording (recording.ts) counts passes and
 * submissions; the forward pass and the expert schedulers count round trips
 * and uploads, and time encoding. The engine (src/engine/engine.ts) takes
 * differences of snapshots around prefill and each decode step.
 *
 * The counter is the device's, not a model's: two models running on one
 * device at once would mix their counts.
 */

/** Counts in the units their names say; all cumulative since the counter was made (or reset). */
export interface CostCounts {
  /** `dispatchWorkgroups` calls. */
  dispatches: number;
  /** Compute passes begun. */
  passes: number;
  /** `queue.submit` calls. */
  submissions: number;
  /** Buffers mapped for reading and awaited (`mapAsync`): each is a wait for the GPU to finish what was submitted. */
  roundTrips: number;
  /**
   * Bytes of weight tensors the recorded kernels read, from their shapes
   * (see each kernel wrapper): a matrix once per stream of workgroups that
   * reads it (a matvec once, a matmul once per tile of tokens, the decode
   * expert FFN once per routed token and expert, the prefill one once per
   * group of an expert's tokens), a weight vector (norm, bias)
   * once per dispatch. Activations and the KV cache are not counted.
   */
  weightBytes: number;
  /** Bytes written to GPU buffers from the CPU: `queue.writeBuffer` and buffers mapped at creation (uniform blocks). */
  uploadBytes: number;
  /** Expert bytes read from the expert source (the store, or the GGUF file): loads the host tier did not hold, and its warm reads. */
  storeBytes: number;
  /** Milliseconds of JS spent in the forward pass building commands; awaits and `queue.submit` calls (which may run the work, on a CPU adapter) excluded. */
  encodeMs: number;
}

export const COST_FIELDS: readonly (keyof CostCounts)[] = [
  'dispatches', 'passes', 'submissions', 'roundTrips', 'weightBytes', 'uploadBytes', 'storeBytes', 'encodeMs',
];

export function zeroCosts(): CostCounts {
  return { dispatches: 0, passes: 0, submissions: 0, roundTrips: 0, weightBytes: 0, uploadBytes: 0, storeBytes: 0, encodeMs: 0 };
}

/** a + b, field by field. */
export function addCosts(a: CostCounts, b: CostCounts): CostCounts {
  const sum = zeroCosts();
  for (const f of COST_FIELDS) sum[f] = a[f] + b[f];
  return sum;
}

/** a - b, field by field (what happened between two snapshots). */
export function subtractCosts(a: CostCounts, b: CostCounts): CostCounts {
  const difference = zeroCosts();
  for (const f of COST_FIELDS) difference[f] = a[f] - b[f];
  return difference;
}

/** counts / n, field by field (0 for n = 0): a per-token view. */
export function perCosts(counts: CostCounts, n: number): CostCounts {
  const each = zeroCosts();
  if (n > 0) for (const f of COST_FIELDS) each[f] = counts[f] / n;
  return each;
}

export class CostCounter implements CostCounts {
  dispatches = 0;
  passes = 0;
  submissions = 0;
  roundTrips = 0;
  weightBytes = 0;
  uploadBytes = 0;
  storeBytes = 0;
  encodeMs = 0;
  /** performance.now() when the open encode interval began, or -1 when none is open. */
  private encodeStartedMs = -1;

  /** One dispatch reading `weightBytes` of weights. */
  dispatch(weightBytes = 0): void {
    this.dispatches++;
    this.weightBytes += weightBytes;
  }

  upload(bytes: number): void {
    this.uploadBytes += bytes;
  }

  /** Opens an encode interval (no-op when one is open). */
  startEncode(): void {
    if (this.encodeStartedMs < 0) this.encodeStartedMs = performance.now();
  }

  /** Closes the open encode interval, adding its length to encodeMs (no-op when none is open). */
  stopEncode(): void {
    if (this.encodeStartedMs < 0) return;
    this.encodeMs += performance.now() - this.encodeStartedMs;
    this.encodeStartedMs = -1;
  }

  /** Runs `work` with the encode interval (if open) paused: for calls that may wait on the GPU (a submit on a software adapter). */
  paused<T>(work: () => T): T {
    const encoding = this.encodeStartedMs >= 0;
    if (encoding) this.stopEncode();
    try {
      return work();
    } finally {
      if (encoding) this.startEncode();
    }
  }

  /** Awaits `promise` with the encode interval (if open) paused, so that waiting is not counted as encoding. */
  async wait<T>(promise: Promise<T>): Promise<T> {
    const encoding = this.encodeStartedMs >= 0;
    if (encoding) this.stopEncode();
    try {
      return await promise;
    } finally {
      if (encoding) this.startEncode();
    }
  }

  /** Awaits a `mapAsync` for reading: one round trip, not counted as encoding. */
  roundTrip(mapping: Promise<void>): Promise<void> {
    this.roundTrips++;
    return this.wait(mapping);
  }

  /** A copy of the counts now (the open encode interval up to now included). */
  snapshot(): CostCounts {
    const open = this.encodeStartedMs >= 0 ? performance.now() - this.encodeStartedMs : 0;
    return {
      dispatches: this.dispatches,
      passes: this.passes,
      submissions: this.submissions,
      roundTrips: this.roundTrips,
      weightBytes: this.weightBytes,
      uploadBytes: this.uploadBytes,
      storeBytes: this.storeBytes,
      encodeMs: this.encodeMs + open,
    };
  }

  reset(): void {
    for (const f of COST_FIELDS) this[f] = 0;
    this.encodeStartedMs = -1;
  }
}

const counters = new WeakMap<GPUDevice, CostCounter>();

/** The device's counter (made on first use). */
export function costCounterOf(device: GPUDevice): CostCounter {
  let counter = counters.get(device);
  if (!counter) {
    counter = new CostCounter();
    counters.set(device, counter);
  }
  return counter;
}

/** One dispatch on `device` reading `weightBytes` of weights: what kernel wrappers call next to `dispatchWorkgroups`. */
export function countDispatch(device: GPUDevice, weightBytes = 0): void {
  costCounterOf(device).dispatch(weightBytes);
}

/** `queue.writeBuffer`, counted as an upload of the data's bytes. */
export function writeBufferCounted(device: GPUDevice, buffer: GPUBuffer, offsetBytes: number, data: AllowSharedBufferSource): void {
  device.queue.writeBuffer(buffer, offsetBytes, data);
  costCounterOf(device).upload(data.byteLength);
}
