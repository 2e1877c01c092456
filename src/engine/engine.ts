/**
 * The generation loop over one loaded model: the tokenizer and chat template
 * from its GGUF metadata, the KV cache's contents, prefill and decode,
 * sampling, stop conditions, streaming text and abort.
 *
 * The engine remembers which tokens its KV cache holds. A request whose
 * prompt begins with them (a chat continuing, or the same prompt again)
 * prefills only the rest; the prompt's last token always runs again, for
 * its logits. After an abort or an error the cache holds exactly the tokens
 * that were run to completion, so the next request is unaffected.
 */

import { readGguf } from '../gguf/reader';
import { sourceFromBytes } from '../gguf/source';
import type { ByteSource } from '../gguf/source';
import type { GgufFile } from '../gguf/types';
import { MoeTransformer } from '../models/moe-transformer';
import type { ForwardOutput, ForwardResult, MoeTransformerOptions } from '../models/moe-transformer';
import type { StoredModel } from '../store/weight-store';
import { ChatTemplate } from '../text/chat-template';
import type { ChatMessage, ChatRenderOptions } from '../text/chat-template';
import { NoChatTemplateError } from '../text/errors';
import { StopMatcher, StreamingDetokenizer } from '../text/streaming';
import { Tokenizer } from '../text/tokenizer';
import { ContextOverflowError, EngineError } from './errors';
import { storedExpertSource } from '../experts/expert-source';
import { routingKnobsProblem } from '../kernels/router';
import { addCosts, costCounterOf, subtractCosts, zeroCosts } from '../gpu/cost-counter';
import type { CostCounts } from '../gpu/cost-counter';
import type { ExpertCacheStats, TierStats } from '../experts/cache-stats';
import { encodeChat, encodePrompt } from './prompt';
import type { RoutingDelta } from './routing';
import { Sampler } from './sampler';
import type { SamplingOptions } from './sampler';
import { storedModelAsGguf } from './stored-model';

/** The model's load options (context, batch, expert budget and scheduling), and progress. */
export interface EngineOptions extends MoeTransformerOptions {
  /** Told what loading is doing, one line at a time. */
  onProgress?: (message: string) => void;
}

export interface GenerateRequest {
  /** The prompt as token ids, used as they are. Give exactly one of promptTokens, prompt, messages. */
  promptTokens?: readonly number[];
  /** The prompt as text: BOS added as the model asks, special-token texts recognised (as llama.cpp). */
  prompt?: string;
  /** A conversation, written with the model's chat template (NoChatTemplateError if it has none). */
  messages?: readonly ChatMessage[];
  /** Options of the chat template rendering. */
  chatOptions?: ChatRenderOptions;
  /** Most tokens to generate; default: until the context is full. Prompt + maxTokens beyond the context is a ContextOverflowError. */
  maxTokens?: number;
  sampling?: SamplingOptions;
  /** Generation stops before the first of these strings; it is not part of the text. */
  stop?: readonly string[];
  /** Keep going past end-of-generation tokens (EOS, EOT...). Default false. */
  ignoreEog?: boolean;
  /** Aborting ends generation after the current step with finishReason 'abort'; the engine stays usable. */
  signal?: AbortSignal;
  /**
   * Called for each generated token with the text it completes (possibly
   * empty: a character split over tokens, or a possible stop-string start,
   * is held back). When text is still held at the end, one last call
   * without a token carries it. The deltas add up to the result's text.
   */
  onToken?: (event: TokenEvent) => void;
  /**
   * Called after every run of the model (the prompt's prefill, then each
   * generated token once it is fed) with the routed experts of the tokens
   * it ran and the experts resident after it. Prompt tokens whose KV cache
   * entries are reused are not run again, so they are not reported. Unset:
   * no routing is recorded or read back.
   */
  onRouting?: (delta: RoutingDelta) => void;
}

export interface TokenEvent {
  /** The token generated; absent on the last call carrying held-back text. */
  token?: number;
  text: string;
}

export type FinishReason = 'stop' | 'length' | 'abort';

