/**
 * The weight store as callers see it: import models, list them with their
 * sizes, delete them, and open a fully imported one to read its experts and
 * shared tensors. One implementation over any StoreBackend (IndexedDB in
 * browsers, a directory in Node).
 *
 * A model is offered as usable only when its manifest says 'complete';
 * reads check each record's size always and its hash on request, and a
 * bad record is a CORRUPT_RECORD error naming model, layer and expert.
 */

import type { ByteSource } from '../gguf/source';
import type { GgufKv } from '../gguf/types';
import type { StoreBackend } from './backend';
import { StoreError, corruptRecordError, storageCall } from './errors';
import { RECORD_HASH_ALGORITHM, recordHash } from './hash';
import { importModel } from './import';
import type { ImportOptions, ImportResult } from './import';
import { MANIFEST_FORMAT_VERSION, decodeMetadata, manifestRecords } from './manifest';
import type { ExpertLayer, ImportState, ModelManifest, RecordEntry, TensorEntry } from './manifest';
import { checkModelId } from './model-id';

export interface ModelSummary {
  modelId: string;
  /** `general.name`, when the file has one. */
  name?: string;
  architecture: string;
  state: ImportState;
  /** What the whole model takes once imported. */
  storedBytes: number;
  /** What its records take now (less than storedBytes while an import is unfinished). */
  presentBytes: number;
  completedAt?: string;
}

export interface ReadOptions {
  /** Check the record's hash (xxHash32, ~3 ms per 5 MB). Default false; sizes are always checked. */
  verify?: boolean;
}

export interface WeightStore {
  readonly backend: StoreBackend;
  /** Imports (or resumes importing) a GGUF file; see ImportOptions. */
  importModel(source: ByteSource | readonly ByteSource[], options?: ImportOptions): Promise<ImportResult>;
  /** Every model in the store, usable or not, with its sizes. */
  listModels(): Promise<ModelSummary[]>;
  /** The manifest of a model in any state, or undefined. */
  getManifest(modelId: string): Promise<ModelManifest | undefined>;
  /** A usable model; MODEL_NOT_FOUND or MODEL_NOT_READY otherwise. */
  openModel(modelId: string): Promise<StoredModel>;
  /** Deletes a model and all its records; false when there was none. */
  deleteModel(modelId: string): Promise<boolean>;
  /** Bytes all models' records take now. */
  totalBytes(): Promise<number>;
}

export function createWeightStore(backend: StoreBackend): WeightStore {
  return new BackendWeightStore(backend);
}

class BackendWeightStore implements WeightStore {
  constructor(readonly backend: StoreBackend) {}

  importModel(source: ByteSource | readonly ByteSource[], options?: ImportOptions): Promise<ImportResult> {
    return importModel(this.backend, source, options);
  }

  async listModels(): Promise<ModelSummary[]> {
    const manifests = await storageCall('*', 'listing models', () => this.backend.listManifests());
    const summaries = await Promise.all(manifests.map(async (m): Promise<ModelSummary> => ({
      modelId: m.modelId,
      name: m.name,
      architecture: m.architecture,
      state: m.state,
      storedBytes: m.storedBytes,
      presentBytes: m.state === 'complete' ? m.storedBytes : await this.presentBytes(m),
      completedAt: m.completedAt,
    })));
    return summaries.sort((a, b) => (a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : 0));
  }

  private async presentBytes(manifest: ModelManifest): Promise<number> {
    const present = new Set(await storageCall(manifest.modelId, 'listing records', () => this.backend.listRecordKeys(manifest.modelId)));
    return manifestRecords(manifest).reduce((sum, r) => sum + (present.has(r.key) ? r.bytes : 0), 0);
  }

  async getManifest(modelId: string): Promise<ModelManifest | undefined> {
    checkModelId(modelId);
    return storageCall(modelId, 'reading the manifest', () => this.backend.getManifest(modelId));
  }

