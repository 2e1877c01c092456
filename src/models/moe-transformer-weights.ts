/**
 * The weights of a MoE transformer on the GPU, read from a GGUF file:
 *
 * - every non-expert matrix in its own buffer, in its stored block format
 *   (the kernels dequantize as they read), within one storage binding (a
 *   TensorBindingError names a tensor past it); 1-D tensors (norms, biases)
 *   as f32, biases repeated once per token of the largest batch so that one
 *   elementwise add covers a whole batch;
 * - the token embedding and output matrices (150k-200k rows in real models,
 *   often past one binding) split by rows into pieces of whole rows, each
 *   its own buffer within one binding, read with one dispatch per piece; one
 *   piece, and so one dispatch, when the matrix fits;
 * - each layer's shared expert, or its dense FFN, as one expert in a slot of
 *   a slab pool (src/experts/slab-pool.ts), one pool per slot layout, read
 *   by the expert FFN kernel like a routed expert with weight 1 (or its gate).
 *
 * The routed experts belong to the expert scheduler (src/experts/scheduler.ts):
 * here are only their slot layouts and the source that reads them from the
 * file.
 */

import { readTensorData, tensorDataRange } from '../gguf/reader';
import type { ByteSource } from '../gguf/source';
import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import { createStorageBuffer } from '../gpu/buffers';
import { ggufExpertSource } from '../experts/expert-source';
import type { ExpertSource, ExpertTensorNames } from '../experts/expert-source';
import { SlabPool } from '../experts/slab-pool';
import { expertSlotLayout, layoutKey, packExpertSlot, slotsPerSlab } from '../kernels/expert-slots';
import { quantDecoder, rowBytes } from '../kernels/quant-decoders';
import type { ExpertSlotLayout, ExpertSlotRef } from '../kernels/expert-slots';
import { dequantize } from '../quant/dequant';
import { GgmlType, ggmlTypeName } from '../quant/formats';
import type { ModelConfig } from './config';
import { ModelConfigError } from './config';
import { uploadStandardAttention } from './moe-transformer-attention';
import type { GpuStandardAttention } from './moe-transformer-attention';
import { uploadLatentAttention } from './moe-transformer-latent';
import type { GpuLatentAttention } from './moe-transformer-latent';

/** A matrix [rows][cols] as GGUF stores it, in its block format. */
export interface GpuMatrix {
  buffer: GPUBuffer;
  type: GgmlType;
  rows: number;
  cols: number;
}

/** Rows [firstRow, firstRow + rows) of a row-split matrix, in their own buffer. */
export interface MatrixPiece {
  buffer: GPUBuffer;
  firstRow: number;
  rows: number;
}

/** A matrix [rows][cols] in its block format, split by rows into pieces that each fit one binding (one piece when it fits). */
export interface RowSplitMatrix {
  type: GgmlType;
  rows: number;
  cols: number;
  /** In row order, covering every row. */
  pieces: MatrixPiece[];
}

/** A weight tensor larger than one binding may be, where it cannot be split. */
export class TensorBindingError extends ModelConfigError {
  override name = 'TensorBindingError';
  constructor(
    readonly tensor: string,
    readonly bytes: number,
    readonly limitBytes: number,
    why = 'and is not split across buffers',
  ) {
    super('BAD_CONFIG', `tensor ${tensor} needs a buffer of ${bytes} bytes, more than the ${limitBytes} bytes one GPU storage binding may hold, ${why}`);
  }
}

/** One expert in a slab slot: the slabs its FFN binds and its ref into them. */
export interface SingleExpert {
  layout: ExpertSlotLayout;
  slabs: GPUBuffer[];
  ref: ExpertSlotRef;
}

