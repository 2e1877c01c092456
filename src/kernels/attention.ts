/**
 * Attention over the KV cache (shaders/attention.wgsl, and
 * shaders/attention_combine.wgsl for split-K): causal, grouped-query,
 * optional sliding window and attention sinks, online softmax in f32.
 *
 * Decode (one token) and prefill (many) are one kernel. A workgroup takes up
 * to ROWS query rows (token, head) that share a KV head, so a decode step's
 * whole head group reads each key and value once, and prefill gets a
 * workgroup per block of rows. Over long contexts a decode step also splits
 * the keys across workgroups (more parallelism than n_kv_heads workgroups)
 * and merges their partial results in a second dispatch.
 *
 * Values may be narrower than keys and live inside another cache's rows:
 * multi-head latent attention (deepseek2) binds its one latent cache as both
 * key and value cache, each value being the first `valueDim` dimensions of
 * a key row.
 */

import { checkBindingSize, createEmptyStorageBuffer, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkPowerOfTwoWorkgroup, checkU32Index, encodeDispatch } from './kernel-support';
import { kvCacheBytes } from './kv-write';
import type { KvCacheShape } from './kv-write';

export interface AttentionVariant {
  nHeads: number;
  /** KV heads; nHeads must be a multiple. */
  nKvHeads: number;
  /** Width of queries and keys. */
  headDim: number;
  /** Width of values and outputs (default headDim). */
  valueDim?: number;
  /** Elements from one position's value to the next's in the value cache (default valueDim; >= valueDim). */
  valueRow?: number;
  /** Whether a per-head sink logit joins the softmax denominator (gpt-oss). */
  hasSinks: boolean;
  /** Threads per workgroup, also keys per chunk: a power of two (default 64). */
  workgroupSize?: number;
}

export interface AttentionShape extends KvCacheShape {
  nHeads: number;
  /** Query tokens: 1 for a decode step. */
  tokens: number;
  /** Position of token 0; token t is at startPosition + t and sees positions up to its own. */
  startPosition: number;
  /** Multiplies q . k; default 1 / sqrt(headDim). */
  scale?: number;
  /** Sliding window: each query sees only the last `window` positions, its own included. 0 (default): all. */
  window?: number;
  /** Elements from one token's query heads to the next's; default nHeads * headDim (a fused QKV row is longer). */
  qTokenStride?: number;
  /** Element index of token 0's first query head in q; default 0. */
  qOffset?: number;
}

export interface AttentionBuffers {
  /** f32 queries, head h of token t at qOffset + t * qTokenStride + h * headDim. */
  q: BufferRef;
  /** f32 [nKvHeads][maxContext][headDim], positions up to the last token's filled. */
  kCache: BufferRef;
  /** f32 [nKvHeads][maxContext][valueRow], values in the first valueDim of each row (may be kCache). */
  vCache: BufferRef;
  /** f32 [tokens][nHeads][valueDim], written. */
  out: BufferRef;
  /** f32 [nHeads]; required exactly when the variant has sinks. */
  sinks?: BufferRef;
  /** Split-K partials, attentionScratchBytes(...) bytes; the kernel keeps one of its own when absent. */
  scratch?: BufferRef;
}

export interface AttentionEncodeOptions {
  /** Key splits (default: splitCountFor the visible keys for a decode step, 1 for prefill). */
  splits?: number;
}

const DEFAULT_WORKGROUP_SIZE = 64;
/** Query rows per workgroup, unless workgroup memory holds fewer. */
const MAX_ROWS = 8;
/** Keys per split below which a decode step is not split further. */
const MIN_SPLIT_KEYS = 256;
const MAX_SPLITS = 32;

/** Key splits for a decode step seeing `visibleKeys` keys: one per MIN_SPLIT_KEYS, at most MAX_SPLITS. */
export function splitCountFor(visibleKeys: number): number {
  return Math.max(1, Math.min(MAX_SPLITS, Math.floor(visibleKeys / MIN_SPLIT_KEYS)));
}

/** Bytes of split-K partials for `rows` query rows (tokens * nHeads) of `valueDim` outputs and `splits` splits. */
export function attentionScratchBytes(rows: number, valueDim: number, splits: number): number {
  return splits * rows * (valueDim + 2) * 4;
}

/** The first position a query at `position` sees. */
function firstVisible(position: number, window: number): number {
  return window === 0 ? 0 : Math.max(0, position + 1 - window);
}

export class AttentionKernel {
  private ownScratch?: GPUBuffer;

