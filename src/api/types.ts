/**
 * The public API's types. Field names follow OpenAI's chat completions and
 * completions APIs (snake_case), so code written for them reads the same;
 * what MoE streaming adds (expert hits, misses, prefetch, bytes, stalls) is
 * in `usage.moe`, and per-token routing, on request, in `moe_routing`.
 */

import type { DeviceLostInfo, LoadProgress, ModelSource, PrefetchSetting, ServiceLoadOptions } from '../engine/service-types';
import type { RoutingKnobs } from '../kernels/router';

export type { DeviceLostInfo, ExpertPolicyName, LoadProgress, ModelPart, ModelSource, PrefetchSetting } from '../engine/service-types';
export type { RoutingKnobs } from '../kernels/router';

/** createEngine's options: the service's load options (see ServiceLoadOptions), the model and the callbacks. */
export interface CreateEngineOptions extends Omit<ServiceLoadOptions, 'prefetch'> {
  /** The model to load (see ModelSource): a split set as a list of its shards. A File, Blob, bytes or URL is imported into the model store first. */
  model: ModelSource;
  /** Prefetch predicted experts when streaming: a predictor name or its settings (default: 'affinity', next layer, guesses of confidence 0.45 or more; 'none' turns it off). */
  prefetch?: PrefetchSetting['predictor'] | PrefetchSetting;
  /**
   * Routing speed knobs, both off by default (then the output is exactly the
   * model's): `minExpertWeight` in [0, 1) skips routed experts whose weight is
   * below it, `topP` in (0, 1] keeps the fewest experts, heaviest first, whose
   * weights reach that share of the top-k weights' sum. Weights are taken
   * after the model's scoring and renormalisation, before its constant scale;
   * the heaviest expert is always kept and the kept weights are not
   * renormalised. Skipped experts are neither run nor loaded (when streaming),
   * and `moe_routing` lists only the experts used. Out of range: BAD_REQUEST.
   */
  routing?: RoutingKnobs;
  /** Progress of import and load. */
  onProgress?: (progress: LoadProgress) => void;
  /** Called when the GPU device is lost; the next request recreates it and reloads the model. */
  onDeviceLost?: (info: DeviceLostInfo) => void;
}

/** Options shared by chat.completions.create and completions.create. */
export interface SamplingParams {
  /** Most tokens to generate (default: until an end token or the context is full). */
  max_tokens?: number | null;
  /** Alias of max_tokens (OpenAI's newer name). */
  max_completion_tokens?: number | null;
  /** 0 is greedy (default 1, as OpenAI). */
  temperature?: number | null;
  /** Nucleus sampling mass in (0, 1] (default 1: off). */
  top_p?: number | null;
  /** Keep only the k most likely tokens (0: off; not in OpenAI's API). */
  top_k?: number | null;
  /** Drop tokens below min_p times the best one's probability (not in OpenAI's API). */
  min_p?: number | null;
  /** llama.cpp's repetition penalty (1: off; not in OpenAI's API). */
  repetition_penalty?: number | null;
  /** Same seed and request, same output. */
  seed?: number | null;
  /** Generation stops before the first of these strings. */
  stop?: string | string[] | null;
  /** Only 1 is supported. */
  n?: number | null;
  /** Aborting stops generation within one token; the request rejects (or the stream throws) with code ABORTED. */
  signal?: AbortSignal;
  /**
   * Report which routed experts each token used and which are resident, in
   * `moe_routing` (a webmoe extension; default false). Off, nothing is
   * recorded or read back and the output is the same either way.
   */
  moe_routing?: boolean | null;
  /**
   * Keep generating past end-of-generation tokens until max_tokens (llama.cpp
   * server's `ignore_eos`; default false): runs of a fixed length, as
   * benchmarks need.
   */
  ignore_eos?: boolean | null;
}

/**
 * Routing since the previous delta (a webmoe extension, present when the
 * request set moe_routing). Streamed, the prompt's routing comes on the first
 * chunk, each generated token's on the next chunk after it was fed, and what
 * is left (with the final residency) on the last chunk, the one with usage;
 * a whole result carries all of it at once.
 */
export interface MoeRoutingDelta {
  /**
   * Tokens run through the model since the previous delta, in order (prompt
   * tokens in the first delta, then each generated token once it has been
   * fed), each with its routed expert ids per MoE layer (rows as
   * stats().memory.moe_layers), best first: the experts it used, fewer than
   * top-k where the `routing` knobs skipped some. Prompt tokens whose KV cache
   * entries were reused from the previous request are not run again, so they
   * are not here; neither is the last generated token when generation ended
   * before feeding it (max_tokens, a stop string).
   */
  tokens: { position: number; experts: number[][] }[];
  /** Routed experts resident in GPU memory now: per MoE layer, ascending ids. */
  resident: number[][];
}

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool' | 'developer';

export interface ChatCompletionMessageParam {
  role: ChatRole;
  content: string;
  name?: string;
}

