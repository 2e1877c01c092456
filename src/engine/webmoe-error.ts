/**
 * The one error type of the public API. Every failure a caller can see is a
 * WebMoeError whose `code` is stable (branch on it) and whose message says
 * what to change; `details` holds plain data about it (sizes, ids, the
 * internal error's name and code). Errors of the internal layers are turned
 * into it by `toWebMoeError`; being plain data, it crosses the worker
 * boundary and is rebuilt on the other side (see worker-transfer.ts).
 */

import { GgufError } from '../gguf/errors';
import { GpuOperationError, GpuUnavailableError } from '../gpu/errors';
import { EngineError } from './errors';
import { ExpertBudgetError } from '../experts/expert-cache';
import { ModelConfigError } from '../models/config';
import { StoreError } from '../store/errors';
import { ChatTemplateError, TextError } from '../text/errors';

export type WebMoeErrorCode =
  /** The file is not a readable GGUF (bad magic, truncated, malformed header...). */
  | 'BAD_GGUF'
  /** The GGUF's `general.architecture` is not one this runtime implements. */
  | 'UNSUPPORTED_ARCH'
  /** The architecture is known but something in the model is not supported (tensor type, tokenizer, layout, config). */
  | 'UNSUPPORTED_MODEL'
  /** The model does not fit in the storage left. */
  | 'QUOTA_EXCEEDED'
  /** No stored model with that id (or it is not fully imported). */
  | 'MODEL_NOT_FOUND'
  /** Another model is stored under that id. */
  | 'MODEL_EXISTS'
  /** Storage failed or a stored record is damaged. */
  | 'STORAGE_FAILED'
  /** No WebGPU, no adapter, or the adapter refused a device. */
  | 'NO_WEBGPU'
  /** The GPU device was lost during the request; the next request recreates it and reloads the model. */
  | 'DEVICE_LOST'
  /** A GPU validation or out-of-memory error. */
  | 'GPU_ERROR'
  /** The expert budget is below what one token needs (details.minimumBytes). */
  | 'EXPERT_BUDGET'
  /** The request's signal aborted it. */
  | 'ABORTED'
  /** A request field is missing, contradictory or out of range. */
  | 'BAD_REQUEST'
  /** Prompt plus max_tokens exceed the context. */
  | 'CONTEXT_OVERFLOW'
  /** `messages` were sent to a model without a chat template (use completions.create). */
  | 'NO_CHAT_TEMPLATE'
  /** The engine was unloaded. */
  | 'UNLOADED'
  /** Anything else (a bug): the message and details.name say what. */
  | 'INTERNAL';

/** Plain, structured-cloneable facts about an error. */
export type WebMoeErrorDetails = Record<string, string | number | boolean | null | undefined>;

export class WebMoeError extends Error {
  override readonly name = 'WebMoeError';
  readonly code: WebMoeErrorCode;
  readonly details: WebMoeErrorDetails;

  constructor(code: WebMoeErrorCode, message: string, details: WebMoeErrorDetails = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  /** Plain data for postMessage. */
  toJSON(): SerializedWebMoeError {
    return { code: this.code, message: this.message, details: this.details, stack: this.stack };
  }

  static fromJSON(data: SerializedWebMoeError): WebMoeError {
    const error = new WebMoeError(data.code, data.message, data.details ?? {});
    if (data.stack) error.stack = data.stack;
    return error;
  }
}

export interface SerializedWebMoeError {
  code: WebMoeErrorCode;
  message: string;
  details?: WebMoeErrorDetails;
  stack?: string;
}

const STORE_CODES: Partial<Record<string, WebMoeErrorCode>> = {
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  MODEL_NOT_FOUND: 'MODEL_NOT_FOUND',
  MODEL_NOT_READY: 'MODEL_NOT_FOUND',
  MODEL_EXISTS: 'MODEL_EXISTS',
  UNSUPPORTED_MODEL: 'UNSUPPORTED_MODEL',
  BAD_MODEL_ID: 'BAD_REQUEST',
};

const ENGINE_CODES: Partial<Record<string, WebMoeErrorCode>> = {
  CONTEXT_OVERFLOW: 'CONTEXT_OVERFLOW',
  BAD_REQUEST: 'BAD_REQUEST',
  BUSY: 'BAD_REQUEST',
  DESTROYED: 'UNLOADED',
};

/** Any thrown value as a WebMoeError (a WebMoeError is returned as it is). */
export function toWebMoeError(error: unknown): WebMoeError {
  if (error instanceof WebMoeError) return error;
  if (!(error instanceof Error)) return new WebMoeError('INTERNAL', String(error));
  const code = (error as { code?: unknown }).code;
  const base = { name: error.name, sourceCode: typeof code === 'string' ? code : undefined };
  const make = (code: WebMoeErrorCode, details: WebMoeErrorDetails = {}) =>
    new WebMoeError(code, error.message, { ...base, ...details }, { cause: error });

  if (error instanceof GgufError) return make('BAD_GGUF', { field: error.field, offset: error.offset });
  if (error instanceof ModelConfigError) return make(error.code === 'UNSUPPORTED_ARCH' ? 'UNSUPPORTED_ARCH' : 'UNSUPPORTED_MODEL', {
    architecture: (error as { architecture?: string }).architecture,
  });
  if (error instanceof StoreError) {
    return make(STORE_CODES[error.code] ?? 'STORAGE_FAILED', {
      modelId: error.modelId, neededBytes: error.neededBytes, availableBytes: error.availableBytes, layer: error.layer, expert: error.expert,
    });
  }
  if (error instanceof EngineError) return make(ENGINE_CODES[error.code] ?? 'INTERNAL');
  // A template renders only for a request: one that refuses the conversation (its own raise_exception), fails on its
  // messages or runs past the renderer's limits on them is that request's failure (the engine serves the next one);
  // one that does not parse fails the model's load.
  if (error instanceof ChatTemplateError && error.failure !== 'parse') return make('BAD_REQUEST', { templateFailure: error.failure });
  if (error instanceof TextError) return make(error.code === 'NO_CHAT_TEMPLATE' ? 'NO_CHAT_TEMPLATE' : 'UNSUPPORTED_MODEL');
  if (error instanceof GpuUnavailableError) return make('NO_WEBGPU');
  if (error instanceof GpuOperationError) return make('GPU_ERROR', { operation: error.operation });
  if (error instanceof ExpertBudgetError) return make('EXPERT_BUDGET', { minimumBytes: error.minimumBytes, maximumBytes: error.maximumBytes });
  if (error.name === 'AbortError') return make('ABORTED');
  if (/^Unsupported(Gpu)?TypeError$/.test(error.name)) return make('UNSUPPORTED_MODEL');
  return make('INTERNAL');
}

/** The ABORTED error of a request whose signal fired. */
export function abortedError(what = 'the request'): WebMoeError {
  return new WebMoeError('ABORTED', `${what} was aborted`);
}
