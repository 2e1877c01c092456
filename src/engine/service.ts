/**
 * The engine service: the engine side of the public API, in the thread that
 * runs the model (the worker in browsers, the main thread in Node). It
 * resolves the model (stored id, file, bytes, URL, path, or the shards of a
 * split set) through the weight store, owns the GPU device and the Engine,
 * runs one request at a time (aborting queued or running ones on request),
 * and recovers from device loss by recreating the device and reloading the
 * model on the next request.
 */

import { Engine, addRequestCosts, zeroRequestCost } from './engine';
import type { EngineOptions } from './engine';
import type {
  DeviceLostInfo, EngineServiceApi, LoadProgress, ModelPart, ModelSource, ServiceDelta, ServiceLoadOptions, ServiceLoaded, ServiceRequest, ServiceResult,
  ServiceStats,
} from './service-types';
import { WebMoeError, abortedError, toWebMoeError } from './webmoe-error';
import { appendRouting } from './routing';
import type { RoutingDelta } from './routing';
import { readGgufSet, splitShardNames } from '../gguf/split';
import { checkGpuReadable } from '../models/gpu-readable';
import { modelConfigFromGguf } from '../models/registry';
import { sourceFromBlob, sourceFromBytes, sourceFromUrl } from '../gguf/source';
import type { ByteSource } from '../gguf/source';
import type { GpuContext } from '../gpu/device';
import type { ImportProgress } from '../store/import';
import type { ModelSummary, WeightStore } from '../store/weight-store';

/** What differs between the browser and Node. */
export interface Platform {
  requestGpu(): Promise<GpuContext>;
  openStore(options: ServiceLoadOptions): Promise<WeightStore>;
  /** A source for a model string that names a local file (Node), else undefined; the service closes it when done. */
  openPath?(model: string): Promise<ClosableSource | undefined>;
}

/** A source holding an operating-system resource (a file handle) until closed. */
export interface ClosableSource extends ByteSource {
  close(): Promise<void>;
}

/** How to (re)load the resolved model on a device. */
interface ModelOpener {
  name: string;
  open(device: GPUDevice, options: EngineOptions): Promise<Engine>;
}

export class EngineService implements EngineServiceApi {
  private store: WeightStore | undefined;
  private gpu: GpuContext | undefined;
  private engine: Engine | undefined;
  private opener: ModelOpener | undefined;
  /** Local files the loaded model is read from in place: open until unload. */
  private files: ClosableSource[] = [];
  private options: ServiceLoadOptions = {};
  private onProgress: ((p: LoadProgress) => void) | undefined;
  private onDeviceLost: ((info: DeviceLostInfo) => void) | undefined;
  private lost: DeviceLostInfo | undefined;
  private losses = 0;
  private requests = 0;
  private lastResult: ServiceResult | undefined;
  private totalCost = zeroRequestCost();
  private releasing = false;
  private tail: Promise<void> = Promise.resolve();
  private readonly controllers = new Map<number, AbortController>();

  constructor(private readonly platform: Platform) {}

  async load(model: ModelSource, options: ServiceLoadOptions, onProgress?: (p: LoadProgress) => void, onDeviceLost?: (info: DeviceLostInfo) => void): Promise<ServiceLoaded> {
    return this.exclusive(async () => {
      if (this.engine) throw new WebMoeError('BAD_REQUEST', 'a model is already loaded; create another engine for another model');
      const host = options.hostBudgetMB;
      if (host !== undefined && !(typeof host === 'number' && Number.isFinite(host) && host >= 0)) {
        throw new WebMoeError('BAD_REQUEST', `hostBudgetMB must be a number >= 0, got ${String(host)}`);
      }
      this.options = options;
      this.onProgress = onProgress;
      this.onDeviceLost = onDeviceLost;
      try {
        this.opener = await this.resolve(model, options.modelId);
        await this.startEngine();
      } catch (error) {
        await this.release();
        throw toWebMoeError(error);
      }
      return { model: this.opener.name, architecture: this.engine!.model.config.arch };
    });
  }