export interface ChatCompletionRequestBase extends SamplingParams {
  messages: ChatCompletionMessageParam[];
  /** Ignored when given: the engine serves its one loaded model. */
  model?: string;
}

export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
}

export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false | null;
}

export type ChatCompletionRequest = ChatCompletionRequestStreaming | ChatCompletionRequestNonStreaming;

/** 'stop': an end-of-generation token or a stop string; 'length': max_tokens or the context. */
export type CompletionFinishReason = 'stop' | 'length';

/** Expert-streaming telemetry of one request. */
export interface MoeUsage {
  /** Routed-expert reads served from GPU memory. */
  expert_hits: number;
  /** Routed-expert reads that waited for a load. */
  expert_misses: number;
  /** hits / (hits + misses); 1 when all experts are resident. */
  hit_rate: number;
  /** Prefetched experts used / prefetched (0 without prefetch). */
  prefetch_precision: number;
  /** Needed loads covered by prefetch / needed loads (0 without prefetch). */
  prefetch_recall: number;
  /** Expert bytes loaded into GPU memory (from host memory or storage). */
  bytes_streamed: number;
  /** Time spent waiting for expert bytes. */
  stall_ms: number;
  /** GPU loads served from host memory (the host tier). */
  host_hits: number;
  /** Expert records read from storage (loads host memory did not hold, and its warm reads), and their bytes. */
  store_reads: number;
  store_bytes: number;
  /** Bytes of host memory the host tier may hold (0: none, or nothing streams). */
  host_budget_bytes: number;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose KV cache entries were reused from the previous request. */
  cached_prompt_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  moe: MoeUsage;
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  /** Unix seconds. */
  created: number;
  model: string;
  choices: { index: number; message: ChatCompletionMessage; finish_reason: CompletionFinishReason; logprobs: null }[];
  usage: CompletionUsage;
  /** Every token's routing and the final residency, when the request set moe_routing. */
  moe_routing?: MoeRoutingDelta;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** One choice; empty in the last chunk, which carries only `usage`. */
  choices: { index: number; delta: { role?: 'assistant'; content?: string }; finish_reason: CompletionFinishReason | null; logprobs: null }[];
  /** Present on the last chunk only. */
  usage?: CompletionUsage;
  /** Routing since the previous chunk that had it, when the request set moe_routing. */
  moe_routing?: MoeRoutingDelta;
}

export interface CompletionRequestBase extends SamplingParams {
  prompt: string;
  model?: string;
}

export interface CompletionRequestStreaming extends CompletionRequestBase {
  stream: true;
}

export interface CompletionRequestNonStreaming extends CompletionRequestBase {
  stream?: false | null;
}

export type CompletionRequest = CompletionRequestStreaming | CompletionRequestNonStreaming;

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: CompletionFinishReason; logprobs: null }[];
  usage: CompletionUsage;
  /** Every token's routing and the final residency, when the request set moe_routing. */
  moe_routing?: MoeRoutingDelta;
}

/** A streamed piece of a completion: same object type as the whole, text deltas in choices[0].text. */
export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: CompletionFinishReason | null; logprobs: null }[];
  usage?: CompletionUsage;
  /** Routing since the previous chunk that had it, when the request set moe_routing. */
  moe_routing?: MoeRoutingDelta;
}

/** A stored model as models.list() reports it. */
export interface ModelCard {
  id: string;
  object: 'model';
  /** Unix seconds of the import (0 when unknown). */
  created: number;
  owned_by: 'webmoe';
  architecture: string;
  /** The file's general.name. */
  name?: string;
  /** Bytes the model takes in the store. */
  stored_bytes: number;
  /** 'complete', or 'importing' for an import that was interrupted (import it again to resume). */
  state: 'complete' | 'importing';
}

export interface ModelList {
  object: 'list';
  data: ModelCard[];
}

export interface ModelDeleted {
  id: string;
  object: 'model';
  deleted: boolean;
}

export interface ImportModelOptions {
  /** Id to store the model under (default: from the file name or URL). */
  id?: string;
  onProgress?: (progress: LoadProgress) => void;
}

/**
 * What a run of tokens asked of the GPU, counted as the forward pass records
 * it (always on; counting changes no output). Weight bytes come from each
 * kernel's shapes: a matrix once per stream of workgroups that reads it (a
 * decode matvec once, a prefill matmul once per tile of 8 tokens, the decode
 * expert FFN once per routed token and expert, null experts included, the
 * prefill expert FFN once per group of up to 8 of an expert's tokens: exactly
 * while experts stream, at the bound on the groups when all are resident), a norm or
 * bias vector once per dispatch; activations and the KV cache are not
 * counted, and an embedding table split into pieces is counted as if ids
 * spread evenly over them.
 */