export interface GpuLayerWeights {
  attnNorm: GPUBuffer; // f32 (hidden)
  /** The attention variant's own weights (moe-transformer-attention.ts, moe-transformer-latent.ts). */
  attention: GpuStandardAttention | GpuLatentAttention;
  ffnNorm: GPUBuffer; // f32 (hidden)
  /** Router (MoE layers only): (nExpert, hidden). */
  router?: GpuMatrix;
  /** Router logit bias (nExpert), f32 (gpt-oss). */
  routerBias?: GPUBuffer;
  /** Bias (nExpert) on the scores that choose experts, not on their weights (DeepSeek's exp_probs_b), f32. */
  selectionBias?: GPUBuffer;
  /** Shared-expert gate vector (hidden), f32. */
  sharedGate?: GPUBuffer;
  /** The shared expert (beside routed ones) or the dense FFN of a dense layer, as one expert. */
  single?: SingleExpert;
}

export interface GpuModelWeights {
  tokenEmbd: RowSplitMatrix; // (vocab, hidden)
  outputNorm: GPUBuffer; // f32 (hidden)
  output: RowSplitMatrix; // (vocab, hidden); the same pieces as tokenEmbd when tied
  ropeFreqs?: GPUBuffer; // f32 (headDim / 2)
  layers: GpuLayerWeights[];
  /** Every buffer made here, to destroy. */
  buffers: GPUBuffer[];
}

/** How the attention variants read their tensors: matrices in their block format, vectors as f32. */
export interface WeightReader {
  /** Tokens of the largest batch (biases are repeated this often). */
  maxBatchTokens: number;
  matrix(name: string): Promise<GpuMatrix>;
  /** A 1-D tensor as f32, repeated `repeat` times, times `scale`. */
  vector(name: string, repeat?: number, scale?: number): Promise<GPUBuffer>;
  optVector(name: string | undefined, repeat?: number, scale?: number): Promise<GPUBuffer | undefined>;
  /** A tensor's data as stored (for splitting per head). */
  bytes(name: string): Promise<{ bytes: Uint8Array; type: GgmlType; dims: readonly number[] }>;
  /** Uploads bytes as a matrix of `type` [rows, cols]. */
  upload(bytes: Uint8Array, type: GgmlType, rows: number, cols: number, label: string): GpuMatrix;
}

export interface WeightUploadOptions {
  /** Tokens of the largest batch (biases are repeated this often). */
  maxBatchTokens: number;
  /** Largest slab. */
  slabLimitBytes: number;
  /** Largest buffer one shared weight tensor (or one piece of a split one) may take: one binding. */
  bindingLimitBytes: number;
}