/** TierStats: what the tiers below the GPU slots served (host hits, store reads and bytes, the host budget; see ExpertCacheStats). */
export interface GenerationStats extends TierStats {
  /** Prompt tokens run (after KV cache reuse) per second of prefill. */
  prefillTokPerS: number;
  /** Decode steps per second (each runs one token and samples the next). */
  decodeTokPerS: number;
  /** Routed-expert reads served from GPU memory. */
  expertHits: number;
  /** Routed-expert reads that had to be loaded first. */
  expertMisses: number;
  /** Expert bytes loaded into GPU slots for this request (from host memory or the store). */
  bytesStreamed: number;
  /** Routed-expert reads served from GPU memory (the same as expertHits). */
  gpuHits: number;
  /** Time spent waiting for expert loads. */
  stallMs: number;
  /** Prefetched experts that were used, over experts prefetched (0 without prefetch). */
  prefetchPrecision: number;
  /** Misses avoided by prefetch, over the accesses prefetch could have served (0 without prefetch). */
  prefetchRecall: number;
  /** The same counts per layer (layers without routed experts are all zeros). */
  expertLayers: ExpertLayerFigures[];
  /** What the request asked of the GPU, prefill and decode apart (src/gpu/cost-counter.ts). */
  cost: RequestCost;
}

/** What one phase of a request cost: the tokens it ran and the counts they took (divide for a per-token view). */
export interface PhaseCost {
  tokens: number;
  counts: CostCounts;
}

/**
 * Prefill: the prompt tokens run (after KV cache reuse). Decode: each
 * generated token fed back (the last one is not fed when generation ends on
 * it). Loads still in flight when a phase ends (prefetches) are counted in
 * the phase where they finish.
 */
export interface RequestCost {
  prefill: PhaseCost;
  decode: PhaseCost;
}

export function zeroRequestCost(): RequestCost {
  return { prefill: { tokens: 0, counts: zeroCosts() }, decode: { tokens: 0, counts: zeroCosts() } };
}

/** a + b, phase by phase (the service's running total). */
export function addRequestCosts(a: RequestCost, b: RequestCost): RequestCost {
  const add = (x: PhaseCost, y: PhaseCost): PhaseCost => ({ tokens: x.tokens + y.tokens, counts: addCosts(x.counts, y.counts) });
  return { prefill: add(a.prefill, b.prefill), decode: add(a.decode, b.decode) };
}

export interface ExpertLayerFigures {
  hits: number;
  misses: number;
  prefetchLoads: number;
  prefetchUsed: number;
  bytesStreamed: number;
  stallMs: number;
}

export interface GenerateResult {
  promptTokens: number[];
  /** Generated ids, without an end-of-generation token that ended the request. */
  tokens: number[];
  /** Their text, cut before a stop string. */
  text: string;
  /** 'stop': an end-of-generation token or a stop string; 'length': maxTokens (or the context); 'abort': the signal. */
  finishReason: FinishReason;
  stats: GenerationStats;
  /** The sampling seed used (the one given, or the random one chosen). */
  seed: number;
  /** Prompt tokens whose KV cache entries were reused from the previous request. */
  reusedTokens: number;
}

export class Engine {
  /** Ids whose keys and values are in the KV cache at positions 0..length-1. */
  private cached: number[] = [];
  private running = false;
  private destroyed = false;

  private constructor(
    private readonly device: GPUDevice,
    readonly model: MoeTransformer,
    readonly tokenizer: Tokenizer,
    /** The model's chat template, when it has one. */
    readonly chatTemplate: ChatTemplate | undefined,
  ) {}

  /** Loads a GGUF file from bytes or any ByteSource (a Blob, a URL, a path in Node: see src/gguf). */
  static async load(device: GPUDevice, source: ByteSource | Uint8Array, options: EngineOptions = {}): Promise<Engine> {
    const src = source instanceof Uint8Array ? sourceFromBytes(source) : source;
    options.onProgress?.(`reading ${src.name} (${formatMiB(src.size)})`);
    return Engine.fromGguf(device, await readGguf(src), src, options);
  }

  /** Loads a model fully imported into a weight store. */
  static async fromStoredModel(device: GPUDevice, stored: StoredModel, options: EngineOptions = {}): Promise<Engine> {
    options.onProgress?.(`reading stored model ${stored.modelId} (${formatMiB(stored.manifest.storedBytes)})`);
    const { file, source } = await storedModelAsGguf(stored);
    return Engine.fromGguf(device, file, source, { expertSource: storedExpertSource(stored), ...options });
  }

