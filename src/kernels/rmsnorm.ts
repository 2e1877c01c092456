/**
 * RMS normalisation kernel (shaders/rmsnorm.wgsl): y = x / rms(x) * w per row
 * of a row-major f32 matrix. Owns the pipeline variant, the uniforms and the
 * dispatch size; see the shader's header for bindings and geometry.
 */

import { uniformBinding } from '../gpu/uniform-arena';
import { asBufferBinding, checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { countDispatch } from '../gpu/cost-counter';
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
  /** Elements from one row of x to the next (default cols). */
  xStride?: number;
  /** Elements from one row of y to the next (default cols). */
  yStride?: number;
  /** Element index of row 0 in y (default 0). */
  yOffset?: number;
}

export interface RmsNormBuffers {
  /** f32 rows of cols, xStride apart. */
  x: BufferRef;
  /** f32 rows of cols from yOffset, yStride apart, written; must not be x. */
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
    const { xStride, yStride, yOffset } = this.check(buffers, shape);
    if (shape.rows === 0) return;
    const params = packUniformScalars([
      ['u32', shape.rows],
      ['u32', shape.cols],
      ['f32', shape.eps],
      ['u32', xStride],
      ['u32', yStride],
      ['u32', yOffset],
    ]);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: uniformBinding(this.device, pass, params, `${this.label} params`) },
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
    // The weight vector, once per dispatch (every row reads the same one).
    countDispatch(this.device, buffers.weight ? shape.cols * 4 : 0);
  }

  private check(buffers: RmsNormBuffers, shape: RmsNormShape): { xStride: number; yStride: number; yOffset: number } {
    const { rows, cols, eps } = shape;
    if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 1) {
      throw new RangeError(`rmsnorm needs integer rows >= 0 and cols >= 1, got ${rows}x${cols}`);
    }
    const { xStride = cols, yStride = cols, yOffset = 0 } = shape;
    for (const [name, value] of [['xStride', xStride], ['yStride', yStride]] as const) {
      if (!Number.isInteger(value) || value < cols) throw new RangeError(`rmsnorm ${name} must be an integer >= cols (${cols}), got ${value}`);
    }
    if (!Number.isInteger(yOffset) || yOffset < 0) throw new RangeError(`rmsnorm yOffset must be an integer >= 0, got ${yOffset}`);
    if (!(eps >= 0)) throw new RangeError(`rmsnorm eps must be >= 0, got ${eps}`);
    if (this.hasWeight !== (buffers.weight !== undefined)) {
      throw new Error(`${this.label}: a weight buffer must be given exactly when the variant has a weight`);
    }
    const span = (stride: number) => (rows === 0 ? 0 : (rows - 1) * stride + cols);
    checkBindingSize(buffers.x, span(xStride) * 4, 'rmsnorm x');
    checkBindingSize(buffers.y, (yOffset + span(yStride)) * 4, 'rmsnorm y');
    if (buffers.weight) checkBindingSize(buffers.weight, cols * 4, 'rmsnorm weight');
    return { xStride, yStride, yOffset };
  }
}

function checkWorkgroupSize(size: number, maxInvocations: number): void {
  const isPowerOfTwo = Number.isInteger(size) && size > 0 && (size & (size - 1)) === 0;
  if (!isPowerOfTwo || size > maxInvocations) {
    throw new RangeError(`rmsnorm workgroup size must be a power of two <= ${maxInvocations}, got ${size}`);
  }
}