export interface CostFigures {
  /** Kernel dispatches (`dispatchWorkgroups` calls). */
  dispatches: number;
  compute_passes: number;
  /** `queue.submit` calls. */
  submissions: number;
  /** Buffers read back and awaited (`mapAsync`): the sampled token's, and each streamed MoE layer's routing. */
  round_trips: number;
  /** Bytes of weights the kernels read (see above). */
  weight_bytes: number;
  /** Bytes written from the CPU to GPU buffers (`queue.writeBuffer`, and uniform blocks mapped at creation). */
  upload_bytes: number;
  /** Expert bytes read from the model store: GPU loads the host tier did not hold, and its warm reads. */
  store_bytes: number;
  /** Milliseconds of JS spent building commands; waits on the GPU and the store, and the submit calls, excluded. */
  encode_ms: number;
}

/** One phase of requests: the tokens it ran, what they cost in all, and per token. */
export interface PhaseCostFigures extends CostFigures {
  tokens: number;
  /** The counts divided by `tokens` (zeros when no token ran). */
  per_token: CostFigures;
}

/**
 * Prefill: the prompt tokens run (after KV cache reuse). Decode: each
 * generated token fed back. A prefetch still loading when a phase ends is
 * counted where it finishes.
 */
export interface RequestCostFigures {
  prefill: PhaseCostFigures;
  decode: PhaseCostFigures;
}

/** What the engine has on the GPU and has done so far. */
export interface EngineStats {
  /** The loaded model's id (a stored id or a file path), or null before loading / after unload. */
  model: string | null;
  architecture: string | null;
  adapter: { vendor: string; architecture: string; description: string; is_fallback_adapter: boolean } | null;
  context_length: number;
  memory: {
    shared_weight_bytes: number;
    expert_bytes: number;
    kv_cache_bytes: number;
    /** Routed experts resident at once / in the model. */
    expert_slots: number;
    total_experts: number;
    /** Routed experts resident now, per layer (0 for a dense layer). */
    resident_experts_per_layer: number[];
    /** The model layer index of each MoE layer: the rows of `resident_experts` and of moe_routing's arrays. */
    moe_layers: number[];
    /** Routed experts per MoE layer (n_expert). */
    experts_per_layer: number;
    /** Routed experts each token uses per MoE layer (top-k; at most that with the `routing` knobs on). */
    experts_per_token: number;
    /** Routed experts resident now: per MoE layer, ascending ids. */
    resident_experts: number[][];
    streaming: boolean;
  } | null;
  /** Requests completed since load. */
  requests: number;
  /** Device losses recovered from (or pending recovery). */
  device_losses: number;
  /** The last request's usage, or null. */
  last_usage: CompletionUsage | null;
  /** What requests asked of the GPU: the last one (null before any) and every completed one since load, summed. */
  cost: { last_request: RequestCostFigures | null; total: RequestCostFigures };
}

export interface TokenizeOptions {
  /** Add BOS as the model asks (default true). */
  add_special_tokens?: boolean;
}

/** Where a model store lives, for openModelStore. */
export interface ModelStoreOptions {
  /** Node: the store's directory (default `$WEBMOE_STORE` or `~/.cache/webmoe/store`). */
  storeDir?: string;
  /** Browser: the store's IndexedDB database (default `webmoe-weights`). */
  databaseName?: string;
}

/** The model store alone, without a model or a GPU: engine.models, and close. */
export interface WebMoeModelStore {
  list(): Promise<ModelList>;
  delete(id: string): Promise<ModelDeleted>;
  /** Imports a GGUF (URL, File/Blob, bytes; in Node also a path; or a split set's shards); an interrupted import resumes. */
  import(source: ModelSource, options?: ImportModelOptions): Promise<ModelCard>;
  /** Ends the store's worker (browsers); later calls fail with UNLOADED. */
  close(): Promise<void>;
}

/** The engine: an OpenAI-shaped client of one loaded model. */
export interface WebMoeEngine {
  readonly chat: {
    readonly completions: {
      create(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
      create(request: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
    };
  };
  readonly completions: {
    create(request: CompletionRequestStreaming): Promise<AsyncIterable<CompletionChunk>>;
    create(request: CompletionRequestNonStreaming): Promise<Completion>;
    create(request: CompletionRequest): Promise<AsyncIterable<CompletionChunk> | Completion>;
  };
  readonly models: {
    list(): Promise<ModelList>;
    /** Deletes a stored model (not the loaded one's GPU copy). */
    delete(id: string): Promise<ModelDeleted>;
    /** Imports a GGUF (URL, File/Blob, bytes; in Node also a path; or a split set's shards) into the store without loading it. */
    import(source: ModelSource, options?: ImportModelOptions): Promise<ModelCard>;
  };
  /** Token ids of `text` with the model's tokenizer. */
  tokenize(text: string, options?: TokenizeOptions): Promise<number[]>;
  /** Text of token ids. */
  detokenize(tokens: readonly number[]): Promise<string>;
  stats(): Promise<EngineStats>;
  /** Frees the GPU (and, in browsers, ends the worker); the engine is unusable afterwards (code UNLOADED). */
  unload(): Promise<void>;
  /** Destroys the GPU device as a GPU reset would, to exercise recovery: the next request recreates it. */
  simulateDeviceLoss(): Promise<void>;
}

