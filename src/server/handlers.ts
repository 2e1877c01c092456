/**
 * What the HTTP server does with a request once routed: OpenAI's error
 * shape with webmoe's stable codes, the one-at-a-time request queue, and
 * the two completion endpoints mapped onto the engine's OpenAI-shaped API.
 * Node-free: the transport (node:http) is in index.ts.
 */

import type { WebMoeErrorCode } from '../api/errors';
import { toWebMoeError } from '../api/errors';
import type { ChatCompletionRequest, CompletionRequest, WebMoeEngine } from '../api/types';

// ---------------------------------------------------------------- errors

/** webmoe's codes, plus the ones only the HTTP layer has. */
export type ApiErrorCode = WebMoeErrorCode | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED' | 'BODY_TOO_LARGE' | 'QUEUE_FULL';

/** A failure as OpenAI's API reports it: an HTTP status and `{ error: { message, type, param, code } }`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(readonly status: number, readonly code: ApiErrorCode, message: string, readonly param: string | null = null) {
    super(message);
  }

  /** OpenAI's error types: what a client's error class is chosen by besides the status. */
  get type(): 'invalid_request_error' | 'rate_limit_error' | 'server_error' {
    return this.status === 429 ? 'rate_limit_error' : this.status >= 500 ? 'server_error' : 'invalid_request_error';
  }

  body(): { error: { message: string; type: string; param: string | null; code: ApiErrorCode } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const STATUS_OF: Partial<Record<WebMoeErrorCode, number>> = {
  BAD_REQUEST: 400,
  CONTEXT_OVERFLOW: 400,
  NO_CHAT_TEMPLATE: 400,
  MODEL_NOT_FOUND: 404,
  // Both pass: the next request recreates the device, or the server is shutting down.
  DEVICE_LOST: 503,
  UNLOADED: 503,
};

/** The engine's sampler names its fields in camelCase; the request has them in snake_case. */
const PARAM_OF_WORD: Record<string, string> = { topK: 'top_k', topP: 'top_p', minP: 'min_p', repeatPenalty: 'repetition_penalty' };

/** Any thrown value as an ApiError: engine failures keep their WebMoeError code and get its status. */
export function apiErrorOf(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const e = toWebMoeError(error);
  let param: string | null = null;
  if (e.code === 'BAD_REQUEST') {
    // Engine messages start with the field they are about ("max_tokens must be ...", "sampling: topP must be ...").
    const word = /^(?:sampling: )?(\w+)/.exec(e.message)?.[1] ?? '';
    param = PARAM_OF_WORD[word] ?? (REQUEST_FIELDS.has(word) ? word : null);
  }
  return new ApiError(STATUS_OF[e.code] ?? 500, e.code, e.message, param);
}

// ---------------------------------------------------------------- queue

/**
 * Runs jobs one at a time in arrival order (the engine serves one request
 * at a time anyway; queueing here lets a full queue be refused at once with
 * 429 rather than waited on). At most `maxWaiting` jobs wait behind the
 * running one; a waiting job whose signal fires leaves the queue unstarted.
 */
export class RequestQueue {
  private readonly waiting: { start: () => void; signal: AbortSignal }[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly maxWaiting: number) {}

  async run<T>(signal: AbortSignal, job: () => Promise<T>): Promise<T> {
    if (this.running) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new ApiError(429, 'QUEUE_FULL', `the server is busy: ${this.waiting.length} requests are waiting behind the running one (limit ${this.maxWaiting}); retry later`);
      }
      await new Promise<void>((resolve, reject) => {
        const entry = { start: resolve, signal };
        this.waiting.push(entry);
        signal.addEventListener('abort', () => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(new ApiError(499, 'ABORTED', 'the client went away while its request waited'));
        }, { once: true });
      });
    }
    this.running = true;
    try {
      return await job();
    } finally {
      this.next();
    }
  }

  /** Requests waiting now (not counting the running one). */
  get length(): number {
    return this.waiting.length;
  }

  /** Resolves once nothing runs or waits. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private next(): void {
    const entry = this.waiting.shift();
    if (entry) {
      entry.start();
      return;
    }
    this.running = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

// ---------------------------------------------------------------- completions

/** Fields of both endpoints' requests that the engine reads. */
const REQUEST_FIELDS = new Set([
  'messages', 'prompt', 'model', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k',
  'min_p', 'repetition_penalty', 'seed', 'stop', 'n',
]);
const NUMBER_FIELDS = ['max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'seed', 'n'];

export type CompletionKind = 'chat' | 'text';

export interface CompletionSettings {
  engine: WebMoeEngine;
  /** The id responses carry in `model`. */
  modelId: string;
  /** The most tokens one request may ask for; also what it gets when it asks for none. */
  maxTokensLimit: number;
  /** The engine's KV cache positions. */
  contextLength: number;
}

/** JSON-ready objects: a whole result, or the chunks of a stream. */
type Json = Record<string, unknown>;

export type CompletionOutcome =
  | { stream: false; body: Json }
  /** `chunks` already holds the first content chunk, so a request that fails before any output fails as a plain HTTP error. */
  | { stream: true; chunks: AsyncIterable<Json> };

/**
 * Runs one completion request through the engine. Fields the engine does
 * not know are passed on (it ignores them), `model` is ignored (the server
 * serves its one model), and `max_tokens` is bounded by `maxTokensLimit`.
 */
export async function runCompletion(kind: CompletionKind, body: unknown, settings: CompletionSettings, signal: AbortSignal): Promise<CompletionOutcome> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'BAD_REQUEST', 'the request body must be a JSON object');
  const { signal: _notFromJson, stream_options: streamOptions, ...fields } = body as Json;
  for (const name of NUMBER_FIELDS) {
    if (fields[name] != null && typeof fields[name] !== 'number') throw new ApiError(400, 'BAD_REQUEST', `${name} must be a number`, name);
  }
  if (fields.stream != null && typeof fields.stream !== 'boolean') throw new ApiError(400, 'BAD_REQUEST', 'stream must be a boolean', 'stream');
  const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true;
  const stream = fields.stream === true;

  const asked = (fields.max_tokens ?? fields.max_completion_tokens) as number | null | undefined;
  if (typeof asked === 'number' && asked > settings.maxTokensLimit) {
    throw new ApiError(400, 'BAD_REQUEST', `max_tokens = ${asked} is above this server's limit of ${settings.maxTokensLimit} (webmoe serve --max-tokens-limit)`, 'max_tokens');
  }
  const create = (maxTokens: number | null | undefined) => {
    // The engine checks every field it reads and answers BAD_REQUEST naming it: the casts only tell TypeScript which overload.
    const request = { ...fields, max_tokens: maxTokens, max_completion_tokens: undefined, stream, signal };
    return kind === 'chat'
      ? settings.engine.chat.completions.create(request as unknown as ChatCompletionRequest) as Promise<Json | AsyncIterable<Json>>
      : settings.engine.completions.create(request as unknown as CompletionRequest) as Promise<Json | AsyncIterable<Json>>;
  };
  const start = async (maxTokens: number | null | undefined): Promise<CompletionOutcome> => {
    const result = await create(maxTokens);
    if (!isAsyncIterable(result)) return { stream: false, body: { ...result, model: settings.modelId } };
    return { stream: true, chunks: await prefetched(sseChunks(result, settings.modelId, includeUsage), kind === 'chat' ? 2 : 1) };
  };
  return asked != null ? start(asked) : withRoomLeft(settings.maxTokensLimit, settings.contextLength, start);
}

