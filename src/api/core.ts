/**
 * The contract between the OpenAI-shaped client (openai.ts) and whatever
 * runs the model: the in-thread LocalCore (Node, and inside the worker), or
 * the worker seen through comlink from the page. Only plain data and
 * callbacks cross it, so the same client works on both sides.
 */

import type { SamplingOptions } from '../engine/sampler';
import type { ChatMessage } from '../text/chat-template';
import type {
  CreateEngineOptions, DeviceLostInfo, EngineStats, LoadProgress, ModelCard, ModelSource, PrefetchSetting,
} from './types';

/** CreateEngineOptions without the callbacks, which travel as separate arguments. */
export interface CoreLoadOptions {
  modelId?: string;
  expertBudgetMB?: number;
  expertPolicy?: CreateEngineOptions['expertPolicy'];
  prefetch?: PrefetchSetting;
  contextLength?: number;
  storeDir?: string;
  databaseName?: string;
}

export interface CoreGenerateRequest {
  /** Exactly one of prompt and messages. */
  prompt?: string;
  messages?: ChatMessage[];
  maxTokens?: number;
  sampling: SamplingOptions;
  stop: string[];
}

/** One piece of streamed text (possibly empty), with the token it completes. */
export interface CoreDelta {
  token?: number;
  text: string;
}

export interface CoreResult {
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  text: string;
  /** 'abort' never leaves the core: an aborted request rejects with ABORTED. */
  finishReason: 'stop' | 'length';
  prefillTokPerS: number;
  decodeTokPerS: number;
  expertHits: number;
  expertMisses: number;
  prefetchPrecision: number;
  prefetchRecall: number;
  bytesStreamed: number;
  stallMs: number;
}

export interface CoreLoaded {
  /** The model's id (a stored id, or a path in Node). */
  model: string;
  architecture: string;
}

export interface EngineCore {
  load(model: ModelSource, options: CoreLoadOptions, onProgress?: (p: LoadProgress) => void, onDeviceLost?: (info: DeviceLostInfo) => void): Promise<CoreLoaded>;
  /** Runs request `id`; deltas go to onDelta in order before the result resolves. */
  generate(id: number, request: CoreGenerateRequest, onDelta?: (delta: CoreDelta) => void): Promise<CoreResult>;
  /** Aborts request `id` (queued or running); unknown ids are ignored. */
  abort(id: number): void;
  tokenize(text: string, addSpecial: boolean): Promise<number[]>;
  detokenize(tokens: number[]): Promise<string>;
  listModels(): Promise<ModelCard[]>;
  deleteModel(id: string): Promise<boolean>;
  importModel(source: ModelSource, id: string | undefined, onProgress?: (p: LoadProgress) => void): Promise<ModelCard>;
  stats(): Promise<EngineStats>;
  unload(): Promise<void>;
  simulateDeviceLoss(): Promise<void>;
}
