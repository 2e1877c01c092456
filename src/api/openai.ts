/**
 * The OpenAI-shaped client over the engine service: request fields checked
 * and mapped to the engine's, results and streamed deltas shaped as OpenAI's
 * `chat.completion`, `chat.completion.chunk` and `text_completion` objects
 * (the only place the engine's figures become snake_case), per-token
 * routing (moe_routing) spread over the chunks, abort signals
 * forwarded as messages (an AbortSignal cannot cross a worker boundary),
 * every failure a WebMoeError.
 */

import type { PhaseCost, RequestCost } from '../engine/engine';
import { appendRouting } from '../engine/routing';
import type { RoutingDelta } from '../engine/routing';
import type { SamplingOptions } from '../engine/sampler';
import type { EngineServiceApi, ServiceDelta, ServiceRequest, ServiceResult, ServiceStats } from '../engine/service-types';
import { WebMoeError, abortedError, toWebMoeError } from '../engine/webmoe-error';
import { perCosts } from '../gpu/cost-counter';
import type { CostCounts } from '../gpu/cost-counter';
import type { ModelSummary } from '../store/weight-store';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatRole, Completion, CompletionChunk, CompletionRequest,
  CompletionUsage, CostFigures, EngineStats, ImportModelOptions, ModelCard, ModelSource, MoeRoutingDelta, PhaseCostFigures, RequestCostFigures,
  SamplingParams, WebMoeEngine, WebMoeModelStore,
} from './types';

export interface ClientHooks {
  /** Runs after the core unloaded (the browser client ends its worker here). */
  afterUnload?: () => void;
}

/** engine.models over `core`, each call through `guard`. */
function storeMethods(core: EngineServiceApi, guard: <T>(call: () => Promise<T>) => Promise<T>): WebMoeEngine['models'] {
  return {
    list: () => guard(async () => ({ object: 'list' as const, data: (await core.listModels()).map(modelCard) })),
    delete: (id: string) => guard(async () => ({ id, object: 'model' as const, deleted: await core.deleteModel(id) })),
    import: (source: ModelSource, options: ImportModelOptions = {}) => guard(async () => modelCard(await core.importModel(source, options.id, options.onProgress))),
  };
}

/** The model store over `core` (a service with no model loaded); `close` runs `onClose` once. */
export function createStoreClient(core: EngineServiceApi, onClose: () => Promise<void> | void = () => {}): WebMoeModelStore {
  let closed = false;
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (closed) throw new WebMoeError('UNLOADED', 'the model store was closed; open it again');
    try {
      return await call();
    } catch (error) {
      throw toWebMoeError(error);
    }
  };
  return {
    ...storeMethods(core, guard),
    close: async () => {
      if (closed) return;
      closed = true;
      await onClose();
    },
  };
}

