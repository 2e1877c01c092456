/**
 * RMS normalisation kernel (shaders/rmsnorm.wgsl): y = x / rms(x) * w per row
 * of a row-major f32 matrix. Owns the pipeline variant, the uniforms and the
 * dispatch size; see the shader's header for bindings and geometry.
 */

import { asBufferBinding, checkBindingSize, createUniformBuffer, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { workgroupGrid } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';

export interface RmsNormVariant {
  /** Whether the output is scaled by a per-column weight. */
  hasWeight: boolean;
  /** Threads per row, a power of two (default 64). */
  workgroupSize?: number;
}

export interface RmsNormShape {
  rows: number;
  cols: number;
  /** Added to the mean square before the square root. */
  eps: number;
}

export interface RmsNormBuffers {
  /** f32 [rows, cols]. */
  x: BufferRef;
  /** f32 [rows, cols], written; must not be x. */
  y: BufferRef;
  /** f32 [cols]; required exactly when the variant has a weight. */
  weight?: BufferRef;
}

const DEFAULT_WORKGROUP_SIZE = 64;

export class RmsNormKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    readonly hasWeight: boolean,
  ) {}

  /** Builds (or takes from the device's cache) the pipeline of `variant`. */
  static async create(device: GPUDevice, variant: RmsNormVariant): Promise<RmsNormKernel> {
    const workgroupSize = variant.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    checkWorkgroupSize(workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup);
    const key = { op: 'rmsnorm', dtype: 'f32', wg: workgroupSize, weight: variant.hasWeight };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('rmsnorm.wgsl', { HAS_WEIGHT: variant.hasWeight }),
        bindings: ['uniform', 'read-only-storage', 'storage', ...(variant.hasWeight ? ['read-only-storage' as const] : [])],
        constants: { WG: workgroupSize },
      }),
    );
    return new RmsNormKernel(device, pipeline, variant.hasWeight);
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the normalisation of every row into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: RmsNormBuffers, shape: RmsNormShape): void {
    this.check(buffers, shape);
    if (shape.rows === 0) return;
    const params = packUniformScalars([
      ['u32', shape.rows],
      ['u32', shape.cols],
      ['f32', shape.eps],
    ]);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: createUniformBuffer(this.device, params, `${this.label} params`) } },
      { binding: 1, resource: asBufferBinding(buffers.x) },
      { binding: 2, resource: asBufferBinding(buffers.y) },
    ];
    if (buffers.weight) entries.push({ binding: 3, resource: asBufferBinding(buffers.weight) });
    const bindGroup = this.device.createBindGroup({
      label: this.label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries,
    });
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroupGrid(shape.rows, this.device.limits.maxComputeWorkgroupsPerDimension));
  }

  private check(buffers: RmsNormBuffers, shape: RmsNormShape): void {
    const { rows, cols, eps } = shape;
    if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 1) {
      throw new RangeError(`rmsnorm needs integer rows >= 0 and cols >= 1, got ${rows}x${cols}`);
    }
    if (!(eps >= 0)) throw new RangeError(`rmsnorm eps must be >= 0, got ${eps}`);
    if (this.hasWeight !== (buffers.weight !== undefined)) {
      throw new Error(`${this.label}: a weight buffer must be given exactly when the variant has a weight`);
    }
    checkBindingSize(buffers.x, rows * cols * 4, 'rmsnorm x');
    checkBindingSize(buffers.y, rows * cols * 4, 'rmsnorm y');
    if (buffers.weight) checkBindingSize(buffers.weight, cols * 4, 'rmsnorm weight');
  }
}

function checkWorkgroupSize(size: number, maxInvocations: number): void {
  const isPowerOfTwo = Number.isInteger(size) && size > 0 && (size & (size - 1)) === 0;
  if (!isPowerOfTwo || size > maxInvocations) {
    throw new RangeError(`rmsnorm workgroup size must be a power of two <= ${maxInvocations}, got ${size}`);
  }
}