  async generate(id: number, request: ServiceRequest, onDelta?: (delta: ServiceDelta) => void): Promise<ServiceResult> {
    const controller = new AbortController();
    this.controllers.set(id, controller);
    try {
      return await this.exclusive(() => this.run(request, controller.signal, onDelta));
    } finally {
      this.controllers.delete(id);
    }
  }

  abort(id: number): void {
    this.controllers.get(id)?.abort();
  }

  private async run(request: ServiceRequest, signal: AbortSignal, onDelta?: (delta: ServiceDelta) => void): Promise<ServiceResult> {
    if (signal.aborted) throw abortedError();
    await this.recover();
    const engine = this.loaded();
    // Routing rides on the next text delta (one message per token across the worker boundary); the rest on the result.
    let routing: RoutingDelta | undefined;
    const takeRouting = () => {
      const taken = routing;
      routing = undefined;
      return taken ? { routing: taken } : {};
    };
    let result;
    try {
      result = await engine.generate({
        prompt: request.prompt,
        messages: request.messages,
        maxTokens: request.maxTokens,
        sampling: request.sampling,
        stop: request.stop,
        ...(request.ignoreEos ? { ignoreEog: true } : {}),
        signal,
        onToken: onDelta && ((e) => void Promise.resolve(onDelta({ token: e.token, text: e.text, ...takeRouting() })).catch(() => {})),
        onRouting: request.moeRouting ? (delta) => (routing = appendRouting(routing, delta)) : undefined,
      });
    } catch (error) {
      throw await this.explain(error);
    }
    if (result.finishReason === 'abort') throw abortedError();
    this.requests++;
    this.totalCost = addRequestCosts(this.totalCost, result.stats.cost);
    this.lastResult = {
      promptTokens: result.promptTokens.length,
      completionTokens: result.tokens.length,
      cachedPromptTokens: result.reusedTokens,
      text: result.text,
      finishReason: result.finishReason,
      stats: result.stats,
    };
    if (!request.moeRouting) return this.lastResult;
    return { ...this.lastResult, routing: { tokens: routing?.tokens ?? [], resident: engine.model.residentExperts() } };
  }

  async tokenize(text: string, addSpecial: boolean): Promise<number[]> {
    await this.recover();
    return this.loaded().tokenizer.encode(text, { addSpecial, parseSpecial: true });
  }

  async detokenize(tokens: number[]): Promise<string> {
    return this.loaded().tokenizer.decode(tokens);
  }

  async useStore(options: Pick<ServiceLoadOptions, 'storeDir' | 'databaseName'>): Promise<void> {
    await this.exclusive(async () => {
      if (this.engine) throw new WebMoeError('BAD_REQUEST', 'a model is loaded: its store stays in use until unload');
      this.options = { ...this.options, storeDir: options.storeDir, databaseName: options.databaseName };
      this.store = undefined;
    });
  }

  async listModels(): Promise<ModelSummary[]> {
    return (await this.openStore()).listModels();
  }

  async deleteModel(id: string): Promise<boolean> {
    return (await this.openStore()).deleteModel(id);
  }

  async importModel(source: ModelSource, id: string | undefined, onProgress?: (p: LoadProgress) => void): Promise<ModelSummary> {
    const sources = await this.sourcesOf(source, id);
    const stored = await this.importSource(sources, id, onProgress).finally(() => closeAll(sources));
    return (await (await this.openStore()).listModels()).find((m) => m.modelId === stored)!;
  }

  async stats(): Promise<ServiceStats> {
    const engine = this.engine;
    const info = this.gpu?.adapterInfo;
    return {
      model: this.opener?.name ?? null,
      architecture: engine?.model.config.arch ?? null,
      adapter: info ? { vendor: info.vendor, architecture: info.architecture, description: info.description, isFallbackAdapter: info.isFallbackAdapter } : null,
      contextLength: engine?.maxContext ?? 0,
      memory: engine && !this.lost ? engine.model.memory() : null,
      requests: this.requests,
      deviceLosses: this.losses,
      lastResult: this.lastResult ?? null,
      totalCost: this.totalCost,
    };
  }

  async unload(): Promise<void> {
    for (const controller of this.controllers.values()) controller.abort();
    // Unload resolves once the model's files are closed too.
    await this.exclusive(async () => this.release());
  }

