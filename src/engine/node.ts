/**
 * Opening a model in Node by what a user types: a GGUF file path, or the id
 * of a model imported into a filesystem weight store. Node only (node:*
 * imports); browser code uses Engine.load / Engine.fromStoredModel.
 */

import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '../gguf/reader';
import type { ByteSource } from '../gguf/source';
import { sourceFromPath } from '../gguf/source-node';
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
    const source = await sourceFromPath(model);
    let closing: Promise<void> | undefined;
    try {
      return { file: await readGguf(source), source, name: model, close: () => (closing ??= source.close()) };
    } catch (error) {
      await source.close();
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
