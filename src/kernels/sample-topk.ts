/**
 * The GPU part of sampling (shaders/sample_topk.wgsl): the k largest logits
 * with their ids, sorted (ties to the lowest id), scaled by 1 / temperature,
 * and the log-sum-exp of all scaled logits. A decode step reads back
 * topKResultBytes(k) bytes and completes top-p / min-p sampling on the CPU
 * (sampling.ts: decodeTopKResult, then sampleFromCandidates). Greedy decoding
 * (temperature 0) uses the argmax kernel instead.
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { checkInteger, checkU32Index, encodeDispatch } from './kernel-support';
import { createTwoPassPipelines, GrowingScratch } from './two-pass-reduction';

export interface TopKShape {
  /** Logits (the vocabulary size). */
  length: number;
  /** Candidates wanted, 1..maxK; fewer come back when length < k. */
  k: number;
  /** > 0; the returned logits and the log-sum-exp are of logits / temperature. Default 1. */
  temperature?: number;
}

export interface TopKBuffers {
  /** f32 [length]. */
  logits: BufferRef;
  /** u32 [2 + 2k], written: count, log-sum-exp bits, then (scaled logit bits, id) by rank. */
  result: BufferRef;
  /** Per-slice candidates, scratchBytes(length, k) bytes; the kernel keeps one of its own when absent. */
  scratch?: BufferRef;
}

export interface SampleTopKOptions {
  /** Threads per workgroup: a power of two, also the largest k (default 256, or the device's maximum if lower). */
  workgroupSize?: number;
}

/** Bytes of the result of a top-k of `k`. */
export function topKResultBytes(k: number): number {
  return (2 + 2 * k) * 4;
}

/** Logits per thread of the partial pass. */
const LOGITS_PER_THREAD = 16;

export class SampleTopKKernel {
  private readonly ownScratch: GrowingScratch;

  private constructor(
    private readonly device: GPUDevice,
    private readonly partialPipeline: GPUComputePipeline,
    private readonly finalPipeline: GPUComputePipeline,
    private readonly workgroupSize: number,
  ) {
    this.ownScratch = new GrowingScratch(device, `${partialPipeline.label} scratch`);
  }

  static async create(device: GPUDevice, options: SampleTopKOptions = {}): Promise<SampleTopKKernel> {
    const { partial, final, workgroupSize } = await createTwoPassPipelines(device, 'sample_topk', options.workgroupSize);
    return new SampleTopKKernel(device, partial, final, workgroupSize);
  }

  get label(): string {
    return this.partialPipeline.label;
  }

  /** The largest k this kernel selects (its workgroup size). */
  get maxK(): number {
    return this.workgroupSize;
  }

  private get slice(): number {
    return this.workgroupSize * LOGITS_PER_THREAD;
  }

  /** Bytes of scratch for `length` logits and `k` candidates. */
  scratchBytes(length: number, k: number): number {
    return ceilDiv(length, this.slice) * (2 * k + 2) * 4;
  }

  /** Records both passes into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: TopKBuffers, shape: TopKShape): void {
    const { length, k, temperature = 1 } = shape;
    checkInteger(length, 'sample_topk length', 1);
    checkU32Index(length, 'sample_topk');
    if (!Number.isInteger(k) || k < 1 || k > this.maxK) throw new RangeError(`sample_topk k must be an integer in [1, ${this.maxK}], got ${k}`);
    if (!(temperature > 0 && Number.isFinite(temperature))) {
      throw new RangeError(`sample_topk temperature must be > 0 (use argmax for greedy decoding), got ${temperature}`);
    }
    checkBindingSize(buffers.logits, length * 4, 'sample_topk logits');
    checkBindingSize(buffers.result, topKResultBytes(k), 'sample_topk result');
    const scratchBytes = this.scratchBytes(length, k);
    const scratch = buffers.scratch ?? this.ownScratch.atLeast(scratchBytes);
    checkBindingSize(scratch, scratchBytes, 'sample_topk scratch');
    checkU32Index(scratchBytes / 4, 'sample_topk scratch');
    const nSlices = ceilDiv(length, this.slice);
    const uniforms = packUniformScalars([
      ['u32', length],
      ['u32', k],
      ['u32', this.slice],
      ['u32', nSlices],
      ['f32', 1 / temperature],
    ]);
    const bound = [buffers.logits, scratch, buffers.result];
    encodeDispatch(this.device, pass, this.partialPipeline, uniforms, bound, nSlices);
    encodeDispatch(this.device, pass, this.finalPipeline, uniforms, bound, 1);
  }

  /** Frees the kernel's own scratch buffers. */
  destroy(): void {
    this.ownScratch.destroy();
  }
}
