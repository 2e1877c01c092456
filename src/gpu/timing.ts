/**
 * Measuring GPU time, for benchmarks. Where the device has 'timestamp-query',
 * the GPU itself writes a timestamp at the beginning and at the end of the
 * work (through compute passes' `timestampWrites`), so CPU-side costs
 * (encoding, submitting, mapping) are left out. Without the feature it falls
 * back to the wall clock from submit to `onSubmittedWorkDone`, which includes
 * the submit and the completion callback's latency; `describe()` says which
 * method is in use so printed figures can name it.
 *
 * One timer measures one thing at a time: calls are queued, since they share
 * a query set and its readback buffers.
 */

export type GpuTimingMethod = 'timestamp-query' | 'wall-clock';

export interface GpuTimerOptions {
  /** Use the wall clock even where timestamp queries exist (to compare the two, or to test the fallback). */
  forceWallClock?: boolean;
  /** Label of the timer's GPU objects. */
  label?: string;
}

/** Bytes of the two 64-bit timestamps one measurement resolves. */
const TIMESTAMP_PAIR_BYTES = 16;

/** Thrown when the GPU reports an end timestamp earlier than the beginning one. */
export class GpuTimingError extends Error {
  override readonly name = 'GpuTimingError';
}

/** The timestamp-query objects: a query set of 2 and the buffers its values pass through. */
interface TimestampResources {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
}

export class GpuTimer {
  private pending: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly device: GPUDevice,
    private readonly timestamps: TimestampResources | undefined,
    /** Why the wall clock is used, when it is. */
    private readonly wallClockReason = '',
  ) {}

  /** A timer on `device`: timestamp queries when the device was granted them, else the wall clock. */
  static create(device: GPUDevice, options: GpuTimerOptions = {}): GpuTimer {
    if (!device.features.has('timestamp-query')) return new GpuTimer(device, undefined, 'the device has no timestamp-query');
    if (options.forceWallClock) return new GpuTimer(device, undefined, 'asked for instead of timestamp queries');
    const label = options.label ?? 'gpu timer';
    return new GpuTimer(device, {
      querySet: device.createQuerySet({ label, type: 'timestamp', count: 2 }),
      resolve: device.createBuffer({
        label: `${label} resolve`,
        size: TIMESTAMP_PAIR_BYTES,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      readback: device.createBuffer({
        label: `${label} readback`,
        size: TIMESTAMP_PAIR_BYTES,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
    });
  }

  get method(): GpuTimingMethod {
    return this.timestamps ? 'timestamp-query' : 'wall-clock';
  }

  /** One line naming the method, for the head of a report. */
  describe(): string {
    return this.timestamps
      ? 'GPU timestamp queries (timestampWrites at the beginning and end of the timed work)'
      : `wall clock from submit to onSubmittedWorkDone (${this.wallClockReason}): includes submit and callback latency`;
  }

  /**
   * Nanoseconds the GPU spent on one compute pass whose commands `record`
   * writes, from the pass's beginning to its end.
   */
  timePass(label: string, record: (pass: GPUComputePassEncoder) => void): Promise<number> {
    return this.enqueue(() =>
      this.measure(label, (encoder, timestamps) => {
        const pass = encoder.beginComputePass({
          label,
          timestampWrites: timestamps && { querySet: timestamps.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
        });
        record(pass);
        pass.end();
      }),
    );
  }

  /**
   * Nanoseconds the GPU spent on whatever `record` writes into the encoder
   * (copies, several passes). With timestamps, the work is bracketed by two
   * empty compute passes: the first writes a timestamp at its end, the last at
   * its beginning.
   */
  timeCommands(label: string, record: (encoder: GPUCommandEncoder) => void): Promise<number> {
    return this.enqueue(() =>
      this.measure(label, (encoder, timestamps) => {
        if (timestamps) encoder.beginComputePass({ label: `${label} start`, timestampWrites: { querySet: timestamps.querySet, endOfPassWriteIndex: 0 } }).end();
        record(encoder);
        if (timestamps) encoder.beginComputePass({ label: `${label} end`, timestampWrites: { querySet: timestamps.querySet, beginningOfPassWriteIndex: 1 } }).end();
      }),
    );
  }

  /** Frees the timer's GPU objects; it must not be used afterwards. */
  destroy(): void {
    this.timestamps?.querySet.destroy();
    this.timestamps?.resolve.destroy();
    this.timestamps?.readback.destroy();
  }

  private enqueue(run: () => Promise<number>): Promise<number> {
    const result = this.pending.then(run);
    // A failed measurement must not block the ones queued after it.
    this.pending = result.catch(() => undefined);
    return result;
  }

  private async measure(label: string, encode: (encoder: GPUCommandEncoder, timestamps?: TimestampResources) => void): Promise<number> {
    const { device, timestamps } = this;
    const encoder = device.createCommandEncoder({ label });
    encode(encoder, timestamps);
    if (!timestamps) return this.wallClockNs(encoder.finish());

    encoder.resolveQuerySet(timestamps.querySet, 0, 2, timestamps.resolve, 0);
    encoder.copyBufferToBuffer(timestamps.resolve, 0, timestamps.readback, 0, TIMESTAMP_PAIR_BYTES);
    device.queue.submit([encoder.finish()]);
    await timestamps.readback.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigUint64Array(timestamps.readback.getMappedRange().slice(0));
    timestamps.readback.unmap();
    if (end < begin) throw new GpuTimingError(`${label}: the end timestamp (${end}) is before the beginning (${begin})`);
    return Number(end - begin);
  }

  private async wallClockNs(commands: GPUCommandBuffer): Promise<number> {
    // Earlier work still in flight would otherwise be counted.
    await this.device.queue.onSubmittedWorkDone();
    const startMs = performance.now();
    this.device.queue.submit([commands]);
    await this.device.queue.onSubmittedWorkDone();
    return Math.round((performance.now() - startMs) * 1e6);
  }
}
