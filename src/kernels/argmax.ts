/**
 * Argmax (shaders/argmax.wgsl): the index of the largest logit, ties to the
 * lowest index, as one u32 on the GPU so a greedy decode step reads back
 * 4 bytes. Two dispatches: per-slice partial maxima, then the final one.
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { checkInteger, checkU32Index, encodeDispatch } from './kernel-support';
import { createTwoPassPipelines, GrowingScratch } from './two-pass-reduction';

export interface ArgmaxBuffers {
  /** f32 [length]. */
  values: BufferRef;
  /** u32 [1], written with the index. */
  result: BufferRef;
  /** Partial maxima, argmaxScratchBytes(length) bytes; the kernel keeps one of its own when absent. */
  scratch?: BufferRef;
}

export interface ArgmaxOptions {
  /** Threads per workgroup, a power of two (default 256, or the device's maximum if lower). */
  workgroupSize?: number;
}

/** Values each thread of the partial pass reads. */
const VALUES_PER_THREAD = 16;

export class ArgmaxKernel {
  private readonly ownScratch: GrowingScratch;

  private constructor(
    private readonly device: GPUDevice,
    private readonly partialPipeline: GPUComputePipeline,
    private readonly finalPipeline: GPUComputePipeline,
    private readonly workgroupSize: number,
  ) {
    this.ownScratch = new GrowingScratch(device, `${partialPipeline.label} scratch`);
  }

  static async create(device: GPUDevice, options: ArgmaxOptions = {}): Promise<ArgmaxKernel> {
    const { partial, final, workgroupSize } = await createTwoPassPipelines(device, 'argmax', options.workgroupSize);
    return new ArgmaxKernel(device, partial, final, workgroupSize);
  }

  get label(): string {
    return this.partialPipeline.label;
  }

  /** Bytes of scratch for `length` values. */
  scratchBytes(length: number): number {
    return ceilDiv(length, this.workgroupSize * VALUES_PER_THREAD) * 8;
  }

  /** Records both passes over the first `length` values into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: ArgmaxBuffers, length: number): void {
    checkInteger(length, 'argmax length', 1);
    checkU32Index(length, 'argmax');
    checkBindingSize(buffers.values, length * 4, 'argmax values');
    checkBindingSize(buffers.result, 4, 'argmax result');
    const slice = this.workgroupSize * VALUES_PER_THREAD;
    const nPartials = ceilDiv(length, slice);
    const scratch = buffers.scratch ?? this.ownScratch.atLeast(this.scratchBytes(length));
    checkBindingSize(scratch, this.scratchBytes(length), 'argmax scratch');
    const uniforms = packUniformScalars([
      ['u32', length],
      ['u32', slice],
      ['u32', nPartials],
    ]);
    const bound = [buffers.values, scratch, buffers.result];
    encodeDispatch(this.device, pass, this.partialPipeline, uniforms, bound, nPartials);
    encodeDispatch(this.device, pass, this.finalPipeline, uniforms, bound, 1);
  }

  /** Frees the kernel's own scratch buffers. */
  destroy(): void {
    this.ownScratch.destroy();
  }
}