  private constructor(
    private readonly device: GPUDevice,
    private readonly attentionPipeline: GPUComputePipeline,
    private readonly combinePipeline: GPUComputePipeline,
    readonly variant: Required<AttentionVariant>,
    /** Query rows per workgroup. */
    readonly rows: number,
  ) {}

  /** Builds (or takes from the device's cache) the attention and combine pipelines of `variant`. */
  static async create(device: GPUDevice, variant: AttentionVariant): Promise<AttentionKernel> {
    const full = { workgroupSize: DEFAULT_WORKGROUP_SIZE, valueDim: variant.headDim, ...variant };
    const withRow = { valueRow: full.valueDim, ...full };
    const { nHeads, nKvHeads, headDim, valueDim, valueRow, hasSinks, workgroupSize } = withRow;
    checkInteger(nKvHeads, 'attention nKvHeads', 1);
    checkInteger(headDim, 'attention headDim', 1);
    checkInteger(valueDim, 'attention valueDim', 1);
    checkInteger(valueRow, 'attention valueRow', valueDim);
    if (!Number.isInteger(nHeads) || nHeads < 1 || nHeads % nKvHeads !== 0) {
      throw new RangeError(`attention nHeads (${nHeads}) must be a positive multiple of nKvHeads (${nKvHeads})`);
    }
    checkPowerOfTwoWorkgroup(workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup, 'attention');
    const group = nHeads / nKvHeads;
    const rows = fittingRows(MAX_ROWS, workgroupSize, valueDim, device.limits.maxComputeWorkgroupStorageSize);
    const cache = pipelineCacheFor(device);
    const attention = cache.getOrCreate({ op: 'attention', dtype: 'f32', wg: workgroupSize, rows, hd: headDim, vd: valueDim, vr: valueRow, group, sinks: hasSinks }, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('attention.wgsl', { HAS_SINKS: hasSinks }),
        bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', ...(hasSinks ? ['read-only-storage' as const] : [])],
        constants: { WG: workgroupSize, ROWS: rows, HEAD_DIM: headDim, V_DIM: valueDim, V_ROW: valueRow, GROUP: group },
      }),
    );
    // The partials the combine step merges are value-wide.
    const combine = cache.getOrCreate({ op: 'attention_combine', dtype: 'f32', wg: workgroupSize, hd: valueDim }, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('attention_combine.wgsl'),
        bindings: ['uniform', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize, HEAD_DIM: valueDim },
      }),
    );
    const [attentionPipeline, combinePipeline] = await Promise.all([attention, combine]);
    return new AttentionKernel(device, attentionPipeline, combinePipeline, withRow, rows);
  }

  get label(): string {
    return this.attentionPipeline.label;
  }

  /** Records attention of `shape.tokens` query tokens over the cache into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: AttentionBuffers, shape: AttentionShape, options: AttentionEncodeOptions = {}): void {
    const full = this.check(buffers, shape);
    const { tokens, nHeads, nKvHeads, headDim, window } = full;
    if (tokens === 0) return;
    const rowBlocks = ceilDiv(tokens * (nHeads / nKvHeads), this.rows);
    const spanStart = firstVisible(full.startPosition, window);
    const span = full.startPosition + tokens - spanStart;
    const wg = this.variant.workgroupSize;
    const requestedSplits = options.splits ?? (tokens === 1 ? splitCountFor(span) : 1);
    checkInteger(requestedSplits, 'attention splits', 1);
    const splitLength = ceilDiv(ceilDiv(span, requestedSplits), wg) * wg;
    const splits = ceilDiv(span, splitLength);
    const uniforms = packUniformScalars([
      ['u32', tokens],
      ['u32', nHeads],
      ['u32', nKvHeads],
      ['u32', full.maxContext],
      ['u32', full.startPosition],
      ['u32', window],
      ['u32', full.qTokenStride],
      ['u32', full.qOffset],
      ['u32', rowBlocks],
      ['u32', splits],
      ['u32', splitLength],
      ['u32', spanStart],
      ['f32', full.scale],
      ['u32', headDim],
      ['u32', this.variant.valueDim],
    ]);
    const sinks = buffers.sinks ? [buffers.sinks] : [];
    // The sinks are the only weights here (a logit per head); the KV cache is not counted.
    const sinkBytes = buffers.sinks ? nHeads * 4 : 0;
    const workgroups = nKvHeads * rowBlocks * splits;
    if (splits === 1) {
      encodeDispatch(this.device, pass, this.attentionPipeline, uniforms, [buffers.q, buffers.kCache, buffers.vCache, buffers.out, ...sinks], workgroups, sinkBytes);
      return;
    }
    const queryRows = tokens * nHeads;
    const scratchBytes = attentionScratchBytes(queryRows, this.variant.valueDim, splits);
    const scratch = buffers.scratch ?? this.scratchOfAtLeast(scratchBytes);
    checkBindingSize(scratch, scratchBytes, 'attention scratch');
    checkU32Index(scratchBytes / 4, 'attention scratch');
    encodeDispatch(this.device, pass, this.attentionPipeline, uniforms, [buffers.q, buffers.kCache, buffers.vCache, scratch, ...sinks], workgroups, sinkBytes);
    const combineUniforms = packUniformScalars([
      ['u32', queryRows],
      ['u32', splits],
    ]);
    encodeDispatch(this.device, pass, this.combinePipeline, combineUniforms, [scratch, buffers.out], queryRows);
  }

  /** The kernel's own scratch, replaced by a larger one when too small (the old one is left to be collected, as passes already recorded may still use it). */
  private scratchOfAtLeast(bytes: number): GPUBuffer {
    if (!this.ownScratch || this.ownScratch.size < bytes) {
      this.ownScratch = createEmptyStorageBuffer(this.device, bytes, `${this.label} scratch`);
    }
    return this.ownScratch;
  }

  private check(buffers: AttentionBuffers, shape: AttentionShape): Required<AttentionShape> {
    const { nHeads, nKvHeads, headDim } = this.variant;
    if (shape.nHeads !== nHeads || shape.nKvHeads !== nKvHeads || shape.headDim !== headDim) {
      throw new RangeError(
        `${this.label} was built for ${nHeads}/${nKvHeads} heads of ${headDim}, got ${shape.nHeads}/${shape.nKvHeads} of ${shape.headDim}`,
      );
    }
    const full: Required<AttentionShape> = {
      scale: 1 / Math.sqrt(headDim),
      window: 0,
      qTokenStride: nHeads * headDim,
      qOffset: 0,
      ...shape,
    };
    checkInteger(full.tokens, 'attention tokens');
    checkInteger(full.startPosition, 'attention startPosition');
    checkInteger(full.maxContext, 'attention maxContext', 1);
    checkInteger(full.window, 'attention window');
    checkInteger(full.qTokenStride, 'attention qTokenStride', nHeads * headDim);
    checkInteger(full.qOffset, 'attention qOffset');
    if (!Number.isFinite(full.scale)) throw new RangeError(`attention scale must be finite, got ${full.scale}`);
    if (full.startPosition + full.tokens > full.maxContext) {
      throw new RangeError(`attention: positions up to ${full.startPosition + full.tokens - 1} exceed the cache's ${full.maxContext}`);
    }
    if (this.variant.hasSinks !== (buffers.sinks !== undefined)) {
      throw new Error(`${this.label}: a sinks buffer must be given exactly when the variant has sinks`);
    }
    const qElements = full.tokens === 0 ? 0 : full.qOffset + (full.tokens - 1) * full.qTokenStride + nHeads * headDim;
    const vCacheBytes = kvCacheBytes({ ...full, headDim: this.variant.valueRow });
    checkU32Index(Math.max(qElements, kvCacheBytes(full) / 4, vCacheBytes / 4), 'attention');
    checkBindingSize(buffers.q, qElements * 4, 'attention q');
    checkBindingSize(buffers.kCache, kvCacheBytes(full), 'attention kCache');
    checkBindingSize(buffers.vCache, vCacheBytes, 'attention vCache');
    checkBindingSize(buffers.out, full.tokens * nHeads * this.variant.valueDim * 4, 'attention out');
    if (buffers.sinks) checkBindingSize(buffers.sinks, nHeads * 4, 'attention sinks');
    return full;
  }
}

/** The largest row count up to `rows` whose workgroup arrays (scores and value-wide outputs) fit in `storageBytes`. */
function fittingRows(rows: number, workgroupSize: number, valueDim: number, storageBytes: number): number {
  const bytes = (r: number) => r * (workgroupSize + valueDim + 3) * 4;
  let fitting = rows;
  while (fitting > 1 && bytes(fitting) > storageBytes) fitting = Math.floor(fitting / 2);
  if (bytes(fitting) > storageBytes) {
    throw new RangeError(`attention: value dim ${valueDim} with workgroup ${workgroupSize} needs more workgroup memory than ${storageBytes} bytes`);
  }
  return fitting;
}
