/**
 * Matrix-vector kernel with fused dequantisation (shaders/matvec.wgsl), for
 * decoding one token: y (+)= W x with W in any GPU weight type, read in its
 * stored blocks from a byte offset of a buffer. Owns the pipeline variant
 * (weight type and geometry), the guards, the uniforms and the dispatch size;
 * see the shader's header for bindings and geometry.
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
import { checkInteger } from './kernel-support';
import { checkWeightPlacement, decoderDefines, quantDecoder, rowBytes } from './quant-decoders';
import type { QuantDecoder } from './quant-decoders';

export interface MatvecOptions {
  /** Threads per workgroup (default 64). */
  workgroupSize?: number;
  /** Rows per workgroup (default 2; on a software adapter workgroupSize, one thread per row); workgroupSize / rowsPerWorkgroup must be a power of two. */
  rowsPerWorkgroup?: number;
}

export interface MatvecShape {
  rows: number;
  /** Row length: a multiple of the weight type's block size (8 for float types). */
  cols: number;
  /** Byte offset of W in its binding (any alignment). Default 0. */
  wOffsetBytes?: number;
  /** Index of x[0] in the x binding; a multiple of 4. Default 0. */
  xOffset?: number;
  /** Index of y[0] in the y binding. Default 0. */
  yOffset?: number;
  /** Add W x to y instead of overwriting it (a residual add). Default false. */
  accumulate?: boolean;
  /** Multiplies W x before it is written or added (granite's residual and logit scales). Default 1. */
  scale?: number;
  /**
   * The same product per token and head (latent attention's per-head
   * absorption): W_h at wOffsetBytes + h wHeadStrideBytes, x and y moved by
   * their head and token strides (x's multiples of 4). Default one of each.
   */
  batch?: MatvecBatch;
}

export interface MatvecBatch {
  heads: number;
  tokens: number;
  wHeadStrideBytes: number;
  xHeadStride: number;
  xTokenStride: number;
  yHeadStride: number;
  yTokenStride: number;
}

export interface MatvecBuffers {
  /** Raw weight bytes of W [rows, cols], row-major, in the kernel's type. */
  w: BufferRef;
  /** f32 [cols] (from xOffset). */
  x: BufferRef;
  /** f32 [rows] (from yOffset), written (or added to); must not overlap x. */
  y: BufferRef;
}

const DEFAULT_WORKGROUP_SIZE = 64;
const DEFAULT_ROWS_PER_WORKGROUP = 2;

/** Rows per workgroup by default: a few (many threads per row) on a GPU, one thread per row on a software adapter (src/gpu/adapter-kind.ts). */
function defaultRowsPerWorkgroup(device: GPUDevice, workgroupSize: number): number {
  return isSoftwareDevice(device) ? workgroupSize : DEFAULT_ROWS_PER_WORKGROUP;
}