/** The public engine object over `core`, serving model `model`. */
export function createClient(core: EngineServiceApi, model: string, hooks: ClientHooks = {}): WebMoeEngine {
  let nextId = 1;
  let unloaded = false;

  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (unloaded) throw new WebMoeError('UNLOADED', 'the engine was unloaded; create a new one');
    try {
      return await call();
    } catch (error) {
      throw toWebMoeError(error);
    }
  };

  /** Starts a request; returns its deltas as they come and its result. */
  const start = (request: ServiceRequest, signal: AbortSignal | undefined) => {
    if (unloaded) throw new WebMoeError('UNLOADED', 'the engine was unloaded; create a new one');
    if (signal?.aborted) throw abortedError();
    const id = nextId++;
    const run = new Run();
    const onAbort = () => {
      if (run.aborted || run.done) return;
      run.aborted = true;
      void Promise.resolve(core.abort(id)).catch(() => {});
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    run.settled = core.generate(id, request, (delta) => run.push(delta)).then(
      (result) => run.finish(result, undefined),
      (error) => run.finish(undefined, run.aborted ? abortedError() : toWebMoeError(error)),
    ).finally(() => signal?.removeEventListener('abort', onAbort));
    return { run, cancel: onAbort };
  };

  const created = () => Math.floor(Date.now() / 1000);

  async function chatCreate(request: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    checkMessages(request?.messages);
    checkStream(request.stream);
    const core = coreRequest(request, { messages: request.messages.map((m) => ({ ...m })) });
    const { run, cancel } = start(core, request.signal);
    const base = { id: `chatcmpl-${randomId()}`, created: created(), model };
    if (request.stream) {
      return streamOf<ChatCompletionChunk>(run, cancel, core.moeRouting === true, {
        first: (routing) => ({
          ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }], ...routingField(routing),
        }),
        delta: (text, routing) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text }, finish_reason: null, logprobs: null }], ...routingField(routing) }),
        last: (r, routing) => [
          { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: r.finishReason, logprobs: null }] },
          { ...base, object: 'chat.completion.chunk', choices: [], usage: usageOf(r), ...routingField(routing) },
        ],
      });
    }
    const r = await run.result();
    return {
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finishReason, logprobs: null }],
      usage: usageOf(r),
      ...routingField(run.finalRouting(r)),
    };
  }

  async function completionCreate(request: CompletionRequest): Promise<AsyncIterable<CompletionChunk> | Completion> {
    if (typeof request?.prompt !== 'string') throw new WebMoeError('BAD_REQUEST', `prompt must be a string, got ${shown(request?.prompt)}`, { field: 'prompt' });
    checkStream(request.stream);
    const { run, cancel } = start(coreRequest(request, { prompt: request.prompt }), request.signal);
    const base = { id: `cmpl-${randomId()}`, object: 'text_completion' as const, created: created(), model };
    if (request.stream) {
      return streamOf<CompletionChunk>(run, cancel, false, {
        delta: (text, routing) => ({ ...base, choices: [{ index: 0, text, finish_reason: null, logprobs: null }], ...routingField(routing) }),
        last: (r, routing) => [
          { ...base, choices: [{ index: 0, text: '', finish_reason: r.finishReason, logprobs: null }] },
          { ...base, choices: [], usage: usageOf(r), ...routingField(routing) },
        ],
      });
    }
    const r = await run.result();
    return { ...base, choices: [{ index: 0, text: r.text, finish_reason: r.finishReason, logprobs: null }], usage: usageOf(r), ...routingField(run.finalRouting(r)) };
  }

  return {
    chat: { completions: { create: chatCreate as WebMoeEngine['chat']['completions']['create'] } },
    completions: { create: completionCreate as WebMoeEngine['completions']['create'] },
    models: storeMethods(core, guard),
    tokenize: (text, options = {}) => guard(() => core.tokenize(text, options.add_special_tokens ?? true)),
    detokenize: (tokens) => guard(() => core.detokenize([...tokens])),
    stats: () => guard(async () => statsOf(await core.stats())),
    unload: async () => {
      if (unloaded) return;
      try {
        await core.unload();
      } finally {
        unloaded = true;
        hooks.afterUnload?.();
      }
    },
    simulateDeviceLoss: () => guard(() => core.simulateDeviceLoss()),
  };
}

/** A running request: deltas queued until read, then the result or the error. */
class Run {
  private readonly queue: string[] = [];
  /** Routing received and not yet handed to a chunk (with moe_routing). */
  private routing: RoutingDelta | undefined;
  private wake: (() => void) | undefined;
  private outcome: { result?: ServiceResult; error?: WebMoeError } | undefined;
  aborted = false;
  /** Settled: nothing left to abort. */
  get done(): boolean {
    return this.outcome !== undefined;
  }
  settled: Promise<void> = Promise.resolve();

  push(delta: ServiceDelta): void {
    if (delta.text) this.queue.push(delta.text);
    if (delta.routing) this.routing = appendRouting(this.routing, delta.routing);
    this.wake?.();
  }

  /** The routing received since the last call. */
  takeRouting(): RoutingDelta | undefined {
    const taken = this.routing;
    this.routing = undefined;
    return taken;
  }

  /** What is left of the routing with the result's rest and final residency (undefined without moe_routing). */
  finalRouting(result: ServiceResult): RoutingDelta | undefined {
    return result.routing && appendRouting(this.takeRouting(), result.routing);
  }

  /** Resolves once routing has arrived or the request settled. */
  async routingOrEnd(): Promise<void> {
    while (!this.routing && !this.outcome) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.routing || this.outcome) resolve();
      });
      this.wake = undefined;
    }
  }

  finish(result: ServiceResult | undefined, error: WebMoeError | undefined): void {
    this.outcome = { result, error };
    this.wake?.();
  }

  async result(): Promise<ServiceResult> {
    await this.settled;
    if (this.outcome!.error) throw this.outcome!.error;
    return this.outcome!.result!;
  }

  /** Texts as they arrive; ends when the request settled and everything was read. */
  async *texts(): AsyncGenerator<string> {
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift()!;
      if (this.outcome) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.queue.length > 0 || this.outcome) resolve();
      });
      this.wake = undefined;
    }
  }
}

