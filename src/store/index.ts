/**
 * Public API of the weight store: GGUF models imported into expert-granular
 * records (IndexedDB in browsers; a directory in Node through
 * `openFsWeightStore` from './fs-node', imported directly so that browser
 * bundles never pull in node:* modules).
 */

export { createWeightStore, StoredModel } from './weight-store';
export type { WeightStore, ModelSummary, ReadOptions } from './weight-store';
export { importModel } from './import';
export type { ImportOptions, ImportProgress, ImportResult } from './import';
export { openIndexedDbWeightStore, indexedDbBackend, deleteIndexedDbDatabase, DEFAULT_DATABASE_NAME } from './idb';
export type { IndexedDbOptions } from './idb';
export type { StoreBackend, RecordWrite } from './backend';
export { StoreError } from './errors';
export type { StoreErrorCode } from './errors';
export { checkModelId, modelIdFromName } from './model-id';
export { decodeMetadata, manifestRecords, manifestScalar, expertKey, sharedChunkKey, METADATA_KEY } from './manifest';
export type {
  ModelManifest, RecordEntry, TensorEntry, TensorLocation, ExpertLayer, ExpertPart, ImportState, StoredKv, StoredValue,
} from './manifest';
export { recordHash, xxh32, sha256Hex, RECORD_HASH_ALGORITHM } from './hash';
