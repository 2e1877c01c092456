/**
 * The contract of the engine service (service.ts): what the OpenAI-shaped
 * client (src/api/openai.ts) calls, in this thread (Node) or through the
 * worker (browsers, via comlink). Only plain data and callbacks cross it;
 * figures stay camelCase here and are shaped for the public API once, in
 * src/api/openai.ts.
 */

import type { RoutingKnobs } from '../kernels/router';
import type { MemoryReport } from '../models/moe-transformer';
import type { ModelSummary } from '../store/weight-store';
import type { ChatMessage } from '../text/chat-template';
import type { GenerationStats, RequestCost } from './engine';
import type { RoutingDelta } from './routing';
import type { SamplingOptions } from './sampler';

/** One GGUF file: a URL, or the file itself (File/Blob, or bytes). In Node also a file path. */
export type ModelPart = string | Blob | Uint8Array | ArrayBuffer;

/**
 * A GGUF model: the id of a stored model, one GGUF file (ModelPart), or the
 * shards of a split set (llama.cpp's gguf-split, `name-00001-of-0000N.gguf` …)
 * as a list in any order. The URL or (Node) path of one shard alone brings
 * its siblings, whose names follow from it.
 */
export type ModelSource = ModelPart | readonly ModelPart[];

export type ExpertPolicyName = 'next-use' | 'lru' | 'lfu' | 'lfu-decay' | 'fifo';

export interface PrefetchSetting {
  /** 'pregate': the next layers' routers applied early on the GPU; 'affinity': co-occurrence learned online; 'none': no prefetch. */
  predictor: 'pregate' | 'affinity' | 'none';
  /** MoE layers ahead, 1..4 (default 1). */
  lookahead?: number;
  /** Experts guessed per layer (default: the model's top-k). */
  width?: number;
  /** Smallest confidence (probability of being routed) an affinity guess needs to be loaded, 0..1 (default 0.45). */
  minConfidence?: number;
}

export interface LoadProgress {
  /** 'import': the file is copied into the model store; 'load': weights go to the GPU. */
  phase: 'import' | 'load';
  /** What is happening, in words. */
  text: string;
  /** 0..1 where it is known (import), else undefined. */
  progress?: number;
  bytesDone?: number;
  bytesTotal?: number;
}

export interface DeviceLostInfo {
  reason: string;
  message: string;
}

/** How the service loads a model (the public createEngine options without the model and the callbacks). */
export interface ServiceLoadOptions {
  /** Id to store an imported model under (default: from the file name or URL). */
  modelId?: string;
  /** GPU memory for routed experts in MiB; unset: all resident. Less streams experts through a cache. */
  expertBudgetMB?: number;
  /**
   * Host memory in MiB for expert records when streaming: a GPU miss is
   * served from there before the model store. Default: a quarter of the
   * device's memory (navigator.deviceMemory; os.totalmem() in Node), at most
   * every expert; 0: none.
   */
  hostBudgetMB?: number;
  /** Replacement policy of the expert cache when streaming (default 'next-use'). */
  expertPolicy?: ExpertPolicyName;
  /** Prefetch predicted experts when streaming (default: affinity, next layer, confidence 0.45; 'none' turns it off). */
  prefetch?: PrefetchSetting;
  /** KV cache positions (default min(model context, 4096)). */
  contextLength?: number;
  /** Routing speed knobs (see RoutingKnobs); default off. Out of range: BAD_REQUEST. */
  routing?: RoutingKnobs;
  /** Node only: directory of the filesystem model store (default $WEBMOE_STORE or ~/.cache/webmoe/store). */
  storeDir?: string;
  /** Browser only: name of the IndexedDB database of the model store. */
  databaseName?: string;
}

export interface ServiceRequest {
  /** Exactly one of prompt and messages. */
  prompt?: string;
  messages?: ChatMessage[];
  maxTokens?: number;
  sampling: SamplingOptions;
  stop: string[];
  /** Report each run token's routed experts (ServiceDelta.routing, ServiceResult.routing). Default false: nothing recorded. */
  moeRouting?: boolean;
  /** Keep generating past end-of-generation tokens, to max_tokens (benchmarks of a fixed length). Default false. */
  ignoreEos?: boolean;
}

/** One piece of streamed text (possibly empty), with the token it completes. */
export interface ServiceDelta {
  token?: number;
  text: string;
  /** With moeRouting: the routing of the tokens run since the previous delta (absent when none ran). */
  routing?: RoutingDelta;
}

export interface ServiceResult {
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  text: string;
  /** 'abort' never leaves the service: an aborted request rejects with ABORTED. */
  finishReason: 'stop' | 'length';
  /** The engine's figures: tok/s and expert telemetry. */
  stats: GenerationStats;
  /** With moeRouting: the routing no delta carried (possibly no tokens) and the residency at the end. */
  routing?: RoutingDelta;
}

export interface ServiceLoaded {
  /** The model's id (a stored id, or a path in Node). */
  model: string;
  architecture: string;
}

export interface ServiceStats {
  model: string | null;
  architecture: string | null;
  adapter: { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean } | null;
  contextLength: number;
  memory: MemoryReport | null;
  requests: number;
  deviceLosses: number;
  /** The last request's result, without its routing. */
  lastResult: ServiceResult | null;
  /** What every completed request since load cost, summed (the last one's is in lastResult.stats.cost). */
  totalCost: RequestCost;
}

export interface EngineServiceApi {
  load(model: ModelSource, options: ServiceLoadOptions, onProgress?: (p: LoadProgress) => void, onDeviceLost?: (info: DeviceLostInfo) => void): Promise<ServiceLoaded>;
  /** Runs request `id`; deltas go to onDelta in order before the result resolves. */
  generate(id: number, request: ServiceRequest, onDelta?: (delta: ServiceDelta) => void): Promise<ServiceResult>;
  /** Aborts request `id` (queued or running); unknown ids are ignored. */
  abort(id: number): void;
  tokenize(text: string, addSpecial: boolean): Promise<number[]>;
  detokenize(tokens: number[]): Promise<string>;
  /** The model store to use while no model is loaded (a loaded model's options name its own). */
  useStore(options: Pick<ServiceLoadOptions, 'storeDir' | 'databaseName'>): Promise<void>;
  listModels(): Promise<ModelSummary[]>;
  deleteModel(id: string): Promise<boolean>;
  importModel(source: ModelSource, id: string | undefined, onProgress?: (p: LoadProgress) => void): Promise<ModelSummary>;
  stats(): Promise<ServiceStats>;
  unload(): Promise<void>;
  simulateDeviceLoss(): Promise<void>;
}
