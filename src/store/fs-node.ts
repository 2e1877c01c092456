/**
 * The Node backend: a directory per model under a root directory.
 *
 *   <root>/<modelId>/manifest.json
 *   <root>/<modelId>/records/<key>          one file per record
 *
 * Every file is written under a temporary name and renamed into place, so a
 * record or manifest is either wholly there or absent whatever interrupts the
 * process. The commit (durable manifest write) flushes the file and its
 * directory to disk. Every node:* import of the store lives in this file;
 * browser bundles never import it.
 */

import { mkdir, open, readFile, readdir, rename, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordWrite, StoreBackend } from './backend';
import type { ModelManifest } from './manifest';
import { checkModelId } from './model-id';
import { createWeightStore } from './weight-store';
import type { WeightStore } from './weight-store';

const MANIFEST_FILE = 'manifest.json';
const RECORDS_DIR = 'records';
/** Suffix of files being written; never listed as records. */
const PARTIAL_SUFFIX = '.partial';
const RECORD_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A WeightStore keeping models under `rootDir` (created when missing). */
export async function openFsWeightStore(rootDir: string): Promise<WeightStore> {
  return createWeightStore(await fsBackend(rootDir));
}

export async function fsBackend(rootDir: string): Promise<StoreBackend> {
  await mkdir(rootDir, { recursive: true });
  return new FsBackend(rootDir);
}

class FsBackend implements StoreBackend {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `filesystem:${root}`;
  }

  private modelDir(modelId: string): string {
    checkModelId(modelId);
    return join(this.root, modelId);
  }

  private recordPath(modelId: string, key: string): string {
    if (!RECORD_KEY.test(key) || key.endsWith(PARTIAL_SUFFIX)) throw new Error(`invalid record key ${JSON.stringify(key)}`);
    return join(this.modelDir(modelId), RECORDS_DIR, key);
  }

  async putRecords(modelId: string, records: readonly RecordWrite[]): Promise<void> {
    await mkdir(join(this.modelDir(modelId), RECORDS_DIR), { recursive: true });
    for (const record of records) await writeAtomically(this.recordPath(modelId, record.key), record.bytes, false);
  }

  async getRecord(modelId: string, key: string): Promise<Uint8Array | undefined> {
    try {
      const buffer = await readFile(this.recordPath(modelId, key));
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async listRecordKeys(modelId: string): Promise<string[]> {
    const names = await readdirOrEmpty(join(this.modelDir(modelId), RECORDS_DIR));
    return names.filter((n) => !n.endsWith(PARTIAL_SUFFIX));
  }

  async deleteRecords(modelId: string, keys: readonly string[]): Promise<void> {
    for (const key of keys) await rm(this.recordPath(modelId, key), { force: true });
  }

  async putManifest(manifest: ModelManifest, options: { durable: boolean }): Promise<void> {
    const dir = this.modelDir(manifest.modelId);
    await mkdir(dir, { recursive: true });
    await writeAtomically(join(dir, MANIFEST_FILE), new TextEncoder().encode(JSON.stringify(manifest)), options.durable);
  }

  async getManifest(modelId: string): Promise<ModelManifest | undefined> {
    try {
      return JSON.parse(await readFile(join(this.modelDir(modelId), MANIFEST_FILE), 'utf8')) as ModelManifest;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async listManifests(): Promise<ModelManifest[]> {
    const entries = await readdir(this.root, { withFileTypes: true });
    const ids = entries.filter((e) => e.isDirectory() && RECORD_KEY.test(e.name)).map((e) => e.name);
    const manifests = await Promise.all(ids.map((id) => this.getManifest(id)));
    return manifests.filter((m): m is ModelManifest => m !== undefined);
  }

  async deleteModel(modelId: string): Promise<void> {
    const dir = this.modelDir(modelId);
    // The manifest goes first: from then on the model is not listed even if removing the records is interrupted.
    await rm(join(dir, MANIFEST_FILE), { force: true });
    await rm(dir, { recursive: true, force: true });
  }

  async availableBytes(): Promise<number | undefined> {
    const stats = await statfs(this.root);
    return Number(stats.bavail) * Number(stats.bsize);
  }

  async requestPersistence(): Promise<boolean> {
    return true;
  }
}

/** Writes `path` under a temporary name, then renames it into place (optionally flushing both to disk). */
async function writeAtomically(path: string, bytes: Uint8Array, durable: boolean): Promise<void> {
  const partial = path + PARTIAL_SUFFIX;
  const handle = await open(partial, 'w');
  try {
    await handle.writeFile(bytes);
    if (durable) await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(partial, { force: true });
    throw error;
  }
  await handle.close();
  await rename(partial, path);
  if (durable) await syncDirectory(join(path, '..'));
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  } finally {
    await handle.close();
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}