/** Chunk builders; `routing` is what the chunk carries in moe_routing (undefined: nothing new). */
interface ChunkShapes<T> {
  first?: (routing: RoutingDelta | undefined) => T;
  delta: (text: string, routing: RoutingDelta | undefined) => T;
  last: (result: ServiceResult, routing: RoutingDelta | undefined) => T[];
}

/**
 * The chunks of a run; leaving the loop early (break, throw) aborts the
 * request. Routing goes on the next chunk after it arrived; with
 * `routedFirst` the first chunk waits for the prompt's.
 */
async function* streamOf<T>(run: Run, cancel: () => void, routedFirst: boolean, shapes: ChunkShapes<T>): AsyncGenerator<T> {
  let finished = false;
  try {
    if (shapes.first) {
      if (routedFirst) await run.routingOrEnd();
      yield shapes.first(run.takeRouting());
    }
    for await (const text of run.texts()) yield shapes.delta(text, run.takeRouting());
    const result = await run.result();
    finished = true;
    for (const chunk of shapes.last(result, run.finalRouting(result))) yield chunk;
  } finally {
    if (!finished) {
      cancel();
      await run.settled;
    }
  }
}

/** The roles a message may have (ChatRole). */
const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant', 'tool', 'developer'];
/** Most stop strings a request may give, and the longest one: the text that may be a stop string's start is held back from the stream. */
export const MAX_STOP_STRINGS = 16;
export const MAX_STOP_LENGTH = 1000;

