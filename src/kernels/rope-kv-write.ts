/**
 * RoPE on a batch's queries and keys and the keys and values into the KV
 * cache, in one dispatch (shaders/rope_kv_write.wgsl): what rope.ts on q,
 * rope.ts on k and kv-write.ts do in three, with the same bits in q and in
 * the cache (k is left unrotated). q, k and v are [tokens][heads][headDim]
 * rows of their own buffers; the cache layout is kv-write.ts's.
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkU32Index, encodeDispatch } from './kernel-support';
import { kvCacheBytes } from './kv-write';
import type { KvCacheShape } from './kv-write';
import { checkRopeParams, ropeUniformFields } from './rope';
import type { RopeParams, RopeVariant } from './rope';

export interface RopeKvWriteBuffers {
  /** f32 [tokens][nHeads][headDim], rotated in place. */
  q: BufferRef;
  /** f32 [tokens][nKvHeads][headDim], read (rotated into the cache). */
  k: BufferRef;
  /** f32 [tokens][nKvHeads][headDim]. */
  v: BufferRef;
  /** u32 [tokens]. */
  positions: BufferRef;
  kCache: BufferRef;
  vCache: BufferRef;
  /** f32 [nRot / 2]; exactly when the variant has frequency factors. */
  freqFactors?: BufferRef;
}

export interface RopeKvWriteShape extends KvCacheShape {
  tokens: number;
  nHeads: number;
  /** Position of the first new token in the cache. */
  startPosition: number;
}

const WORKGROUP_SIZE = 64;

export class RopeKvWriteKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: Readonly<RopeVariant>,
  ) {}

  static async create(device: GPUDevice, variant: RopeVariant): Promise<RopeKvWriteKernel> {
    const key = { op: 'rope_kv_write', ordering: variant.ordering, freqFactors: variant.hasFreqFactors, wg: WORKGROUP_SIZE };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('rope_kv_write.wgsl', { HAS_FREQ_FACTORS: variant.hasFreqFactors }),
        bindings: [
          'uniform', 'storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'storage',
          ...(variant.hasFreqFactors ? ['read-only-storage' as const] : []),
        ],
        constants: { WG: WORKGROUP_SIZE, NEOX: variant.ordering === 'neox' ? 1 : 0 },
      }),
    );
    return new RopeKvWriteKernel(device, pipeline, { ...variant });
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the rotation of q and the cache writes of `shape.tokens` tokens into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: RopeKvWriteBuffers, shape: RopeKvWriteShape, params: RopeParams): void {
    const { tokens, nHeads, nKvHeads, headDim, maxContext, startPosition } = shape;
    checkInteger(tokens, 'rope_kv_write tokens');
    checkInteger(nHeads, 'rope_kv_write nHeads', 1);
    checkInteger(nKvHeads, 'rope_kv_write nKvHeads', 1);
    checkInteger(headDim, 'rope_kv_write headDim', 2);
    checkInteger(startPosition, 'rope_kv_write startPosition');
    checkRopeParams(params, headDim);
    if (startPosition + tokens > maxContext) {
      throw new RangeError(`rope_kv_write: positions ${startPosition}..${startPosition + tokens - 1} exceed the cache's ${maxContext}`);
    }
    if (this.variant.hasFreqFactors !== (buffers.freqFactors !== undefined)) {
      throw new Error(`${this.label}: a freqFactors buffer must be given exactly when the variant has frequency factors`);
    }
    const perToken = nHeads * (params.nRot / 2) + nKvHeads * headDim;
    checkU32Index(Math.max(tokens * perToken, tokens * nHeads * headDim, kvCacheBytes(shape) / 4), 'rope_kv_write');
    checkBindingSize(buffers.q, tokens * nHeads * headDim * 4, 'rope_kv_write q');
    checkBindingSize(buffers.k, tokens * nKvHeads * headDim * 4, 'rope_kv_write k');
    checkBindingSize(buffers.v, tokens * nKvHeads * headDim * 4, 'rope_kv_write v');
    checkBindingSize(buffers.positions, tokens * 4, 'rope_kv_write positions');
    checkBindingSize(buffers.kCache, kvCacheBytes(shape), 'rope_kv_write kCache');
    checkBindingSize(buffers.vCache, kvCacheBytes(shape), 'rope_kv_write vCache');
    if (buffers.freqFactors) checkBindingSize(buffers.freqFactors, (params.nRot / 2) * 4, 'rope_kv_write freqFactors');
    if (tokens === 0) return;
    const uniforms = packUniformScalars([
      ['u32', tokens],
      ['u32', nHeads],
      ['u32', nKvHeads],
      ['u32', headDim],
      ['u32', params.nRot],
      ['u32', maxContext],
      ['u32', startPosition],
      ...ropeUniformFields(params),
    ]);
    const { q, k, v, positions, kCache, vCache, freqFactors } = buffers;
    const bound = [q, k, v, positions, kCache, vCache, ...(freqFactors ? [freqFactors] : [])];
    // The frequency factors are read once per token and pair, like rope's; nothing else here is a weight.
    encodeDispatch(this.device, pass, this.pipeline, uniforms, bound, ceilDiv(tokens * perToken, WORKGROUP_SIZE), freqFactors ? (params.nRot / 2) * 4 : 0);
  }
}
