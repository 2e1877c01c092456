/**
 * Token embedding lookup (shaders/embedding.wgsl): rows of token_embd
 * [vocab][hidden], in any weight format the GPU decoders read, gathered by
 * token id to f32 [tokens][hidden], times an optional scale (granite's
 * embedding multiplier). Ids past the vocabulary give rows of zeros.
 *
 * A table too large for one binding is split by rows across buffers: one
 * lookup per piece (`firstRow`, `rows`), each writing the tokens whose ids
 * fall in its rows and leaving the others' outputs as they are.
 */

import { bindingSizeBytes, checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import type { GgmlType } from '../quant/formats';
import { checkInteger, checkU32Index, checkWorkgroupSize, encodeDispatch } from './kernel-support';
import { checkWeightPlacement, decoderDefines, quantDecoder, rowBytes } from './quant-decoders';
import type { QuantDecoder } from './quant-decoders';

export interface EmbeddingShape {
  tokens: number;
  /** The whole vocabulary: ids past it give rows of zeros. */
  vocab: number;
  /** The first vocabulary row the table binding holds; default 0. */
  firstRow?: number;
  /** Rows the table binding holds (from firstRow); default vocab - firstRow. */
  rows?: number;
  /** Row length: a whole number of the format's blocks. */
  hidden: number;
  /** Byte offset of row 0 in the table binding (any alignment); default 0. */
  tableOffsetBytes?: number;
  /** Multiplies every output; default 1. */
  scale?: number;
}

export interface EmbeddingBuffers {
  /** The table's raw bytes. */
  table: BufferRef;
  /** u32 [tokens]. */
  ids: BufferRef;
  /** f32 [tokens][hidden], written. */
  out: BufferRef;
}

export interface EmbeddingOptions {
  /** Threads per workgroup (default 64), one per 8 outputs. */
  workgroupSize?: number;
}

const DEFAULT_WORKGROUP_SIZE = 64;

export class EmbeddingKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    private readonly decoder: QuantDecoder,
    private readonly workgroupSize: number,
  ) {}

  /** Builds (or takes from the device's cache) the pipeline for tables of `type`; throws UnsupportedGpuTypeError without a decoder. */
  static async create(device: GPUDevice, type: GgmlType, options: EmbeddingOptions = {}): Promise<EmbeddingKernel> {
    const decoder = quantDecoder(type, 'embedding');
    const workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    checkWorkgroupSize(workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup, 'embedding');
    const key = { op: 'embedding', type: decoder.name, wg: workgroupSize };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('embedding.wgsl', decoderDefines(type)),
        bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize },
      }),
    );
    return new EmbeddingKernel(device, pipeline, decoder, workgroupSize);
  }

  get label(): string {
    return this.pipeline.label;
  }

  get type(): GgmlType {
    return this.decoder.type;
  }

  /** Records the lookup of `shape.tokens` ids into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: EmbeddingBuffers, shape: EmbeddingShape): void {
    const { tokens, vocab, hidden, tableOffsetBytes = 0, scale = 1, firstRow = 0 } = shape;
    const rows = shape.rows ?? vocab - firstRow;
    checkInteger(tokens, 'embedding tokens');
    checkInteger(vocab, 'embedding vocab', 1);
    checkInteger(firstRow, 'embedding firstRow');
    checkInteger(rows, 'embedding rows', 1);
    if (firstRow + rows > vocab) throw new RangeError(`embedding rows ${firstRow}..${firstRow + rows - 1} exceed the vocabulary of ${vocab}`);
    checkWeightPlacement(this.decoder, bindingSizeBytes(buffers.table), { rows, cols: hidden, offsetBytes: tableOffsetBytes }, this.label);
    if (!Number.isFinite(scale)) throw new RangeError(`embedding scale must be finite, got ${scale}`);
    checkU32Index(tokens * hidden, 'embedding out');
    checkBindingSize(buffers.ids, tokens * 4, 'embedding ids');
    checkBindingSize(buffers.out, tokens * hidden * 4, 'embedding out');
    if (tokens === 0) return;
    const uniforms = packUniformScalars([
      ['u32', tokens],
      ['u32', hidden],
      ['u32', vocab],
      ['u32', tableOffsetBytes],
      ['f32', scale],
      ['u32', firstRow],
      ['u32', rows],
    ]);
    const groups = (tokens * hidden) / 8;
    // One table row per token whose id lies in this piece of the table; which ones do is known only on the GPU, so a
    // table split into pieces is counted as if ids spread evenly over them (exact for a table in one piece).
    const weightBytes = Math.round((tokens * rowBytes(this.decoder, hidden) * rows) / vocab);
    encodeDispatch(this.device, pass, this.pipeline, uniforms, [buffers.table, buffers.ids, buffers.out], ceilDiv(groups, this.workgroupSize), weightBytes);
  }
}
