/**
 * Public API of the GGUF layer: read a header from bytes, a Blob or a URL,
 * access metadata with types, locate and read tensor data, write files.
 * Node file paths: import sourceFromPath from './source-node' directly.
 */

export { GgufError, NO_OFFSET } from './errors';
export type { GgufErrorCode } from './errors';
export { sourceFromBytes, sourceFromBlob, sourceFromUrl } from './source';
export type { ByteSource, UrlSourceOptions } from './source';
export { readGguf, tensorDataRange, readTensorData, DEFAULT_ALIGNMENT, ALIGNMENT_KEY, MAX_TENSOR_DIMS } from './reader';
export type { ReadGgufOptions } from './reader';
export {
  archKey, getString, getNumber, getBool, getStringArray, getNumberArray,
  optString, optNumber, optBool, optStringArray, optNumberArray, optKv, ARCHITECTURE_KEY,
} from './metadata';
export {
  writeGguf, kv, kvString, kvU32, kvI32, kvU64, kvF32, kvBool, kvArray,
  kvStringArray, kvF32Array, kvI32Array, kvU32Array,
} from './writer';
export type { GgufWriteSpec, GgufTensorSpec } from './writer';
export { readGgufSet, splitShardNames, splitBaseName, parseSplitName, SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY } from './split';
export type { GgufSet, SplitName } from './split';
export { GgufValueType } from './types';
export type { GgufValue, GgufArray, GgufKv, GgufTensorInfo, GgufFile } from './types';