  async simulateDeviceLoss(): Promise<void> {
    const device = this.gpu?.device;
    if (!device) throw new WebMoeError('UNLOADED', 'no GPU device: no model is loaded');
    device.destroy();
    await device.lost;
    // The lost handler runs in a reaction of device.lost; let it run first.
    await Promise.resolve();
  }

  // ---- model resolution --------------------------------------------------

  /** A stored id, a local path (Node), or something to import first (File/Blob, bytes, URL). */
  private async resolve(model: ModelSource, modelId: string | undefined): Promise<ModelOpener> {
    if (typeof model === 'string') {
      const stored = (await (await this.openStore()).listModels()).find((m) => m.modelId === model);
      if (stored) return this.storedOpener(model);
    }
    const local = await this.localSources(model);
    if (local) {
      this.files = local;
      const { file, source } = await readGgufSet(local);
      return { name: typeof model === 'string' ? model : source.name, open: (device, options) => Engine.fromGguf(device, file, source, options) };
    }
    if (typeof model === 'string' && !looksLikeUrl(model)) {
      const ids = (await (await this.openStore()).listModels()).map((m) => m.modelId);
      throw new WebMoeError('MODEL_NOT_FOUND', `'${model}' is neither a stored model (stored: ${ids.join(', ') || 'none'}), a file, nor a URL`, { modelId: model });
    }
    const sources = await this.sourcesOf(model, modelId);
    return this.storedOpener(await this.importSource(sources, modelId, this.onProgress).finally(() => closeAll(sources)));
  }

  /**
   * Local GGUF files (Node): a path, a shard's path (which brings its
   * siblings), or a list of paths; undefined when `model` names no local file.
   */
  private async localSources(model: ModelSource): Promise<ClosableSource[] | undefined> {
    const open = this.platform.openPath;
    const paths = typeof model === 'string' ? [model] : isPartList(model) && model.every((p) => typeof p === 'string') ? model : [];
    const first = open && paths.length > 0 ? await open(paths[0]) : undefined;
    if (!open || !first) return undefined;
    const siblings = paths.length === 1 ? splitShardNames(paths[0])?.filter((p) => p !== paths[0]) : paths.slice(1);
    // A missing shard is left out here and named by readGgufSet.
    const rest = await Promise.all((siblings ?? []).map((p) => open(p)));
    return [first, ...rest.filter((s) => s !== undefined)];
  }

  /** The byte sources of a model to import: one file, a shard's URL with its siblings', or a list of parts of a split set. */
  private async sourcesOf(model: ModelSource, modelId: string | undefined): Promise<ByteSource[]> {
    const local = await this.localSources(model);
    if (local) return local;
    const names = typeof model === 'string' ? splitShardNames(model) : undefined;
    const parts = isPartList(model) ? model : names ?? [model];
    return Promise.all(parts.map((part) => this.sourceOf(part, modelId)));
  }

  private storedOpener(id: string): ModelOpener {
    return { name: id, open: async (device, options) => Engine.fromStoredModel(device, await (await this.openStore()).openModel(id), options) };
  }

  private async sourceOf(model: ModelPart, modelId: string | undefined): Promise<ByteSource> {
    if (typeof Blob !== 'undefined' && model instanceof Blob) return sourceFromBlob(model);
    if (model instanceof Uint8Array || model instanceof ArrayBuffer) return sourceFromBytes(model, modelId ?? 'model');
    if (typeof model !== 'string') throw new WebMoeError('BAD_REQUEST', 'model must be a stored id, a URL, a File/Blob or bytes');
    const path = await this.platform.openPath?.(model);
    if (path) return path;
    const base = (globalThis as { location?: { href: string } }).location?.href;
    return sourceFromUrl(base ? new URL(model, base).href : model);
  }

  /** Imports (or finds already imported) a GGUF into the store; returns its id. */
  private async importSource(sources: readonly ByteSource[], modelId: string | undefined, onProgress?: (p: LoadProgress) => void): Promise<string> {
    const store = await this.openStore();
    const result = await store.importModel(sources, {
      modelId,
      // An architecture or tensor type the engine cannot run is refused from the header, before anything is written.
      accept: (file) => checkGpuReadable(file, modelConfigFromGguf(file)),
      onProgress: onProgress && ((p) => void Promise.resolve(onProgress(importProgress(p))).catch(() => {})),
    });
    return result.manifest.modelId;
  }