  /** Loads a parsed GGUF file whose tensor data `source` holds. */
  static async fromGguf(device: GPUDevice, file: GgufFile, source: ByteSource, options: EngineOptions = {}): Promise<Engine> {
    const budget = options.expertBudgetBytes;
    if (budget !== undefined) {
      if (!(Number.isFinite(budget) && budget >= 0)) throw new EngineError('BAD_REQUEST', `expertBudgetBytes must be a number >= 0, got ${budget}`);
    }
    const knobsProblem = routingKnobsProblem(options.routing);
    if (knobsProblem) throw new EngineError('BAD_REQUEST', `routing: ${knobsProblem}`);
    const host = options.hostBudgetBytes;
    if (host !== undefined && !(Number.isFinite(host) && host >= 0)) throw new EngineError('BAD_REQUEST', `hostBudgetBytes must be a number >= 0, got ${host}`);
    const tokenizer = Tokenizer.fromGguf(file);
    const chatTemplate = optionalChatTemplate(file);
    const started = performance.now();
    options.onProgress?.('uploading weights and building pipelines');
    const model = await MoeTransformer.load(device, file, source, options);
    const seconds = (performance.now() - started) / 1000;
    const hostNote = model.memory().streaming ? `; experts stream, host memory for expert records ${formatMiB(model.expertStats().hostBudgetBytes)}` : '';
    options.onProgress?.(`loaded ${model.config.arch}: ${formatMiB(model.weightBytes)} on the GPU, context ${model.maxContext}, in ${seconds.toFixed(1)} s${hostNote}`);
    return new Engine(device, model, tokenizer, chatTemplate);
  }

  /** Positions the KV cache holds: the most prompt + generated tokens of one request. */
  get maxContext(): number {
    return this.model.maxContext;
  }

  /** The ids whose KV cache entries a following request may reuse. */
  get cachedTokens(): readonly number[] {
    return this.cached;
  }

  /** Forgets the KV cache's contents: the next request prefills its whole prompt. */
  resetCache(): void {
    this.cached = [];
  }

  /** The token ids a request's prompt stands for. */
  promptTokensOf(request: Pick<GenerateRequest, 'promptTokens' | 'prompt' | 'messages' | 'chatOptions'>): number[] {
    const given = [request.promptTokens, request.prompt, request.messages].filter((p) => p !== undefined).length;
    if (given !== 1) throw new EngineError('BAD_REQUEST', `give exactly one of promptTokens, prompt and messages (got ${given})`);
    if (request.promptTokens) return [...request.promptTokens];
    if (request.prompt !== undefined) return encodePrompt(this.tokenizer, request.prompt);
    return encodeChat(this.tokenizer, this.chatTemplate, request.messages!, request.chatOptions);
  }

  /** Generates a completion of the request's prompt; one request at a time (EngineError BUSY otherwise). */
  async generate(request: GenerateRequest): Promise<GenerateResult> {
    if (this.destroyed) throw new EngineError('DESTROYED', 'the engine was destroyed');
    if (this.running) throw new EngineError('BUSY', 'another generate() is running on this engine; wait for it or abort it');
    this.running = true;
    // The routing stream lasts one request: nothing is recorded or read back for requests without onRouting.
    if (request.onRouting) this.model.startRoutingStream();
    try {
      return await this.run(request);
    } finally {
      this.running = false;
      if (request.onRouting) this.model.stopRoutingStream();
    }
  }

  private async run(request: GenerateRequest): Promise<GenerateResult> {
    const prompt = this.promptTokensOf(request);
    if (prompt.length === 0) throw new EngineError('BAD_REQUEST', 'the prompt has no tokens');
    const maxTokens = request.maxTokens ?? this.maxContext - prompt.length;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new EngineError('BAD_REQUEST', `maxTokens must be an integer >= 0, got ${maxTokens}`);
    if (prompt.length + maxTokens > this.maxContext) throw new ContextOverflowError(prompt.length, maxTokens, this.maxContext);
    const sampler = new Sampler(request.sampling ?? {}, this.model.maxTopK);
    const { signal, onToken, onRouting } = request;
    this.model.resetExpertStats();
    const tokens: number[] = [];
    let text = '';
    let finishReason: FinishReason = 'length';
    let prefillMs = 0;
    let prefilled = 0;
    let decodeMs = 0;
    let decodeSteps = 0;
    // Differences of the device's cost counter around each run of the model.
    const counter = costCounterOf(this.device);
    let prefillCost = zeroCosts();
    let decodeCost = zeroCosts();
    const reusedTokens = Math.min(commonPrefixLength(this.cached, prompt), prompt.length - 1);

    if (signal?.aborted) finishReason = 'abort';
    else if (maxTokens > 0) {
      // Prefill: the prompt past the reused prefix; the last token's output is sampled.
      let started = performance.now();
      let before = counter.snapshot();
      let output = await this.feed(prompt.slice(reusedTokens), reusedTokens, sampler.output, signal, onRouting);
      prefillMs = performance.now() - started;
      prefillCost = subtractCosts(counter.snapshot(), before);
      prefilled = this.cached.length - reusedTokens;

      // Decode: sample, stop or emit, run the token, repeat.
      const history = [...prompt];
      const detokenizer = new StreamingDetokenizer(this.tokenizer, { skipSpecial: true });
      const stops = new StopMatcher(request.stop ?? []);
      const emit = (event: TokenEvent) => {
        text += event.text;
        onToken?.(event);
      };
      for (;;) {
        if (!output) {
          finishReason = 'abort';
          break;
        }
        const token = sampler.sample(output, history);
        if (!request.ignoreEog && this.tokenizer.isEog(token)) {
          finishReason = 'stop';
          break;
        }
        tokens.push(token);
        history.push(token);
        const released = stops.push(detokenizer.push(token));
        emit({ token, text: released.text });
        if (released.stopped) {
          finishReason = 'stop';
          break;
        }
        if (tokens.length >= maxTokens) break;
        started = performance.now();
        before = counter.snapshot();
        output = await this.feed([token], history.length - 1, sampler.output, signal, onRouting);
        decodeMs += performance.now() - started;
        decodeCost = addCosts(decodeCost, subtractCosts(counter.snapshot(), before));
        decodeSteps++;
      }
      if (!stops.stopped) {
        const tail = stops.push(detokenizer.flush());
        const rest = tail.text + stops.flush();
        if (rest) emit({ text: rest });
      }
    }

    return {
      promptTokens: prompt,
      tokens,
      text,
      finishReason,
      seed: sampler.seed,
      reusedTokens: maxTokens > 0 ? reusedTokens : 0,
      stats: {
        prefillTokPerS: perSecond(prefilled, prefillMs),
        decodeTokPerS: perSecond(decodeSteps, decodeMs),
        ...expertFigures(this.model.expertStats()),
        cost: { prefill: { tokens: prefilled, counts: prefillCost }, decode: { tokens: decodeSteps, counts: decodeCost } },
      },
    };
  }

