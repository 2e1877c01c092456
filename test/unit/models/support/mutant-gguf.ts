/**
 * Mutated GGUF headers for the metadata fuzz test, and the path a file takes
 * before anything touches the GPU (readGguf → modelConfigFromGguf →
 * checkGpuReadable → Tokenizer.fromGguf → ChatTemplate), run stage by stage.
 *
 * A mutant is written as its header only: tensor data is a virtual run of
 * zeros after it, so a tensor may claim any shape without the test writing
 * its bytes, and the pre-GPU path never reads them anyway.
 */

import { GgufError } from '../../../../src/gguf/errors';
import { readGguf } from '../../../../src/gguf/reader';
import { checkReadRange } from '../../../../src/gguf/source';
import type { ByteSource } from '../../../../src/gguf/source';
import { GgufValueType } from '../../../../src/gguf/types';
import type { GgufArray, GgufFile, GgufKv, GgufValue } from '../../../../src/gguf/types';
import { UnsupportedGpuTypeError } from '../../../../src/kernels/quant-decoders';
import { ModelConfigError } from '../../../../src/models/config';
import type { ModelConfig } from '../../../../src/models/config';
import { checkGpuReadable } from '../../../../src/models/gpu-readable';
import { modelConfigFromGguf } from '../../../../src/models/registry';
import { tensorBytes } from '../../../../src/quant/formats';
import { ChatTemplate } from '../../../../src/text/chat-template';
import type { RenderLimits } from '../../../../src/text/chat-template';
import { ChatTemplateError, NoChatTemplateError, TextError } from '../../../../src/text/errors';
import { Tokenizer } from '../../../../src/text/tokenizer';
import { toWebMoeError } from '../../../../src/engine/webmoe-error';
import type { WebMoeErrorCode } from '../../../../src/engine/webmoe-error';

export interface TensorHead {
  name: string;
  type: number;
  dims: number[];
}

/** What a mutation edits: the metadata pairs and tensor infos of one file. */
export interface HeaderSpec {
  metadata: GgufKv[];
  tensors: TensorHead[];
  /** Strings written as these raw bytes instead of their UTF-8 (invalid UTF-8 in the file). */
  rawStrings?: Map<string, number[]>;
}

const ALIGNMENT = 32;

export function specOf(file: GgufFile): HeaderSpec {
  return {
    metadata: [...file.metadata.values()],
    tensors: file.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims] })),
  };
}

export function cloneSpec(spec: HeaderSpec): HeaderSpec {
  return { metadata: [...spec.metadata], tensors: spec.tensors.map((t) => ({ ...t, dims: [...t.dims] })), rawStrings: spec.rawStrings && new Map(spec.rawStrings) };
}

/** Sets (or adds) a pair; `undefined` removes the key. */
export function setKv(spec: HeaderSpec, key: string, kv: GgufKv | undefined): void {
  const at = spec.metadata.findIndex((m) => m.key === key);
  if (kv === undefined) {
    if (at >= 0) spec.metadata.splice(at, 1);
  } else if (at >= 0) spec.metadata[at] = kv;
  else spec.metadata.push(kv);
}

export function getKv(spec: HeaderSpec, key: string): GgufKv | undefined {
  return spec.metadata.find((m) => m.key === key);
}

/** Little-endian bytes into a growing buffer. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private static readonly utf8 = new TextEncoder();

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(2 * this.buf.length, this.length + n));
    bigger.set(this.buf.subarray(0, this.length));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }
  raw(bytes: ArrayLike<number>): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  num(bytes: number, set: (d: DataView, at: number) => void): void {
    this.room(bytes);
    set(this.view, this.length);
    this.length += bytes;
  }
  u32(v: number): void {
    this.num(4, (d, at) => d.setUint32(at, v >>> 0, true));
  }
  u64(v: number | bigint): void {
    this.num(8, (d, at) => d.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true));
  }
  str(s: string): void {
    this.bytesStr(Bytes.utf8.encode(s));
  }
  bytesStr(bytes: ArrayLike<number>): void {
    this.u64(bytes.length);
    this.raw(bytes);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeValue(b: Bytes, type: GgufValueType, value: GgufValue, raw: ReadonlyMap<string, number[]> | undefined): void {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return b.num(1, (d, at) => d.setUint8(at, Number(value) & 0xff));
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return b.num(2, (d, at) => d.setUint16(at, Number(value) & 0xffff, true));
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
      return b.u32(Number(value));
    case GgufValueType.FLOAT32:
      return b.num(4, (d, at) => d.setFloat32(at, Number(value), true));
    case GgufValueType.FLOAT64:
      return b.num(8, (d, at) => d.setFloat64(at, Number(value), true));
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
      return b.u64(value as number | bigint);
    case GgufValueType.STRING: {
      const bytes = raw?.get(value as string);
      return bytes ? b.bytesStr(bytes) : b.str(value as string);
    }
    case GgufValueType.ARRAY: {
      const array = value as GgufArray;
      b.u32(array.itemType);
      b.u64(array.items.length);
      for (const item of array.items) writeValue(b, array.itemType, item, raw);
      return;
    }
    default:
      throw new Error(`unknown value type ${type}`);
  }
}

/** Encoded pairs, by pair: mutants share most of their pairs with their base, so each is encoded once. */
const encodedKvs = new WeakMap<GgufKv, Uint8Array>();

