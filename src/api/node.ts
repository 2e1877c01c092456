/**
 * createEngine for Node: the same API as in browsers, without a worker, on
 * Dawn (the `webgpu` package) with the filesystem model store. A model
 * string may also be a path to a GGUF file, loaded from there directly.
 */
import { existsSync, statSync } from 'node:fs';
import { sourceFromPath } from '../gguf/source-node';
import { requestGpuDevice, USEFUL_FEATURES } from '../gpu/device';
import { nodeGpu } from '../gpu/node';
import { defaultStoreDir } from '../engine/node';
import { openFsWeightStore } from '../store/fs-node';
import { EngineService } from '../engine/service';
import type { Platform } from '../engine/service';
import { toWebMoeError } from '../engine/webmoe-error';
import { createClient, createStoreClient } from './openai';
import type { CreateEngineOptions, ModelStoreOptions, WebMoeEngine, WebMoeModelStore } from './types';
import { serviceLoadOptions } from './worker-client';

export const nodePlatform: Platform = {
  requestGpu: async () => requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'webmoe' }),
  openStore: (options) => openFsWeightStore(options.storeDir ?? defaultStoreDir()),
  openPath: async (model) => (existsSync(model) && statSync(model).isFile() ? sourceFromPath(model) : undefined),
};

/**
 * Loads a model and returns the engine serving it, in this thread. `model`
 * is a GGUF path, a stored id (in `storeDir`), a URL, a Blob or bytes (the
 * last three imported into the store first); a split set is the path or URL
 * of its first shard (the others are found by name) or a list of its shards.
 */
export async function createEngine(options: CreateEngineOptions): Promise<WebMoeEngine> {
  const core = new EngineService(nodePlatform);
  try {
    const loaded = await core.load(options.model, serviceLoadOptions(options), options.onProgress, options.onDeviceLost);
    return createClient(core, loaded.model);
  } catch (error) {
    throw toWebMoeError(error);
  }
}

/**
 * The filesystem model store alone, with no model loaded and no GPU device
 * opened: list, import (a path, URL, Blob or bytes; an interrupted import
 * resumes) and delete models.
 */
export async function openModelStore(options: ModelStoreOptions = {}): Promise<WebMoeModelStore> {
  const core = new EngineService(nodePlatform);
  await core.useStore({ storeDir: options.storeDir });
  return createStoreClient(core);
}
