/**
 * Opening a model in Node by what a user types: a GGUF file path (of one
 * shard, for a split set), or the id of a model imported into a filesystem
 * weight store. Node only (node:*
 * imports); browser code uses Engine.load / Engine.fromStoredModel.
 */

import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ByteSource } from '../gguf/source';
import { sourceFromPath } from '../gguf/source-node';
import type { FileSource } from '../gguf/source-node';
import { readGgufSet, splitShardNames } from '../gguf/split';
import type { GgufFile } from '../gguf/types';
import { openFsWeightStore } from '../store/fs-node';
import { EngineError } from './errors';
import { storedModelAsGguf } from './stored-model';

export interface OpenedModel {
  file: GgufFile;
  source: ByteSource;
  /** The path or 'store:<id>'. */
  name: string;
  /** Releases the file handle (idempotent); the tokenizer and a loaded model do not need it any more. */
  close(): Promise<void>;
}

/** $WEBMOE_STORE, else $XDG_CACHE_HOME/webmoe/store, else ~/.cache/webmoe/store. */
export function defaultStoreDir(): string {
  if (process.env.WEBMOE_STORE) return process.env.WEBMOE_STORE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'webmoe', 'store');
}

/**
 * `model` as a GGUF file when such a file exists, else as a model id in the
 * filesystem store at `storeDir`; EngineError BAD_REQUEST when it is neither.
 */
export async function openModel(model: string, storeDir = defaultStoreDir()): Promise<OpenedModel> {
  if (existsSync(model) && statSync(model).isFile()) {
    // A shard of a split set brings the siblings its name implies (a missing one is named by readGgufSet).
    const paths = (splitShardNames(model) ?? [model]).filter((p) => p === model || existsSync(p));
    const sources: FileSource[] = [];
    const closeAll = () => Promise.all(sources.map((s) => s.close())).then(() => undefined);
    let closing: Promise<void> | undefined;
    try {
      for (const path of paths) sources.push(await sourceFromPath(path));
      const { file, source } = await readGgufSet(sources);
      return { file, source, name: model, close: () => (closing ??= closeAll()) };
    } catch (error) {
      await closeAll();
      throw error;
    }
  }
  const store = existsSync(storeDir) ? await openFsWeightStore(storeDir) : undefined;
  const ids = store ? (await store.listModels()).map((m) => m.modelId) : [];
  if (!store || !ids.includes(model)) {
    const known = ids.length > 0 ? `; stored models: ${ids.join(', ')}` : '';
    throw new EngineError('BAD_REQUEST', `no file '${model}' and no model '${model}' in the store at ${storeDir}${known}`);
  }
  const { file, source } = await storedModelAsGguf(await store.openModel(model));
  return { file, source, name: `store:${model}`, close: async () => {} };
}
