/**
 * The OpenAI-shaped client over the engine service: request fields checked
 * and mapped to the engine's, results and streamed deltas shaped as OpenAI's
 * `chat.completion`, `chat.completion.chunk` and `text_completion` objects
 * (the only place the engine's figures become snake_case), per-token
 * routing (moe_routing) spread over the chunks, abort signals
 * forwarded as messages (an AbortSignal cannot cross a worker boundary),
 * every failure a WebMoeError.
 */

import { appendRouting } from '../engine/routing';
import type { RoutingDelta } from '../engine/routing';
import type { SamplingOptions } from '../engine/sampler';
import type { EngineServiceApi, ServiceDelta, ServiceRequest, ServiceResult, ServiceStats } from '../engine/service-types';
import { WebMoeError, abortedError, toWebMoeError } from '../engine/webmoe-error';
import type { ModelSummary } from '../store/weight-store';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Completion, CompletionChunk, CompletionRequest,
  CompletionUsage, EngineStats, ImportModelOptions, ModelCard, ModelSource, MoeRoutingDelta, SamplingParams, WebMoeEngine,
} from './types';

export interface ClientHooks {
  /** Runs after the core unloaded (the browser client ends its worker here). */
  afterUnload?: () => void;
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
    if (!Array.isArray(request?.messages) || request.messages.length === 0) throw new WebMoeError('BAD_REQUEST', 'messages must be a non-empty array');
    for (const [i, m] of request.messages.entries()) {
      if (typeof m?.role !== 'string' || typeof m.content !== 'string') throw new WebMoeError('BAD_REQUEST', `messages[${i}] needs a string role and a string content`);
    }
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
    if (typeof request?.prompt !== 'string') throw new WebMoeError('BAD_REQUEST', 'prompt must be a string');
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
    models: {
      list: () => guard(async () => ({ object: 'list' as const, data: (await core.listModels()).map(modelCard) })),
      delete: (id: string) => guard(async () => ({ id, object: 'model' as const, deleted: await core.deleteModel(id) })),
      import: (source: ModelSource, options: ImportModelOptions = {}) => guard(async () => modelCard(await core.importModel(source, options.id, options.onProgress))),
    },
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

/** The engine request of an OpenAI one; WebMoeError BAD_REQUEST for what the engine does not do. */
export function coreRequest(request: SamplingParams, prompt: Pick<ServiceRequest, 'prompt' | 'messages'>): ServiceRequest {
  const n = request.n ?? 1;
  if (n !== 1) throw new WebMoeError('BAD_REQUEST', `n = ${n} is not supported; ask for one choice per request`);
  const maxTokens = request.max_tokens ?? request.max_completion_tokens ?? undefined;
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 0)) {
    throw new WebMoeError('BAD_REQUEST', `max_tokens must be an integer >= 0, got ${maxTokens}`);
  }
  const sampling: SamplingOptions = { temperature: request.temperature ?? 1 };
  if (request.top_p != null) sampling.topP = request.top_p;
  if (request.top_k != null) sampling.topK = request.top_k;
  if (request.min_p != null) sampling.minP = request.min_p;
  if (request.repetition_penalty != null) sampling.repeatPenalty = request.repetition_penalty;
  if (request.seed != null) sampling.seed = request.seed;
  const stop = request.stop == null ? [] : typeof request.stop === 'string' ? [request.stop] : [...request.stop];
  if (stop.some((s) => typeof s !== 'string' || s.length === 0)) throw new WebMoeError('BAD_REQUEST', 'stop must be a non-empty string or an array of them');
  const routing = request.moe_routing ?? false;
  if (typeof routing !== 'boolean') throw new WebMoeError('BAD_REQUEST', `moe_routing must be a boolean, got ${JSON.stringify(routing)}`);
  return { ...prompt, maxTokens, sampling, stop, ...(routing ? { moeRouting: true } : {}) };
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
  };
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