/**
 * Starts a generation of at most `limit` tokens, or of what the context has
 * left when that is less. Only the engine knows the prompt's length (after
 * its chat template), so the second case is found by its CONTEXT_OVERFLOW
 * refusal, which comes before any token; `start(undefined)` then asks for
 * the rest of the context.
 */
export async function withRoomLeft<T>(limit: number, contextLength: number, start: (maxTokens: number | undefined) => Promise<T>): Promise<T> {
  if (limit >= contextLength) return start(undefined);
  try {
    return await start(limit);
  } catch (error) {
    if (apiErrorOf(error).code !== 'CONTEXT_OVERFLOW') throw error;
    return start(undefined);
  }
}

/** The engine's chunks as sent: the server's model id, the usage chunk only when asked for (as OpenAI's stream_options.include_usage). */
async function* sseChunks(chunks: AsyncIterable<Json>, modelId: string, includeUsage: boolean): AsyncGenerator<Json> {
  for await (const chunk of chunks) {
    const isUsage = chunk.usage !== undefined && Array.isArray(chunk.choices) && chunk.choices.length === 0;
    if (isUsage && !includeUsage) continue;
    yield includeUsage ? { ...chunk, model: modelId, usage: chunk.usage ?? null } : { ...chunk, model: modelId };
  }
}

/** Reads the first `count` items now (throwing what they throw), then yields them and the rest. */
export async function prefetched<T>(items: AsyncIterable<T>, count: number): Promise<AsyncIterable<T>> {
  const iterator = items[Symbol.asyncIterator]();
  const head: T[] = [];
  let ended = false;
  while (head.length < count) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
  }
  return {
    async *[Symbol.asyncIterator]() {
      try {
        yield* head;
        if (ended) return;
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          yield next.value;
        }
      } finally {
        // Leaving early (the client went away) lets the engine's stream end its request.
        if (!ended) await iterator.return?.();
      }
    },
  };
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Json> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