/** Reads every non-routed tensor of the config's table from `source` and uploads it. */
export async function uploadWeights(
  device: GPUDevice,
  file: GgufFile,
  source: ByteSource,
  config: ModelConfig,
  options: WeightUploadOptions,
): Promise<GpuModelWeights> {
  const info = tensorInfos(file);
  const buffers: GPUBuffer[] = [];
  const keep = (buffer: GPUBuffer): GPUBuffer => (buffers.push(buffer), buffer);
  const limit = options.bindingLimitBytes;
  // One binding per buffer: a tensor that does not fit fails here, naming itself, rather than at bind time.
  const store = (data: ArrayBufferView, label: string): GPUBuffer => {
    if (data.byteLength > limit) throw new TensorBindingError(label, data.byteLength, limit);
    return keep(createStorageBuffer(device, data, label));
  };
  const cachedMatrices = new Map<string, GpuMatrix>();
  const cachedSplits = new Map<string, RowSplitMatrix>();

  const matrix = async (name: string): Promise<GpuMatrix> => {
    const cached = cachedMatrices.get(name);
    if (cached) return cached;
    const t = info(name);
    const bytes = await readTensorData(source, file, t);
    const m = { buffer: store(bytes, name), type: t.type as GgmlType, cols: t.dims[0], rows: t.nElements / t.dims[0] };
    cachedMatrices.set(name, m);
    return m;
  };
  // Pieces of at most `limit` bytes, as even as whole rows allow, each read from the file on its own.
  const splitMatrix = async (name: string): Promise<RowSplitMatrix> => {
    const cached = cachedSplits.get(name);
    if (cached) return cached;
    const t = info(name);
    const type = t.type as GgmlType;
    const cols = t.dims[0];
    const rows = t.nElements / cols;
    const rowSize = rowBytes(quantDecoder(type, name), cols);
    const maxRows = Math.floor(Math.floor(limit / 4) * 4 / rowSize);
    if (maxRows < 1) throw new TensorBindingError(name, rows * rowSize, limit, `and even one of its ${rowSize}-byte rows does not fit`);
    const count = Math.ceil(rows / maxRows);
    const perPiece = Math.ceil(rows / count);
    const { offset } = tensorDataRange(file, t);
    const pieces: MatrixPiece[] = [];
    for (let firstRow = 0; firstRow < rows; firstRow += perPiece) {
      const n = Math.min(perPiece, rows - firstRow);
      const bytes = await source.read(offset + firstRow * rowSize, n * rowSize);
      pieces.push({ buffer: store(bytes, count === 1 ? name : `${name} rows ${firstRow}..${firstRow + n - 1}`), firstRow, rows: n });
    }
    const m = { type, rows, cols, pieces };
    cachedSplits.set(name, m);
    return m;
  };
  const vector = async (name: string, repeat = 1, scale = 1): Promise<GPUBuffer> => {
    const values = await readF32(source, file, info(name));
    if (scale !== 1) for (let i = 0; i < values.length; i++) values[i] = Math.fround(values[i] * scale);
    const tiled = new Float32Array(values.length * repeat);
    for (let r = 0; r < repeat; r++) tiled.set(values, r * values.length);
    return store(tiled, name);
  };
  const optVector = async (name: string | undefined, repeat = 1, scale = 1): Promise<GPUBuffer | undefined> =>
    name === undefined ? undefined : vector(name, repeat, scale);

  const reader: WeightReader = {
    maxBatchTokens: options.maxBatchTokens,
    matrix,
    vector,
    optVector,
    bytes: async (name) => {
      const t = info(name);
      return { bytes: await readTensorData(source, file, t), type: t.type as GgmlType, dims: t.dims };
    },
    upload: (bytes, type, rows, cols, label) => ({ buffer: store(bytes, label), type, rows, cols }),
  };
  const t = config.tensors;
  const layers: GpuLayerWeights[] = [];
  for (const l of t.layers) {
    const a = l.attention;
    layers.push({
      attnNorm: await vector(l.attnNorm),
      attention: a.kind === 'latent' ? await uploadLatentAttention(reader, a, config) : await uploadStandardAttention(reader, a, config),
      ffnNorm: await vector(l.ffnNorm),
      router: l.ffn.kind === 'moe' ? await matrix(l.ffn.router) : undefined,
      routerBias: l.ffn.kind === 'moe' ? await optVector(l.ffn.routerBias) : undefined,
      selectionBias: l.ffn.kind === 'moe' ? await optVector(l.ffn.selectionBias) : undefined,
      sharedGate: l.ffn.kind === 'moe' ? await optVector(l.ffn.shared?.gateInp) : undefined,
    });
  }
  await placeSingleExperts(device, file, source, config, layers, options.slabLimitBytes, keep);

  const tokenEmbd = await splitMatrix(t.tokenEmbd);
  return {
    tokenEmbd,
    outputNorm: await vector(t.outputNorm),
    output: await splitMatrix(t.output),
    ropeFreqs: await optVector(t.ropeFreqs),
    layers,
    buffers,
  };
}