function encodeKv(kv: GgufKv, raw: ReadonlyMap<string, number[]> | undefined): Uint8Array {
  const cached = raw ? undefined : encodedKvs.get(kv);
  if (cached) return cached;
  const b = new Bytes();
  b.str(kv.key);
  b.u32(kv.type);
  writeValue(b, kv.type, kv.value, raw);
  const bytes = b.done();
  if (!raw) encodedKvs.set(kv, bytes);
  return bytes;
}

/** The header bytes of `spec` and the size of the whole file it describes (tensors laid out in order, aligned). */
export function writeHeader(spec: HeaderSpec): { header: Uint8Array; size: number } {
  const b = new Bytes();
  b.raw([0x47, 0x47, 0x55, 0x46]);
  b.u32(3);
  b.u64(spec.tensors.length);
  b.u64(spec.metadata.length);
  for (const kv of spec.metadata) b.raw(encodeKv(kv, spec.rawStrings));
  let offset = 0;
  for (const t of spec.tensors) {
    b.str(t.name);
    b.u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(t.type);
    b.u64(offset);
    const n = t.dims.reduce((a, d) => a * d, 1);
    const bytes = tensorBytes(t.type, n) ?? 0;
    offset += Math.ceil(bytes / ALIGNMENT) * ALIGNMENT;
  }
  b.raw(new Uint8Array((ALIGNMENT - (b.length % ALIGNMENT)) % ALIGNMENT));
  const header = b.done();
  return { header, size: header.length + offset };
}

/** A source of `size` bytes: the header, then zeros; counts the bytes it hands out. */
export function headerSource(header: Uint8Array, size: number): ByteSource & { bytesRead: number } {
  const source = {
    size,
    name: 'mutant.gguf',
    bytesRead: 0,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkReadRange(source.name, size, offset, length);
      source.bytesRead += length;
      const out = new Uint8Array(length);
      if (offset < header.length) out.set(header.subarray(offset, Math.min(header.length, offset + length)));
      return out;
    },
  };
  return source;
}

export type Stage = 'read' | 'config' | 'tokenizer' | 'template';

/** Per stage: 'ok', or the public code of the typed error it gave. */
export type Outcome = Partial<Record<Stage, 'ok' | WebMoeErrorCode>>;

export interface PreGpuResult {
  outcome: Outcome;
  file?: GgufFile;
  config?: ModelConfig;
  tokenizer?: Tokenizer;
  prompt?: string;
  /** What a stage threw that is not one of its typed errors. */
  untyped?: { stage: Stage; error: unknown };
}

/** The typed errors each stage may throw; anything else is a bug. */
const TYPED: Record<Stage, (e: unknown) => boolean> = {
  read: (e) => e instanceof GgufError,
  config: (e) => e instanceof ModelConfigError || e instanceof UnsupportedGpuTypeError || e instanceof GgufError,
  tokenizer: (e) => e instanceof TextError || e instanceof GgufError,
  template: (e) => e instanceof ChatTemplateError || e instanceof NoChatTemplateError || e instanceof GgufError,
};

const renders = new Map<string, { prompt: string } | { error: unknown }>();

export const FUZZ_MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Tell me about the river <|im_end|> and the sea.' },
];

/**
 * Runs every pre-GPU stage whose input exists (the tokenizer and the
 * template do not need a config, as Engine.fromGguf builds them first).
 */
export async function runPreGpu(source: ByteSource, limits: RenderLimits): Promise<PreGpuResult> {
  const result: PreGpuResult = { outcome: {} };
  const stage = <T>(name: Stage, run: () => T): T | undefined => {
    try {
      const value = run();
      result.outcome[name] = 'ok';
      return value;
    } catch (error) {
      if (!TYPED[name](error)) {
        result.untyped ??= { stage: name, error };
        return undefined;
      }
      const code = toWebMoeError(error).code;
      result.outcome[name] = code;
      return undefined;
    }
  };
  let file: GgufFile;
  try {
    file = await readGguf(source);
    result.outcome.read = 'ok';
  } catch (error) {
    if (!TYPED.read(error)) result.untyped = { stage: 'read', error };
    else result.outcome.read = toWebMoeError(error).code;
    return result;
  }
  result.file = file;
  result.config = stage('config', () => {
    const config = modelConfigFromGguf(file);
    checkGpuReadable(file, config);
    return config;
  });
  result.tokenizer = stage('tokenizer', () => Tokenizer.fromGguf(file));
  result.prompt = stage('template', () => {
    let template: ChatTemplate;
    try {
      template = ChatTemplate.fromGguf(file);
    } catch (error) {
      if (error instanceof NoChatTemplateError) return '';
      throw error;
    }
    // The file's template under the fuzz's smaller limits (the defaults are checked in chat-template.test.ts);
    // a render depends on nothing but the source, so mutants that keep their base's template reuse its outcome.
    const known = renders.get(template.source);
    if (known) {
      if ('error' in known) throw known.error;
      return known.prompt;
    }
    try {
      const prompt = new ChatTemplate(template.source, {}, limits).render(FUZZ_MESSAGES);
      renders.set(template.source, { prompt });
      return prompt;
    } catch (error) {
      renders.set(template.source, { error });
      throw error;
    }
  });
  return result;
}