/** A request value in a message: JSON where it is one, short. */
function shown(value: unknown): string {
  const text = typeof value === 'number' || value === undefined ? String(value) : JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** BAD_REQUEST naming the field first (the server reads the field from the message's first word). */
function badField(field: string, message: string): WebMoeError {
  return new WebMoeError('BAD_REQUEST', `${field} ${message}`, { field });
}

function checkMessages(messages: unknown): asserts messages is ChatCompletionRequest['messages'] {
  if (!Array.isArray(messages) || messages.length === 0) throw badField('messages', `must be a non-empty array, got ${shown(messages)}`);
  for (const [i, m] of (messages as unknown[]).entries()) {
    if (typeof m !== 'object' || m === null) throw badField(`messages[${i}]`, `must be an object with a role and a content, got ${shown(m)}`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (!ROLES.some((r) => r === role)) throw badField(`messages[${i}].role`, `must be one of ${ROLES.join(', ')}, got ${shown(role)}`);
    if (typeof content !== 'string') throw badField(`messages[${i}].content`, `must be a string, got ${shown(content)}`);
  }
}

function checkStream(stream: unknown): void {
  if (stream != null && typeof stream !== 'boolean') throw badField('stream', `must be a boolean, got ${shown(stream)}`);
}

/** A number field: undefined when absent (or null), else `ok` must hold. */
function numberField(request: SamplingParams, field: keyof SamplingParams, ok: (v: number) => boolean, what: string): number | undefined {
  const value: unknown = request[field];
  if (value == null) return undefined;
  if (typeof value !== 'number' || !ok(value)) throw badField(field, `must be ${what}, got ${shown(value)}`);
  return value;
}

function stopStrings(stop: unknown): string[] {
  if (stop == null) return [];
  const stops: unknown[] = typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : [stop];
  if (stops.length > MAX_STOP_STRINGS) throw badField('stop', `must hold at most ${MAX_STOP_STRINGS} strings, got ${stops.length}`);
  for (const s of stops) {
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_STOP_LENGTH) {
      throw badField('stop', `must be a string of 1 to ${MAX_STOP_LENGTH} characters or an array of them, got ${typeof s === 'string' ? `a string of ${s.length}` : shown(s)}`);
    }
  }
  return stops as string[];
}

/** The engine request of an OpenAI one; WebMoeError BAD_REQUEST naming the field for what is malformed or what the engine does not do. */
export function coreRequest(request: SamplingParams, prompt: Pick<ServiceRequest, 'prompt' | 'messages'>): ServiceRequest {
  const n = request.n ?? 1;
  if (n !== 1) throw badField('n', `= ${shown(n)} is not supported; ask for one choice per request`);
  const integer = (v: number) => Number.isSafeInteger(v) && v >= 0;
  const maxTokens = numberField(request, request.max_tokens != null ? 'max_tokens' : 'max_completion_tokens', integer, 'an integer >= 0');
  const sampling: SamplingOptions = { temperature: numberField(request, 'temperature', (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0') ?? 1 };
  const topP = numberField(request, 'top_p', (v) => v > 0 && v <= 1, 'in (0, 1]');
  const topK = numberField(request, 'top_k', integer, 'an integer >= 0');
  const minP = numberField(request, 'min_p', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  const penalty = numberField(request, 'repetition_penalty', (v) => Number.isFinite(v) && v > 0, 'a finite number > 0');
  const seed = numberField(request, 'seed', Number.isSafeInteger, 'an integer');
  if (topP !== undefined) sampling.topP = topP;
  if (topK !== undefined) sampling.topK = topK;
  if (minP !== undefined) sampling.minP = minP;
  if (penalty !== undefined) sampling.repeatPenalty = penalty;
  if (seed !== undefined) sampling.seed = seed;
  const stop = stopStrings(request.stop);
  const routing = request.moe_routing ?? false;
  if (typeof routing !== 'boolean') throw badField('moe_routing', `must be a boolean, got ${shown(routing)}`);
  const ignoreEos = request.ignore_eos ?? false;
  if (typeof ignoreEos !== 'boolean') throw badField('ignore_eos', `must be a boolean, got ${shown(ignoreEos)}`);
  return { ...prompt, maxTokens, sampling, stop, ...(routing ? { moeRouting: true } : {}), ...(ignoreEos ? { ignoreEos: true } : {}) };
}

/** `{ moe_routing }` for a chunk or result, or nothing. */
function routingField(routing: RoutingDelta | undefined): { moe_routing?: MoeRoutingDelta } {
  return routing ? { moe_routing: routing } : {};
}

export function usageOf(r: ServiceResult): CompletionUsage {
  const e = r.stats;
  const accesses = e.expertHits + e.expertMisses;
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    cached_prompt_tokens: r.cachedPromptTokens,
    prefill_tokens_per_s: e.prefillTokPerS,
    decode_tokens_per_s: e.decodeTokPerS,
    moe: {
      expert_hits: e.expertHits,
      expert_misses: e.expertMisses,
      hit_rate: accesses === 0 ? 1 : e.expertHits / accesses,
      prefetch_precision: e.prefetchPrecision,
      prefetch_recall: e.prefetchRecall,
      bytes_streamed: e.bytesStreamed,
      stall_ms: e.stallMs,
      host_hits: e.hostHits,
      store_reads: e.storeReads,
      store_bytes: e.storeBytes,
      host_budget_bytes: e.hostBudgetBytes,
    },
  };
}

export function statsOf(s: ServiceStats): EngineStats {
  const m = s.memory;
  const a = s.adapter;
  return {
    model: s.model,
    architecture: s.architecture,
    adapter: a && { vendor: a.vendor, architecture: a.architecture, description: a.description, is_fallback_adapter: a.isFallbackAdapter },
    context_length: s.contextLength,
    memory: m && {
      shared_weight_bytes: m.sharedWeightBytes, expert_bytes: m.expertBytes, kv_cache_bytes: m.kvCacheBytes,
      expert_slots: m.expertSlots, total_experts: m.totalExperts, resident_experts_per_layer: m.residentPerLayer,
      moe_layers: m.moeLayers, experts_per_layer: m.expertsPerLayer, experts_per_token: m.expertsPerToken, resident_experts: m.residentExperts, streaming: m.streaming,
    },
    requests: s.requests,
    device_losses: s.deviceLosses,
    last_usage: s.lastResult && usageOf(s.lastResult),
    cost: { last_request: s.lastResult && costFiguresOf(s.lastResult.stats.cost), total: costFiguresOf(s.totalCost) },
  };
}

export function costFiguresOf(cost: RequestCost): RequestCostFigures {
  const figures = (c: CostCounts): CostFigures => ({
    dispatches: c.dispatches,
    compute_passes: c.passes,
    submissions: c.submissions,
    round_trips: c.roundTrips,
    weight_bytes: c.weightBytes,
    upload_bytes: c.uploadBytes,
    store_bytes: c.storeBytes,
    encode_ms: c.encodeMs,
  });
  const phase = (p: PhaseCost): PhaseCostFigures => ({ tokens: p.tokens, ...figures(p.counts), per_token: figures(perCosts(p.counts, p.tokens)) });
  return { prefill: phase(cost.prefill), decode: phase(cost.decode) };
}

export function modelCard(m: ModelSummary): ModelCard {
  const created = m.completedAt ? Math.floor(Date.parse(m.completedAt) / 1000) : 0;
  return {
    id: m.modelId,
    object: 'model',
    created: Number.isFinite(created) ? created : 0,
    owned_by: 'webmoe',
    architecture: m.architecture,
    name: m.name,
    stored_bytes: m.storedBytes,
    state: m.state === 'complete' ? 'complete' : 'importing',
  };
}

function randomId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
