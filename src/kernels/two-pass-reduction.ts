/**
 * What the two-pass reductions over an f32 array (argmax.wgsl,
 * sample_topk.wgsl) share: one shader compiled twice (FINAL = 0 writes
 * per-slice partials, FINAL = 1 merges them) at a power-of-two workgroup
 * size, and a scratch buffer for the partials that the kernel keeps for
 * callers who give none.
 */

import { createEmptyStorageBuffer } from '../gpu/buffers';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkPowerOfTwoWorkgroup } from './kernel-support';

const DEFAULT_WORKGROUP_SIZE = 256;

export interface TwoPassPipelines {
  partial: GPUComputePipeline;
  final: GPUComputePipeline;
  workgroupSize: number;
}

/**
 * Both pipelines of shaders/<op>.wgsl (bindings: uniforms, the values, the
 * scratch, the result), at `workgroupSize` or 256 (the device's maximum if lower).
 */
export async function createTwoPassPipelines(device: GPUDevice, op: string, workgroupSize?: number): Promise<TwoPassPipelines> {
  const maxInvocations = device.limits.maxComputeInvocationsPerWorkgroup;
  const wg = workgroupSize ?? Math.min(DEFAULT_WORKGROUP_SIZE, maxInvocations);
  checkPowerOfTwoWorkgroup(wg, maxInvocations, op);
  const cache = pipelineCacheFor(device);
  const build = (final: boolean) =>
    cache.getOrCreate({ op, dtype: 'f32', wg, final }, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader(`${op}.wgsl`),
        bindings: ['uniform', 'read-only-storage', 'storage', 'storage'],
        constants: { WG: wg, FINAL: final ? 1 : 0 },
      }),
    );
  const [partial, final] = await Promise.all([build(false), build(true)]);
  return { partial, final, workgroupSize: wg };
}

/** A kernel's own scratch buffer, replaced by a larger one when too small (passes already recorded may still use the old one). */
export class GrowingScratch {
  private buffer?: GPUBuffer;
  /** Outgrown buffers: commands recorded but not yet submitted may still use them, so they go at destroy(). */
  private readonly outgrown: GPUBuffer[] = [];

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
  ) {}

  atLeast(bytes: number): GPUBuffer {
    if (!this.buffer || this.buffer.size < bytes) {
      if (this.buffer) this.outgrown.push(this.buffer);
      this.buffer = createEmptyStorageBuffer(this.device, bytes, this.label);
    }
    return this.buffer;
  }

  destroy(): void {
    this.buffer?.destroy();
    this.buffer = undefined;
    this.outgrown.splice(0).forEach((b) => b.destroy());
  }
}