export class MatvecKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    private readonly decoder: QuantDecoder,
    private readonly rowsPerWorkgroup: number,
  ) {}

  /**
   * Builds (or takes from the device's cache) the pipeline for weights of
   * `type`. Throws UnsupportedGpuTypeError for a type without a decoder.
   */
  static async create(device: GPUDevice, type: GgmlType, options: MatvecOptions = {}): Promise<MatvecKernel> {
    const decoder = quantDecoder(type, 'matvec');
    const workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    const rowsPerWorkgroup = options.rowsPerWorkgroup ?? defaultRowsPerWorkgroup(device, workgroupSize);
    checkRowGeometry(workgroupSize, rowsPerWorkgroup, device.limits.maxComputeInvocationsPerWorkgroup, 'matvec');
    const key = { op: 'matvec', type: decoder.name, wg: workgroupSize, rows: rowsPerWorkgroup };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('matvec.wgsl', decoderDefines(type)),
        bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize, ROWS: rowsPerWorkgroup },
      }),
    );
    return new MatvecKernel(device, pipeline, decoder, rowsPerWorkgroup);
  }

  get label(): string {
    return this.pipeline.label;
  }

  get type(): GgmlType {
    return this.decoder.type;
  }

  /** Records y (+)= scale * W x into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: MatvecBuffers, shape: MatvecShape): void {
    const { rows, cols, wOffsetBytes = 0, xOffset = 0, yOffset = 0, accumulate = false, scale = 1 } = shape;
    const b = shape.batch ?? { heads: 1, tokens: 1, wHeadStrideBytes: 0, xHeadStride: 0, xTokenStride: 0, yHeadStride: 0, yTokenStride: 0 };
    checkInteger(b.heads, `${this.label} batch heads`, 1);
    checkInteger(b.tokens, `${this.label} batch tokens`);
    for (const [name, value] of [['xHeadStride', b.xHeadStride], ['xTokenStride', b.xTokenStride]] as const) checkVectorOffset(value, 4, `${this.label} ${name}`);
    for (const [name, value] of [['yHeadStride', b.yHeadStride], ['yTokenStride', b.yTokenStride], ['wHeadStrideBytes', b.wHeadStrideBytes]] as const) {
      checkVectorOffset(value, 1, `${this.label} ${name}`);
    }
    const lastHead = b.heads - 1;
    const lastToken = Math.max(0, b.tokens - 1);
    checkWeightPlacement(this.decoder, bindingSizeBytes(buffers.w), { rows, cols, offsetBytes: wOffsetBytes + lastHead * b.wHeadStrideBytes }, this.label);
    checkVectorOffset(xOffset, 4, `${this.label} xOffset`);
    checkVectorOffset(yOffset, 1, `${this.label} yOffset`);
    checkBindingSize(buffers.x, (xOffset + lastToken * b.xTokenStride + lastHead * b.xHeadStride + cols) * 4, `${this.label} x`);
    checkBindingSize(buffers.y, (yOffset + lastToken * b.yTokenStride + lastHead * b.yHeadStride + rows) * 4, `${this.label} y`);
    if (!Number.isFinite(scale)) throw new RangeError(`${this.label}: scale must be finite, got ${scale}`);
    if (rows === 0 || b.tokens === 0) return;
    const rowBlocks = ceilDiv(rows, this.rowsPerWorkgroup);

    const params = packUniformScalars([
      ['u32', rows],
      ['u32', cols],
      ['u32', wOffsetBytes],
      ['u32', xOffset],
      ['u32', yOffset],
      ['u32', accumulate ? 1 : 0],
      ['f32', scale],
      ['u32', rowBlocks],
      ['u32', b.heads],
      ['u32', b.tokens],
      ['u32', b.wHeadStrideBytes],
      ['u32', b.xHeadStride],
      ['u32', b.xTokenStride],
      ['u32', b.yHeadStride],
      ['u32', b.yTokenStride],
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
    const workgroups = rowBlocks * b.heads * b.tokens;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroupGrid(workgroups, this.device.limits.maxComputeWorkgroupsPerDimension));
    // Each (token, head) reads its head's matrix: heads * tokens matrices of rows x cols.
    countDispatch(this.device, rows * rowBytes(this.decoder, cols) * b.heads * b.tokens);
  }
}

/**
 * Checks a workgroup of `workgroupSize` threads split into `rowsPerWorkgroup`
 * rows: a whole, power-of-two number of threads per row (for the tree
 * reduction), within the device's limit.
 */
export function checkRowGeometry(workgroupSize: number, rowsPerWorkgroup: number, maxInvocations: number, what: string): void {
  const threadsPerRow = workgroupSize / rowsPerWorkgroup;
  const valid =
    Number.isInteger(workgroupSize) &&
    Number.isInteger(rowsPerWorkgroup) &&
    rowsPerWorkgroup >= 1 &&
    workgroupSize <= maxInvocations &&
    Number.isInteger(threadsPerRow) &&
    threadsPerRow >= 1 &&
    (threadsPerRow & (threadsPerRow - 1)) === 0;
  if (!valid) {
    throw new RangeError(
      `${what}: ${workgroupSize} threads for ${rowsPerWorkgroup} rows per workgroup; threads per row must be ` +
        `a power of two and the workgroup at most ${maxInvocations} threads`,
    );
  }
}

/** Checks an element offset: a non-negative integer multiple of `multiple`. */
export function checkVectorOffset(offset: number, multiple: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset % multiple !== 0) {
    throw new RangeError(`${what} must be an integer >= 0 and a multiple of ${multiple}, got ${offset}`);
  }
}