  async openModel(modelId: string): Promise<StoredModel> {
    const manifest = await this.getManifest(modelId);
    if (manifest === undefined) throw new StoreError('MODEL_NOT_FOUND', `no model ${modelId} in ${this.backend.description}`, { modelId });
    if (manifest.formatVersion !== MANIFEST_FORMAT_VERSION || manifest.recordHash !== RECORD_HASH_ALGORITHM) {
      throw new StoreError('MODEL_NOT_READY', `${modelId} was stored by an incompatible version of this library; delete it and import it again`, { modelId });
    }
    if (manifest.state !== 'complete') {
      throw new StoreError('MODEL_NOT_READY', `${modelId} is not fully imported yet; import the same file again to resume`, { modelId });
    }
    return new StoredModel(this.backend, manifest);
  }

  async deleteModel(modelId: string): Promise<boolean> {
    const manifest = await this.getManifest(modelId);
    await storageCall(modelId, 'deleting the model', () => this.backend.deleteModel(modelId));
    return manifest !== undefined;
  }

  async totalBytes(): Promise<number> {
    return (await this.listModels()).reduce((sum, m) => sum + m.presentBytes, 0);
  }
}

/** A fully imported model: reads of its records. */
export class StoredModel {
  readonly modelId: string;
  private readonly layers: ReadonlyMap<number, ExpertLayer>;
  private readonly tensorsByName: ReadonlyMap<string, TensorEntry>;

  constructor(private readonly backend: StoreBackend, readonly manifest: ModelManifest) {
    this.modelId = manifest.modelId;
    this.layers = new Map(manifest.expertLayers.map((l) => [l.layer, l]));
    this.tensorsByName = new Map(manifest.tensors.map((t) => [t.name, t]));
  }

  /** Layers that have expert records, with the slice layout of their records. */
  get expertLayers(): readonly ExpertLayer[] {
    return this.manifest.expertLayers;
  }

  /** Expert `expert` of layer `layer`: its gate, up and down slices (see expertLayer(layer).parts), in one read. */
  async readExpert(layer: number, expert: number, options: ReadOptions = {}): Promise<Uint8Array> {
    const entry = this.expertLayer(layer).records[expert];
    if (entry === undefined || !Number.isInteger(expert)) {
      throw new StoreError('NOT_IN_MODEL', `${this.modelId} has experts 0..${this.manifest.expertCount - 1}, not ${expert}`, { modelId: this.modelId, layer, expert });
    }
    return this.readRecord(entry, options);
  }

  expertLayer(layer: number): ExpertLayer {
    const found = this.layers.get(layer);
    if (found === undefined) {
      throw new StoreError('NOT_IN_MODEL', `${this.modelId} has no experts in layer ${layer}`, { modelId: this.modelId, layer });
    }
    return found;
  }

  tensor(name: string): TensorEntry {
    const found = this.tensorsByName.get(name);
    if (found === undefined) throw new StoreError('NOT_IN_MODEL', `${this.modelId} has no tensor ${name}`, { modelId: this.modelId });
    return found;
  }

  /** One tensor's bytes exactly as in the GGUF file (an expert tensor is gathered from all its experts' records). */
  async readTensor(name: string, options: ReadOptions = {}): Promise<Uint8Array> {
    return (await this.readTensors([name], options)).get(name)!;
  }

  /** Several tensors; each shared chunk is read once however many of them it holds. */
  async readTensors(names: readonly string[], options: ReadOptions = {}): Promise<Map<string, Uint8Array>> {
    const entries = names.map((n) => this.tensor(n));
    const out = new Map<string, Uint8Array>(entries.map((t) => [t.name, new Uint8Array(t.nBytes)]));
    const { chunkBytes, chunks } = this.manifest.shared;
    const shared = entries.filter((t) => t.location.kind === 'shared');
    const chunkIndices = new Set(shared.flatMap((t) => chunkSpan(t, chunkBytes)));
    for (const index of [...chunkIndices].sort((a, b) => a - b)) {
      const chunk = await this.readRecord(chunks[index], options);
      const chunkStart = index * chunkBytes;
      for (const t of shared) copyOverlap(chunk, chunkStart, t, out.get(t.name)!);
    }
    for (const t of entries) {
      if (t.location.kind !== 'expert') continue;
      const layer = this.expertLayer(t.location.layer);
      const part = layer.parts[t.location.part];
      for (let e = 0; e < this.manifest.expertCount; e++) {
        const record = await this.readRecord(layer.records[e], options);
        out.get(t.name)!.set(record.subarray(part.recordOffset, part.recordOffset + part.bytes), e * part.bytes);
      }
    }
    return out;
  }

