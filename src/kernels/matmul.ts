/**
 * Matrix-product kernel with fused dequantisation (shaders/matmul.wgsl), for
 * prefill: Y (+)= X W^T for many tokens, with W in any GPU weight type read in
 * its stored blocks from a byte offset of a buffer, each weight group decoded
 * once per tile of tokens. Owns the pipeline variant (weight type, geometry,
 * tile), the guards, the uniforms and the dispatch size; see the shader's
 * header for bindings and geometry.
 */

import { uniformBinding } from '../gpu/uniform-arena';
import { asBufferBinding, bindingSizeBytes, checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { countDispatch } from '../gpu/cost-counter';
import { ceilDiv, workgroupGrid } from '../gpu/dispatch';
import { isSoftwareDevice } from '../gpu/adapter-kind';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import type { GgmlType } from '../quant/formats';
import { checkVectorOffset } from './matvec';
import { checkWeightPlacement, decoderDefines, quantDecoder, rowBytes } from './quant-decoders';
import type { QuantDecoder } from './quant-decoders';

export interface MatmulOptions {
  /** Threads per workgroup (default 64). */
  workgroupSize?: number;
  /** Rows per workgroup (default 4; on a software adapter workgroupSize, one thread per row); must divide workgroupSize. */
  rowsPerWorkgroup?: number;
  /** Tokens per tile (default 8, at most 32): each weight group is decoded once per tile. */
  tokensPerTile?: number;
}

export interface MatmulShape {
  rows: number;
  /** Row length: a multiple of the weight type's block size (8 for float types). */
  cols: number;
  tokens: number;
  /** Byte offset of W in its binding (any alignment). Default 0. */
  wOffsetBytes?: number;
  /** Index of X[0, 0] in the x binding; a multiple of 4. Default 0. */
  xOffset?: number;
  /** Index of Y[0, 0] in the y binding. Default 0. */
  yOffset?: number;
  /** Elements from one token's row of Y to the next's, >= rows (more: Y is a column slice of a wider matrix). Default rows. */
  yStride?: number;
  /** Add X W^T to Y instead of overwriting it (a residual add). Default false. */
  accumulate?: boolean;
  /** Multiplies X W^T before it is written or added (granite's residual and logit scales). Default 1. */
  scale?: number;
}

export interface MatmulBuffers {
  /** Raw weight bytes of W [rows, cols], row-major, in the kernel's type. */
  w: BufferRef;
  /** f32 X [tokens, cols], row-major (from xOffset). */
  x: BufferRef;
  /** f32 Y [tokens, rows], row-major (from yOffset), written (or added to); must not overlap x. */
  y: BufferRef;
}

const DEFAULT_WORKGROUP_SIZE = 64;
const DEFAULT_ROWS_PER_WORKGROUP = 4;
const DEFAULT_TOKENS_PER_TILE = 8;
const MAX_TOKENS_PER_TILE = 32;

interface MatmulGeometry {
  workgroupSize: number;
  rowsPerWorkgroup: number;
  tokensPerTile: number;
}

export class MatmulKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    private readonly decoder: QuantDecoder,
    private readonly geometry: MatmulGeometry,
  ) {}

  /**
   * Builds (or takes from the device's cache) the pipeline for weights of
   * `type`. Throws UnsupportedGpuTypeError for a type without a decoder, and a
   * RangeError for a geometry the device cannot run.
   */
  static async create(device: GPUDevice, type: GgmlType, options: MatmulOptions = {}): Promise<MatmulKernel> {
    const decoder = quantDecoder(type, 'matmul');
    const workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    const geometry: MatmulGeometry = {
      workgroupSize,
      // See src/gpu/adapter-kind.ts: one thread per row on a software adapter.
      rowsPerWorkgroup: options.rowsPerWorkgroup ?? (isSoftwareDevice(device) ? workgroupSize : DEFAULT_ROWS_PER_WORKGROUP),
      tokensPerTile: options.tokensPerTile ?? DEFAULT_TOKENS_PER_TILE,
    };
    checkMatmulGeometry(geometry, device.limits);
    const { rowsPerWorkgroup, tokensPerTile } = geometry;
    const key = { op: 'matmul', type: decoder.name, wg: workgroupSize, rows: rowsPerWorkgroup, tile: tokensPerTile };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('matmul.wgsl', { ...decoderDefines(type), TILE_TOKENS: tokensPerTile }),
        bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize, ROWS: rowsPerWorkgroup },
      }),
    );
    return new MatmulKernel(device, pipeline, decoder, geometry);
  }

  get label(): string {
    return this.pipeline.label;
  }

  get type(): GgmlType {
    return this.decoder.type;
  }

  /** Records Y (+)= scale * X W^T into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: MatmulBuffers, shape: MatmulShape): void {
    const { rows, cols, tokens, wOffsetBytes = 0, xOffset = 0, yOffset = 0, accumulate = false, scale = 1, yStride = rows } = shape;
    checkWeightPlacement(this.decoder, bindingSizeBytes(buffers.w), { rows, cols, offsetBytes: wOffsetBytes }, this.label);
    if (!Number.isInteger(tokens) || tokens < 0) throw new RangeError(`${this.label}: tokens must be an integer >= 0, got ${tokens}`);
    checkVectorOffset(xOffset, 4, `${this.label} xOffset`);
    checkVectorOffset(yOffset, 1, `${this.label} yOffset`);
    checkBindingSize(buffers.x, (xOffset + tokens * cols) * 4, `${this.label} x`);
    if (!Number.isInteger(yStride) || yStride < rows) throw new RangeError(`${this.label}: yStride must be an integer >= rows (${rows}), got ${yStride}`);
    const yEnd = tokens === 0 ? yOffset : yOffset + (tokens - 1) * yStride + rows;
    checkBindingSize(buffers.y, yEnd * 4, `${this.label} y`);
    if ((xOffset + tokens * cols) / 4 >= 2 ** 32 || yEnd >= 2 ** 32) {
      throw new RangeError(`${this.label}: X or Y overflows 32-bit indices`);
    }
    if (!Number.isFinite(scale)) throw new RangeError(`${this.label}: scale must be finite, got ${scale}`);
    if (rows === 0 || tokens === 0) return;

    const rowGroups = ceilDiv(rows, this.geometry.rowsPerWorkgroup);
    const params = packUniformScalars([
      ['u32', rows],
      ['u32', cols],
      ['u32', tokens],
      ['u32', wOffsetBytes],
      ['u32', xOffset],
      ['u32', yOffset],
      ['u32', accumulate ? 1 : 0],
      ['u32', rowGroups],
      ['f32', scale],
      ['u32', yStride],
    ]);
    const bindGroup = this.device.createBindGroup({
      label: this.label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: uniformBinding(this.device, pass, params, `${this.label} params`) },
        { binding: 1, resource: asBufferBinding(buffers.w) },
        { binding: 2, resource: asBufferBinding(buffers.x) },
        { binding: 3, resource: asBufferBinding(buffers.y) },
      ],
    });
    const workgroups = rowGroups * ceilDiv(tokens, this.geometry.tokensPerTile);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroupGrid(workgroups, this.device.limits.maxComputeWorkgroupsPerDimension));
    // Each tile of tokens reads the whole matrix once.
    countDispatch(this.device, rows * rowBytes(this.decoder, cols) * ceilDiv(tokens, this.geometry.tokensPerTile));
  }
}

/** Bytes of workgroup memory the shader declares for `geometry` (see its header). */
export function matmulWorkgroupBytes({ workgroupSize, rowsPerWorkgroup, tokensPerTile }: MatmulGeometry): number {
  const threadsPerRow = workgroupSize / rowsPerWorkgroup;
  return tokensPerTile * threadsPerRow * 32 + tokensPerTile * workgroupSize * 4;
}

function checkMatmulGeometry(geometry: MatmulGeometry, limits: GPUSupportedLimits): void {
  const { workgroupSize, rowsPerWorkgroup, tokensPerTile } = geometry;
  const integers = [workgroupSize, rowsPerWorkgroup, tokensPerTile].every((n) => Number.isInteger(n) && n >= 1);
  if (!integers || workgroupSize % rowsPerWorkgroup !== 0 || workgroupSize > limits.maxComputeInvocationsPerWorkgroup) {
    throw new RangeError(
      `matmul: ${workgroupSize} threads for ${rowsPerWorkgroup} rows per workgroup; rows must divide threads ` +
        `and the workgroup be at most ${limits.maxComputeInvocationsPerWorkgroup} threads`,
    );
  }
  if (tokensPerTile > MAX_TOKENS_PER_TILE) {
    throw new RangeError(`matmul: tokensPerTile must be in 1..${MAX_TOKENS_PER_TILE}, got ${tokensPerTile}`);
  }
  const bytes = matmulWorkgroupBytes(geometry);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(
      `matmul: this geometry needs ${bytes} bytes of workgroup memory; the device allows ${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
}
