/**
 * webmoe: Mixture-of-Experts language models in the browser with WebGPU.
 * The public surface of the package; everything else is internal.
 */
export * from './gguf/index';
export * from './quant/index';
export * from './gpu/index';
export * from './kernels/index';
export { makeTinyModel, TinyModelError, TINY_WEIGHT_TYPES, CHATML_TEMPLATE } from './tiny/make-tiny';
export type { TinyModelOptions, TinyWeightType } from './tiny/make-tiny';
export { TINY_ARCHS } from './tiny/archs';
export type { TinyArch } from './tiny/archs';
export * from './text/index';
export * from './store/index';
export { Engine } from './engine/engine';
export type { EngineOptions, GenerateRequest, GenerateResult, GenerationStats, FinishReason, TokenEvent } from './engine/engine';
export type { RoutedToken, RoutingDelta } from './engine/routing';
export { EngineError, ContextOverflowError } from './engine/errors';
export type { EngineErrorCode } from './engine/errors';
export { Sampler, samplingPath, checkSamplingOptions, applyRepetitionPenalty, candidatesFromLogits, DEFAULT_REPEAT_LAST_N } from './engine/sampler';
export type { SamplingOptions, SamplingPath } from './engine/sampler';
export { encodePrompt, encodeChat } from './engine/prompt';
export { storedModelAsGguf } from './engine/stored-model';
export { createEngine, openModelStore, spawnWorker } from './api/worker-client';
export type { WorkerClient } from './api/worker-client';
export { WebMoeError, toWebMoeError } from './api/errors';
export type { WebMoeErrorCode, WebMoeErrorDetails, SerializedWebMoeError } from './api/errors';
export type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionRequest,
  ChatCompletionRequestNonStreaming, ChatCompletionRequestStreaming, ChatRole, Completion, CompletionChunk, CompletionFinishReason,
  CompletionRequest, CompletionRequestNonStreaming, CompletionRequestStreaming, CompletionUsage, CostFigures, CreateEngineOptions,
  DeviceLostInfo, EngineStats, ExpertPolicyName, ImportModelOptions, LoadProgress, ModelCard, ModelDeleted, ModelList, ModelStoreOptions, WebMoeModelStore,
  ModelPart, ModelSource, MoeRoutingDelta, MoeUsage, PhaseCostFigures, PrefetchSetting, RequestCostFigures, RoutingKnobs, SamplingParams,
  TokenizeOptions, WebMoeEngine,
} from './api/types';
export type {
  EngineServiceApi, ServiceRequest, ServiceResult, ServiceDelta, ServiceLoadOptions, ServiceLoaded, ServiceStats,
} from './engine/service-types';
export { createClient } from './api/openai';
export { EngineService } from './engine/service';
export type { Platform } from './engine/service';
export type { WorkerApi, GgufSummary, AdapterSummary } from './worker/api';
