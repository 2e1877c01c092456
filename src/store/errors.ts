/**
 * The one error type of the weight store. `code` says what kind of failure it
 * is, so callers can react (free space and retry, re-import, pick another
 * model); the message says what to do. GGUF parsing failures are not wrapped:
 * an import of a bad file rejects with the reader's own GgufError.
 */

export type StoreErrorCode =
  /** The model does not fit in the space left (checked before writing, or hit while writing). */
  | 'QUOTA_EXCEEDED'
  /** A stored record is missing, has the wrong size, or does not match its hash. */
  | 'CORRUPT_RECORD'
  /** No model with that id is stored. */
  | 'MODEL_NOT_FOUND'
  /** The model's import has not finished (or was interrupted): not usable yet. */
  | 'MODEL_NOT_READY'
  /** A different file is already stored under that id. */
  | 'MODEL_EXISTS'
  /** The GGUF is valid but its expert tensors are laid out in a way the store cannot split. */
  | 'UNSUPPORTED_MODEL'
  /** A model id that cannot name a model (empty, too long, odd characters). */
  | 'BAD_MODEL_ID'
  /** A tensor, layer or expert the model does not have. */
  | 'NOT_IN_MODEL'
  /** The storage itself failed for another reason (see `cause`). */
  | 'STORAGE_FAILED';

export interface StoreErrorDetails {
  modelId?: string;
  layer?: number;
  expert?: number;
  /** Key of the record concerned, e.g. "expert.3.5". */
  recordKey?: string;
  /** QUOTA_EXCEEDED: bytes the import still has to write. */
  neededBytes?: number;
  /**
   * QUOTA_EXCEEDED: bytes available: what the storage reported, or, when a
   * write did not fit although the report said it would, that write's size
   * (an upper bound: less than it was free).
   */
  availableBytes?: number;
  cause?: unknown;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly modelId?: string;
  readonly layer?: number;
  readonly expert?: number;
  readonly recordKey?: string;
  readonly neededBytes?: number;
  readonly availableBytes?: number;

  constructor(code: StoreErrorCode, message: string, details: StoreErrorDetails = {}) {
    super(`${code}: ${message}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.modelId = details.modelId;
    this.layer = details.layer;
    this.expert = details.expert;
    this.recordKey = details.recordKey;
    this.neededBytes = details.neededBytes;
    this.availableBytes = details.availableBytes;
  }
}

/** Whether a storage failure means "out of space" (IndexedDB's DOMException, or ENOSPC/EDQUOT from a file system). */
export function isOutOfSpace(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === 'QuotaExceededError' || code === 'ENOSPC' || code === 'EDQUOT';
}

/** Human-readable byte count for messages ("1.50 GiB"). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(2)} ${units[unit]}`;
}

/** CORRUPT_RECORD naming the model and, for an expert record ("expert.L.E"), its layer and expert. */
export function corruptRecordError(modelId: string, recordKey: string, detail: string): StoreError {
  const match = /^expert\.(\d+)\.(\d+)$/.exec(recordKey);
  const where = match ? `layer ${match[1]}, expert ${match[2]} (record ${recordKey})` : `record ${recordKey}`;
  return new StoreError('CORRUPT_RECORD', `${modelId}, ${where}: ${detail}`, {
    modelId, recordKey, layer: match ? Number(match[1]) : undefined, expert: match ? Number(match[2]) : undefined,
  });
}

/**
 * Runs a backend call, turning its failures into StoreErrors: out-of-space
 * ones through `onOutOfSpace` (QUOTA_EXCEEDED by default), others into
 * STORAGE_FAILED naming `what` was being done.
 */
export async function storageCall<T>(
  modelId: string,
  what: string,
  call: () => Promise<T>,
  onOutOfSpace?: (cause: unknown) => Promise<StoreError>,
): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    if (cause instanceof StoreError) throw cause;
    if (isOutOfSpace(cause)) {
      throw onOutOfSpace ? await onOutOfSpace(cause) : new StoreError('QUOTA_EXCEEDED', `${modelId}: storage is full (${what})`, { modelId, cause });
    }
    throw new StoreError('STORAGE_FAILED', `${modelId}: ${what} failed: ${String(cause)}`, { modelId, cause });
  }
}