  /** All GGUF metadata (hyper-parameters, tokenizer arrays, chat template), in file order. */
  async readMetadata(options: ReadOptions = {}): Promise<Map<string, GgufKv>> {
    return decodeMetadata(await this.readRecord(this.manifest.metadata, options));
  }

  /** Reads and hashes every record; returns one CORRUPT_RECORD error per bad record (empty when all are sound). */
  async verify(onRecord?: (done: number, total: number) => void): Promise<StoreError[]> {
    const records = manifestRecords(this.manifest);
    const problems: StoreError[] = [];
    for (const [i, record] of records.entries()) {
      try {
        await this.readRecord(record, { verify: true });
      } catch (error) {
        if (!(error instanceof StoreError) || error.code !== 'CORRUPT_RECORD') throw error;
        problems.push(error);
      }
      onRecord?.(i + 1, records.length);
    }
    return problems;
  }

  /**
   * Why a record is absent: the model was deleted (or replaced by another
   * file) since it was opened, typically by another tab or worker, which is
   * MODEL_NOT_FOUND; else the store lost it, which is CORRUPT_RECORD.
   */
  private async missingRecordError(key: string): Promise<StoreError> {
    const now = await this.backend.getManifest(this.modelId).catch(() => this.manifest);
    if (now === undefined || now.state !== 'complete' || now.source.fingerprint !== this.manifest.source.fingerprint) {
      const what = now === undefined ? 'was deleted' : 'was replaced by another import';
      return new StoreError('MODEL_NOT_FOUND',
        `${this.modelId} ${what} while in use (record ${key} is gone); import it again and reload it`, { modelId: this.modelId, recordKey: key });
    }
    return corruptRecordError(this.modelId, key, 'the record is missing');
  }

  private async readRecord(entry: RecordEntry, options: ReadOptions): Promise<Uint8Array> {
    const bytes = await storageCall(this.modelId, `reading ${entry.key}`, () => this.backend.getRecord(this.modelId, entry.key));
    if (bytes === undefined) throw await this.missingRecordError(entry.key);
    if (bytes.byteLength !== entry.bytes) {
      throw corruptRecordError(this.modelId, entry.key, `the record has ${bytes.byteLength} bytes, expected ${entry.bytes}`);
    }
    if (options.verify && recordHash(bytes) !== entry.hash) {
      throw corruptRecordError(this.modelId, entry.key, 'the record does not match its hash');
    }
    return bytes;
  }
}

/** Indices of the shared chunks a tensor's bytes fall in. */
function chunkSpan(t: TensorEntry, chunkBytes: number): number[] {
  if (t.location.kind !== 'shared' || t.nBytes === 0) return [];
  const first = Math.floor(t.location.streamOffset / chunkBytes);
  const last = Math.floor((t.location.streamOffset + t.nBytes - 1) / chunkBytes);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** Copies the part of tensor `t` that lies in the chunk starting at stream offset `chunkStart`. */
function copyOverlap(chunk: Uint8Array, chunkStart: number, t: TensorEntry, out: Uint8Array): void {
  if (t.location.kind !== 'shared') return;
  const from = Math.max(chunkStart, t.location.streamOffset);
  const to = Math.min(chunkStart + chunk.byteLength, t.location.streamOffset + t.nBytes);
  if (to <= from) return;
  out.set(chunk.subarray(from - chunkStart, to - chunkStart), from - t.location.streamOffset);
}
