/**
 * Typed errors of the GPU layer. Each carries a stable `code` that callers can
 * branch on and a message that says what to do about it.
 */

/** Why no usable GPU device could be had. */
export type GpuUnavailableCode =
  /** `navigator.gpu` is missing, or it returned no adapter. */
  | 'NO_WEBGPU'
  /** The adapter lacks a feature the caller required. */
  | 'MISSING_FEATURE'
  /** The adapter refused to create a device. */
  | 'DEVICE_REQUEST_FAILED';

export class GpuUnavailableError extends Error {
  override readonly name = 'GpuUnavailableError';
  readonly code: GpuUnavailableCode;

  constructor(code: GpuUnavailableCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A GPU validation, out-of-memory or internal error caught in an error scope. */
export class GpuOperationError extends Error {
  override readonly name = 'GpuOperationError';
  /** What was being done when the error was raised, e.g. 'rmsnorm_f32_wg64 dispatch'. */
  readonly operation: string;

  constructor(operation: string, gpuMessage: string) {
    super(`${operation}: ${gpuMessage}`);
    this.operation = operation;
  }
}