/** Each layer's shared expert or dense FFN into a slot of its layout's pool. */
async function placeSingleExperts(
  device: GPUDevice,
  file: GgufFile,
  source: ByteSource,
  config: ModelConfig,
  layers: GpuLayerWeights[],
  slabLimitBytes: number,
  keep: (b: GPUBuffer) => GPUBuffer,
): Promise<void> {
  const info = tensorInfos(file);
  const singles = config.tensors.layers.map((l) => (l.ffn.kind === 'dense' ? l.ffn : l.ffn.shared));
  const layouts = singles.map((f) => f && slotLayout(config.hidden, info(f.gate).nElements / config.hidden, info(f.gate), info(f.up), info(f.down)));
  const byKey = new Map<string, number[]>();
  layouts.forEach((layout, l) => {
    if (layout) byKey.set(layoutKey(layout), [...(byKey.get(layoutKey(layout)) ?? []), l]);
  });
  for (const members of byKey.values()) {
    const layout = layouts[members[0]]!;
    checkSlotFits(layout, slabLimitBytes);
    const pool = new SlabPool(device, layout, members.length, slabLimitBytes, 'single expert slab');
    pool.slabs.forEach(keep);
    for (const [i, l] of members.entries()) {
      const f = singles[l]!;
      const place = pool.places[i];
      const read = (name: string) => readTensorData(source, file, info(name));
      const tensors = { gate: await read(f.gate), up: await read(f.up), down: await read(f.down) };
      device.queue.writeBuffer(pool.slabs[place.slab], place.offsetBytes, packExpertSlot(layout, tensors));
      layers[l].single = { layout, slabs: [pool.slabs[place.slab]], ref: { slab: 0, offsetBytes: place.offsetBytes } };
    }
  }
}

/** A ModelConfigError when one expert slot is larger than a slab may be. */
export function checkSlotFits(layout: ExpertSlotLayout, slabLimitBytes: number): void {
  if (slotsPerSlab(layout, slabLimitBytes) < 1) {
    throw new ModelConfigError('BAD_CONFIG', `an expert slot of ${layout.slotBytes} bytes exceeds the ${slabLimitBytes}-byte slab limit`);
  }
}

/** A 1-D tensor as f32, dequantized when stored otherwise. */
async function readF32(source: ByteSource, file: GgufFile, t: GgufTensorInfo): Promise<Float32Array> {
  const bytes = await readTensorData(source, file, t);
  return dequantize(t.type as GgmlType, bytes, t.nElements);
}

function tensorInfos(file: GgufFile): (name: string) => GgufTensorInfo {
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  return (name) => {
    const t = infos.get(name);
    if (!t) throw new ModelConfigError('MISSING_TENSOR', `tensor ${name} is missing`);
    return t;
  };
}

function slotLayout(hidden: number, ffn: number, gate: GgufTensorInfo, up: GgufTensorInfo, down: GgufTensorInfo, hasBiases = false): ExpertSlotLayout {
  if (gate.type !== up.type) {
    throw new ModelConfigError(
      'BAD_CONFIG',
      `${gate.name} (${ggmlTypeName(gate.type)}) and ${up.name} (${ggmlTypeName(up.type)}) must share a block format`,
    );
  }
  return expertSlotLayout({ hidden, ffn, gateUpType: gate.type as GgmlType, downType: down.type as GgmlType, hasBiases });
}

/** The slot layout of each layer's routed experts (undefined for a dense layer), read from the tensor table only. */
export function routedExpertLayouts(file: GgufFile, config: ModelConfig): (ExpertSlotLayout | undefined)[] {
  const info = tensorInfos(file);
  return config.tensors.layers.map((l) =>
    l.ffn.kind === 'moe'
      ? slotLayout(config.hidden, config.expertFF, info(l.ffn.gateExps), info(l.ffn.upExps), info(l.ffn.downExps), l.ffn.expertBiases !== undefined)
      : undefined,
  );
}

/** The routed experts of every MoE layer as the file holds them (with their biases). */
export function fileExpertSource(file: GgufFile, source: ByteSource, config: ModelConfig): ExpertSource {
  const names = new Map<number, ExpertTensorNames>();
  config.tensors.layers.forEach((l, i) => {
    if (l.ffn.kind === 'moe') names.set(i, { gate: l.ffn.gateExps, up: l.ffn.upExps, down: l.ffn.downExps, biases: l.ffn.expertBiases });
  });
  return ggufExpertSource(file, source, names, config.nExpert);
}