  /**
   * Runs `tokens` at positions start.. in batches, keeping track of what the
   * KV cache holds; returns the last batch's `output`, or undefined when the
   * signal aborted before all batches ran. With `onRouting`, reports the
   * tokens' routing once they have all run.
   */
  private async feed(
    tokens: readonly number[],
    start: number,
    output: ForwardOutput,
    signal?: AbortSignal,
    onRouting?: (delta: RoutingDelta) => void,
  ): Promise<ForwardResult | undefined> {
    if (start > this.cached.length) throw new Error(`unreachable: feeding position ${start} with ${this.cached.length} cached`);
    this.cached.length = start;
    const batch = this.model.maxBatchTokens;
    let result: ForwardResult = {};
    for (let at = 0; at < tokens.length; at += batch) {
      if (signal?.aborted) return undefined;
      const chunk = tokens.slice(at, at + batch);
      const last = at + chunk.length === tokens.length;
      result = await this.model.forward(chunk, start + at, last ? output : 'none');
      this.cached.push(...chunk);
    }
    if (signal?.aborted) return undefined;
    if (onRouting) {
      const routed = this.model.drainRouting().map((t, i) => ({ position: start + i, experts: t.experts }));
      if (routed.length !== tokens.length) throw new Error(`unreachable: ${routed.length} tokens' routing recorded for ${tokens.length} run`);
      onRouting({ tokens: routed, resident: this.model.residentExperts() });
    }
    return result;
  }

  /** Frees the model's GPU buffers; the engine is unusable afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.cached = [];
    this.model.destroy();
  }
}

function optionalChatTemplate(file: GgufFile): ChatTemplate | undefined {
  try {
    return ChatTemplate.fromGguf(file);
  } catch (error) {
    if (error instanceof NoChatTemplateError) return undefined;
    throw error;
  }
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

type ExpertFigures = Omit<GenerationStats, 'prefillTokPerS' | 'decodeTokPerS' | 'cost'>;

/** The expert cache's counters as the engine reports them (the API shapes them once more, in src/api/openai.ts). */
function expertFigures(s: ExpertCacheStats): ExpertFigures {
  return {
    expertHits: s.hits,
    expertMisses: s.misses,
    bytesStreamed: s.bytesStreamed,
    stallMs: s.stallMs,
    gpuHits: s.gpuHits,
    hostHits: s.hostHits,
    storeReads: s.storeReads,
    storeBytes: s.storeBytes,
    hostWarmReads: s.hostWarmReads,
    hostBudgetBytes: s.hostBudgetBytes,
    hostHeldBytes: s.hostHeldBytes,
    prefetchPrecision: s.precision,
    prefetchRecall: s.recall,
    expertLayers: s.layers.map((l) => ({
      hits: l.hits,
      misses: l.misses,
      prefetchLoads: l.prefetchLoads,
      prefetchUsed: l.prefetchUsed,
      bytesStreamed: l.bytesStreamed,
      stallMs: l.stallMs,
    })),
  };
}