  private async openStore(): Promise<WeightStore> {
    this.store ??= await this.platform.openStore(this.options);
    return this.store;
  }

  // ---- GPU device and engine ---------------------------------------------

  private async startEngine(): Promise<void> {
    const gpu = await this.platform.requestGpu();
    this.gpu = gpu;
    this.lost = undefined;
    void gpu.device.lost.then((info) => {
      if (this.gpu !== gpu || this.releasing) return;
      this.lost = { reason: info.reason, message: info.message || 'the GPU device was lost' };
      this.losses++;
      const notify = this.onDeviceLost;
      if (notify) void Promise.resolve(notify(this.lost)).catch(() => {});
    });
    const progress = this.onProgress;
    this.engine = await this.opener!.open(gpu.device, {
      maxContext: this.options.contextLength,
      expertBudgetBytes: this.options.expertBudgetMB === undefined ? undefined : this.options.expertBudgetMB * 2 ** 20,
      hostBudgetBytes: this.options.hostBudgetMB === undefined ? undefined : Math.floor(this.options.hostBudgetMB * 2 ** 20),
      expertPolicy: this.options.expertPolicy,
      prefetch: this.options.prefetch,
      routing: this.options.routing,
      onProgress: progress && ((text) => void Promise.resolve(progress({ phase: 'load', text })).catch(() => {})),
    });
  }

  /** After a device loss: a new device and the model loaded on it again. */
  private async recover(): Promise<void> {
    if (!this.lost || !this.opener) return;
    try {
      this.engine?.destroy();
    } catch {
      // Buffers of a lost device may refuse to be destroyed; they are gone anyway.
    }
    this.engine = undefined;
    this.gpu = undefined;
    try {
      await this.startEngine();
    } catch (error) {
      this.lost ??= { reason: 'unknown', message: 'recovery failed' };
      throw toWebMoeError(error);
    }
  }

  /** A generation failure, as DEVICE_LOST when the device went away under it. */
  private async explain(error: unknown): Promise<WebMoeError> {
    const device = this.gpu?.device;
    if (!this.lost && device) await Promise.race([device.lost, new Promise((r) => setTimeout(r, 50))]);
    if (this.lost) {
      return new WebMoeError('DEVICE_LOST', `the GPU device was lost (${this.lost.reason}: ${this.lost.message}); the next request recreates it and reloads the model`, {
        reason: this.lost.reason,
      });
    }
    return toWebMoeError(error);
  }

  private loaded(): Engine {
    if (!this.engine) throw new WebMoeError('UNLOADED', 'no model is loaded');
    return this.engine;
  }

  private async release(): Promise<void> {
    this.releasing = true;
    this.engine?.destroy();
    this.engine = undefined;
    this.gpu?.device.destroy();
    this.gpu = undefined;
    const files = this.files;
    this.files = [];
    await closeAll(files);
  }

  /** Runs `work` after everything queued before it. */
  private async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    try {
      return await work();
    } finally {
      done();
    }
  }
}

/** Closes the sources that hold a file handle; a failed close leaves nothing to recover. */
async function closeAll(sources: readonly ByteSource[]): Promise<void> {
  await Promise.all(sources.map((s) => ('close' in s && typeof s.close === 'function' ? (s as ClosableSource).close().catch(() => {}) : undefined)));
}

function isPartList(model: ModelSource): model is readonly ModelPart[] {
  return Array.isArray(model);
}

function looksLikeUrl(model: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(model) || model.includes('/') || /\.gguf$/i.test(model);
}

function importProgress(p: ImportProgress): LoadProgress {
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  const text = p.phase === 'complete' ? `imported ${p.modelId}` : `${p.phase} ${p.modelId}: ${mib(p.bytesDone)} / ${mib(p.bytesTotal)} MiB`;
  return { phase: 'import', text, progress: p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 1, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal };
}
