/**
 * KV cache layout and the kernel that fills it (shaders/kv_write.wgsl).
 *
 * Each layer has one K and one V cache of f32 [nKvHeads][maxContext][headDim]:
 * a head's keys are contiguous in position order, so attention reads one
 * head's history as a single run of memory. kv_write stores the keys and
 * values of new tokens (as the K and V projections produce them,
 * [tokens][nKvHeads][headDim], possibly rows of a fused QKV output) at
 * positions startPosition..startPosition + tokens - 1. A keys-only variant
 * fills a latent cache (deepseek2's MLA), whose values are part of its key
 * rows.
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkU32Index, checkWorkgroupSize, encodeDispatch } from './kernel-support';

export interface KvCacheShape {
  nKvHeads: number;
  /** Positions the cache holds. */
  maxContext: number;
  headDim: number;
}

/** Bytes of one K (or V) cache of `shape`, f32. */
export function kvCacheBytes(shape: KvCacheShape): number {
  return shape.nKvHeads * shape.maxContext * shape.headDim * 4;
}

export interface KvWriteShape extends KvCacheShape {
  tokens: number;
  /** Position of the first new token. */
  startPosition: number;
  /** Elements from one token's keys to the next's in k and v; default nKvHeads * headDim. */
  srcTokenStride?: number;
  /** Element index of token 0's first key head in k; default 0. */
  kOffset?: number;
  /** Element index of token 0's first value head in v; default 0. */
  vOffset?: number;
}

export interface KvWriteBuffers {
  /** f32 new keys (may be the same buffer as v). */
  k: BufferRef;
  /** f32 new values (not with keysOnly). */
  v?: BufferRef;
  /** f32 [nKvHeads][maxContext][headDim], written. */
  kCache: BufferRef;
  /** f32 [nKvHeads][maxContext][headDim], written (not with keysOnly). */
  vCache?: BufferRef;
}

export interface KvWriteVariant {
  /** Threads per workgroup (default 64), one per element. */
  workgroupSize?: number;
  /** Only keys are written (a latent cache): no v, no vCache. */
  keysOnly?: boolean;
}

const DEFAULT_WORKGROUP_SIZE = 64;

export class KvWriteKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    private readonly workgroupSize: number,
    private readonly keysOnly: boolean,
  ) {}

  static async create(device: GPUDevice, variant: KvWriteVariant = {}): Promise<KvWriteKernel> {
    const workgroupSize = variant.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    const keysOnly = variant.keysOnly ?? false;
    checkWorkgroupSize(workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup, 'kv_write');
    const key = { op: 'kv_write', dtype: 'f32', wg: workgroupSize, keysOnly };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('kv_write.wgsl', { KEYS_ONLY: keysOnly }),
        bindings: keysOnly ? ['uniform', 'read-only-storage', 'storage'] : ['uniform', 'read-only-storage', 'read-only-storage', 'storage', 'storage'],
        constants: { WG: workgroupSize },
      }),
    );
    return new KvWriteKernel(device, pipeline, workgroupSize, keysOnly);
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the copy of `shape.tokens` tokens' keys and values into the caches. */
  encode(pass: GPUComputePassEncoder, buffers: KvWriteBuffers, shape: KvWriteShape): void {
    const { tokens, nKvHeads, headDim, maxContext, startPosition } = shape;
    const srcTokenStride = shape.srcTokenStride ?? nKvHeads * headDim;
    const kOffset = shape.kOffset ?? 0;
    const vOffset = shape.vOffset ?? 0;
    checkInteger(tokens, 'kv_write tokens');
    checkInteger(nKvHeads, 'kv_write nKvHeads', 1);
    checkInteger(headDim, 'kv_write headDim', 1);
    checkInteger(maxContext, 'kv_write maxContext', 1);
    checkInteger(startPosition, 'kv_write startPosition');
    checkInteger(srcTokenStride, 'kv_write srcTokenStride', nKvHeads * headDim);
    checkInteger(kOffset, 'kv_write kOffset');
    checkInteger(vOffset, 'kv_write vOffset');
    if (startPosition + tokens > maxContext) {
      throw new RangeError(`kv_write: positions ${startPosition}..${startPosition + tokens - 1} exceed the cache's ${maxContext}`);
    }
    const srcElements = (offset: number) => (tokens === 0 ? 0 : offset + (tokens - 1) * srcTokenStride + nKvHeads * headDim);
    checkU32Index(Math.max(srcElements(kOffset), srcElements(vOffset), nKvHeads * maxContext * headDim), 'kv_write');
    const givesValues = buffers.v !== undefined && buffers.vCache !== undefined;
    const givesNone = buffers.v === undefined && buffers.vCache === undefined;
    if (this.keysOnly ? !givesNone : !givesValues) {
      throw new Error(`${this.label}: v and vCache must be given exactly when the variant writes values`);
    }
    checkBindingSize(buffers.k, srcElements(kOffset) * 4, 'kv_write k');
    checkBindingSize(buffers.kCache, kvCacheBytes(shape), 'kv_write kCache');
    if (buffers.v && buffers.vCache) {
      checkBindingSize(buffers.v, srcElements(vOffset) * 4, 'kv_write v');
      checkBindingSize(buffers.vCache, kvCacheBytes(shape), 'kv_write vCache');
    }
    if (tokens === 0) return;

    const uniforms = packUniformScalars([
      ['u32', tokens],
      ['u32', nKvHeads],
      ['u32', headDim],
      ['u32', maxContext],
      ['u32', startPosition],
      ['u32', srcTokenStride],
      ['u32', kOffset],
      ['u32', vOffset],
    ]);
    const bound = buffers.v && buffers.vCache ? [buffers.k, buffers.v, buffers.kCache, buffers.vCache] : [buffers.k, buffers.kCache];
    encodeDispatch(this.device, pass, this.pipeline, uniforms, bound, ceilDiv(tokens * nKvHeads * headDim, this.workgroupSize));
  }
}
