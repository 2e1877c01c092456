/**
 * Argmax (shaders/argmax.wgsl): the index of the largest logit, ties to the
 * lowest index, as one u32 on the GPU so a greedy decode step reads back
 * 4 bytes. Two dispatches: per-slice partial maxima, then the final one.
 */

import { checkBindingSize, createEmptyStorageBuffer, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkPowerOfTwoWorkgroup, checkU32Index, encodeDispatch } from './kernel-support';

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

const DEFAULT_WORKGROUP_SIZE = 256;
/** Values each thread of the partial pass reads. */
const VALUES_PER_THREAD = 16;

export class ArgmaxKernel {
  private ownScratch?: GPUBuffer;

  private constructor(
    private readonly device: GPUDevice,
    private readonly partialPipeline: GPUComputePipeline,
    private readonly finalPipeline: GPUComputePipeline,
    private readonly workgroupSize: number,
  ) {}

  static async create(device: GPUDevice, options: ArgmaxOptions = {}): Promise<ArgmaxKernel> {
    const maxInvocations = device.limits.maxComputeInvocationsPerWorkgroup;
    const workgroupSize = options.workgroupSize ?? Math.min(DEFAULT_WORKGROUP_SIZE, maxInvocations);
    checkPowerOfTwoWorkgroup(workgroupSize, maxInvocations, 'argmax');
    const cache = pipelineCacheFor(device);
    const build = (final: boolean) =>
      cache.getOrCreate({ op: 'argmax', dtype: 'f32', wg: workgroupSize, final }, (label) =>
        createComputePipeline(device, {
          label,
          code: loadShader('argmax.wgsl'),
          bindings: ['uniform', 'read-only-storage', 'storage', 'storage'],
          constants: { WG: workgroupSize, FINAL: final ? 1 : 0 },
        }),
      );
    const [partial, final] = await Promise.all([build(false), build(true)]);
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
    const scratch = buffers.scratch ?? this.scratchOfAtLeast(this.scratchBytes(length));
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

  /** The kernel's own scratch, replaced by a larger one when too small (passes already recorded may still use the old one). */
  private scratchOfAtLeast(bytes: number): GPUBuffer {
    if (!this.ownScratch || this.ownScratch.size < bytes) {
      this.ownScratch = createEmptyStorageBuffer(this.device, bytes, `${this.label} scratch`);
    }
    return this.ownScratch;
  }
}
