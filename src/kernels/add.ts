/**
 * Residual add (shaders/add.wgsl): y = a + scale * b, or in place
 * y += scale * b, over f32 vectors of any length; scale defaults to 1.
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkU32Index, checkWorkgroupSize, encodeDispatch } from './kernel-support';

export interface AddVariant {
  /** y += scale * b (true) or y = a + scale * b (false). */
  inPlace: boolean;
  /** Threads per workgroup (default 64), one per element. */
  workgroupSize?: number;
}

export interface AddBuffers {
  /** f32 [length], written (and read when in place). */
  y: BufferRef;
  /** f32 [length]. */
  b: BufferRef;
  /** f32 [length]; required exactly when not in place, and not the same buffer as y. */
  a?: BufferRef;
}

export interface AddShape {
  length: number;
  /** Multiplies b; default 1. */
  scale?: number;
}

const DEFAULT_WORKGROUP_SIZE = 64;

export class AddKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    readonly inPlace: boolean,
    private readonly workgroupSize: number,
  ) {}

  static async create(device: GPUDevice, variant: AddVariant): Promise<AddKernel> {
    const workgroupSize = variant.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    checkWorkgroupSize(workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup, 'add');
    const key = { op: 'add', dtype: 'f32', wg: workgroupSize, inPlace: variant.inPlace };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('add.wgsl', { IN_PLACE: variant.inPlace }),
        bindings: ['uniform', 'storage', 'read-only-storage', ...(variant.inPlace ? [] : ['read-only-storage' as const])],
        constants: { WG: workgroupSize },
      }),
    );
    return new AddKernel(device, pipeline, variant.inPlace, workgroupSize);
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the add over `shape.length` elements into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: AddBuffers, shape: AddShape): void {
    const { length, scale = 1 } = shape;
    checkInteger(length, 'add length');
    checkU32Index(length, 'add');
    if (!Number.isFinite(scale)) throw new RangeError(`add scale must be finite, got ${scale}`);
    if (this.inPlace === (buffers.a !== undefined)) {
      throw new Error(`${this.label}: buffer a must be given exactly when the variant is not in place`);
    }
    checkBindingSize(buffers.y, length * 4, 'add y');
    checkBindingSize(buffers.b, length * 4, 'add b');
    if (buffers.a) checkBindingSize(buffers.a, length * 4, 'add a');
    if (length === 0) return;
    const uniforms = packUniformScalars([
      ['u32', length],
      ['f32', scale],
    ]);
    const bound = [buffers.y, buffers.b, ...(buffers.a ? [buffers.a] : [])];
    // b is counted as weights: the forward pass adds only biases with this kernel (stored once per token, so `length` of them are read).
    encodeDispatch(this.device, pass, this.pipeline, uniforms, bound, ceilDiv(length, this.workgroupSize), length * 4);
  }
}
