/**
 * MoE router kernels: shaders/router_logits.wgsl (router matvec, plus the
 * optional shared-expert gate) then shaders/router_topk.wgsl (scoring, top-k,
 * routing weights), two dispatches per call. The output is a small routing
 * buffer, 2k words per token (k expert ids, then k f32 weights, best first),
 * that the expert FFN reads directly and that is cheap to read back
 * (`unpackRouting`). Semantics: src/ref/router.ts.
 *
 * Bind once, encode many times: `bind` creates the bind groups and uniforms
 * for one layer's buffers and shape; `encode` only records the dispatches.
 */

import { asBufferBinding, checkBindingSize, createUniformBuffer, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { countDispatch } from '../gpu/cost-counter';
import { ceilDiv, workgroupGrid } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import type { BindingKind } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import type { GgmlType } from '../quant/formats';
import { checkInteger, checkPowerOfTwoWorkgroup, checkU32Index } from './kernel-support';
import { decoderDefines, quantDecoder, rowBytes } from './quant-decoders';

/**
 * How logits become probabilities: 'softmax' over all experts (Mixtral's
 * llama.cpp form, Qwen, OLMoE), 'sigmoid' (DeepSeek-V3), or 'softmax-selected':
 * softmax over the k selected logits only (Mixtral, gpt-oss).
 */
export type RouterScoring = 'softmax' | 'sigmoid' | 'softmax-selected';

/** The largest k the top-k kernel supports. */
export const MAX_ROUTER_TOP_K = 16;

/** The id of a routed pair skipped by a routing knob: past every expert, so the expert FFN and the schedulers ignore it. */
export const MASKED_EXPERT_ID = 0xffffffff;

/**
 * Routing speed knobs, both off by default (and then the routing is exactly
 * what the model asks for). They look at the routing weights after scoring
 * and any renormalisation, before the constant scale (routed_scaling_factor,
 * a folded residual scale), so their meaning does not depend on that scale.
 * The heaviest expert is always kept; the kept weights are not renormalised
 * (a skipped expert's share of the sum is simply missing), and a skipped
 * pair is written as MASKED_EXPERT_ID with weight 0.
 */
export interface RoutingKnobs {
  /** Skip a routed expert whose weight is below this, in [0, 1); 0 (default): off. */
  minExpertWeight?: number;
  /**
   * Keep the fewest experts, heaviest first, whose weights sum to at least
   * this share of the sum of all k weights, in (0, 1]; 1 (default): off.
   * Where the k weights are normalised that sum is 1, so this is top-p routing.
   */
  topP?: number;
}

/** Why `knobs` are out of range, or undefined when they are fine. */
export function routingKnobsProblem(knobs: RoutingKnobs | undefined): string | undefined {
  const minWeight = knobs?.minExpertWeight;
  const topP = knobs?.topP;
  if (minWeight !== undefined && !(minWeight >= 0 && minWeight < 1)) return `minExpertWeight must be in [0, 1), got ${minWeight}`;
  if (topP !== undefined && !(topP > 0 && topP <= 1)) return `topP must be in (0, 1], got ${topP}`;
  return undefined;
}

const SCORING_CODES: Readonly<Record<RouterScoring, number>> = { softmax: 0, sigmoid: 1, 'softmax-selected': 2 };

export interface RouterVariant {
  /** Block format of the router matrix (GGUF keeps ffn_gate_inp in F32; F16 and BF16 work too). */
  weightType: GgmlType;
  scoring: RouterScoring;
  /** Divide the k weights by their sum (qwen3moe, DeepSeek-V3; not OLMoE or qwen2moe). */
  normalize: boolean;
  /** Whether a bias [E] is added to the logits (gpt-oss's ffn_gate_inp.bias). */
  hasLogitBias?: boolean;
  /** Whether a bias [E] is added to the probabilities for selection only (DeepSeek's exp_probs_b). */
  hasSelectionBias?: boolean;
  /** Whether to compute sigmoid(w . x), Qwen's shared-expert gate (ffn_gate_inp_shexp, f32 [hidden]). */
  hasSharedGate?: boolean;
  /** Threads per workgroup of the logits kernel (power of two, default 64). */
  workgroupSize?: number;
  /** Threads per router row (power of two <= workgroupSize, default 8). */
  threadsPerRow?: number;
}

export interface RouterShape {
  tokens: number;
  hidden: number;
  nExperts: number;
  topK: number;
  /** Multiplies every routing weight (DeepSeek's routed_scaling_factor). Default 1. */
  weightScale?: number;
  /** Routing knobs (RoutingKnobs); default off. */
  knobs?: RoutingKnobs;
}

export interface RouterBuffers {
  /** f32 [tokens, hidden] */
  x: BufferRef;
  /** The router matrix [nExperts, hidden], row-major, in the variant's weight type. */
  weight: BufferRef;
  /** Scratch, f32 [tokens, nExperts]; holds the (biased) logits afterwards. */
  logits: BufferRef;
  /** Written: [tokens, 2 topK] words, see `unpackRouting`. */
  routing: BufferRef;
  /** f32 [nExperts], with hasLogitBias. */
  logitBias?: BufferRef;
  /** f32 [nExperts], with hasSelectionBias. */
  selectionBias?: BufferRef;
  /** f32 [hidden], with hasSharedGate. */
  sharedGateWeight?: BufferRef;
  /** Written, [tokens, 2] words with hasSharedGate: the shared expert's routing pair (id 0, f32 gate). */
  sharedGate?: BufferRef;
}

/** A layer's buffers and shape, bound: encode it as often as needed. */
export interface RouterBinding {
  readonly shape: Readonly<RouterShape>;
  readonly logitsGroup: GPUBindGroup;
  readonly topKGroup: GPUBindGroup;
  /** Weight bytes the logits dispatch reads: the router matrix (and shared gate row) per token, the logit bias once. */
  readonly logitsWeightBytes: number;
  /** Weight bytes the top-k dispatch reads: the selection bias, once. */
  readonly topKWeightBytes: number;
  /** The binding's own uniform buffers: whoever keeps the binding destroys them with it. */
  readonly uniforms: readonly GPUBuffer[];
}

/** Token-major ids and weights, [tokens * topK] each, best first per token (a pair skipped by a knob: MASKED_EXPERT_ID, 0). */
export interface TopKRouting {
  ids: Uint32Array;
  weights: Float32Array;
}

const DEFAULT_WORKGROUP_SIZE = 64;
const DEFAULT_THREADS_PER_ROW = 8;
const TOPK_WORKGROUP_SIZE = 64;

/** Bytes of the routing buffer for `tokens` tokens: k ids and k weights each. */
export function routingBytes(tokens: number, topK: number): number {
  return tokens * topK * 8;
}

/** Decodes routing words (as read back) into ids and weights. */
export function unpackRouting(words: ArrayBuffer | Uint32Array, tokens: number, topK: number): TopKRouting {
  const u32 = words instanceof Uint32Array ? words : new Uint32Array(words);
  const f32 = new Float32Array(u32.buffer, u32.byteOffset, u32.length);
  if (u32.length < tokens * topK * 2) throw new RangeError(`routing holds ${u32.length} words, expected ${tokens * topK * 2}`);
  const ids = new Uint32Array(tokens * topK);
  const weights = new Float32Array(tokens * topK);
  for (let t = 0; t < tokens; t++) {
    ids.set(u32.subarray(2 * topK * t, 2 * topK * t + topK), t * topK);
    weights.set(f32.subarray(2 * topK * t + topK, 2 * topK * (t + 1)), t * topK);
  }
  return { ids, weights };
}

/** The routing words for given ids and weights (to feed the expert FFN without the router). */
export function packRouting(routing: TopKRouting, tokens: number, topK: number): Uint32Array {
  if (routing.ids.length !== tokens * topK || routing.weights.length !== tokens * topK) {
    throw new RangeError(`routing must hold ${tokens * topK} ids and weights`);
  }
  const words = new Uint32Array(tokens * topK * 2);
  const f32 = new Float32Array(words.buffer);
  for (let t = 0; t < tokens; t++) {
    words.set(routing.ids.subarray(t * topK, (t + 1) * topK), 2 * topK * t);
    f32.set(routing.weights.subarray(t * topK, (t + 1) * topK), 2 * topK * t + topK);
  }
  return words;
}

export class RouterKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly logitsPipeline: GPUComputePipeline,
    private readonly topKPipeline: GPUComputePipeline,
    readonly variant: Readonly<RouterVariant>,
    private readonly rowsPerWorkgroup: number,
  ) {}

  /** Builds (or takes from the device's cache) both pipelines of `variant`. */
  static async create(device: GPUDevice, variant: RouterVariant): Promise<RouterKernel> {
    const decoder = quantDecoder(variant.weightType, 'router');
    const workgroupSize = variant.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    const threadsPerRow = variant.threadsPerRow ?? DEFAULT_THREADS_PER_ROW;
    checkPowerOfTwoWorkgroup(workgroupSize, device.limits.maxComputeInvocationsPerWorkgroup, 'router');
    if (!Number.isInteger(threadsPerRow) || threadsPerRow < 1 || threadsPerRow > workgroupSize || (threadsPerRow & (threadsPerRow - 1)) !== 0) {
      throw new RangeError(`router threadsPerRow must be a power of two <= ${workgroupSize}, got ${threadsPerRow}`);
    }
    const hasLogitBias = variant.hasLogitBias ?? false;
    const hasSelectionBias = variant.hasSelectionBias ?? false;
    const hasSharedGate = variant.hasSharedGate ?? false;
    const cache = pipelineCacheFor(device);

    const logitsBindings: BindingKind[] = ['uniform', 'read-only-storage', 'read-only-storage', 'storage'];
    const logitsDefines: Record<string, string | number | boolean> = {
      ...decoderDefines(variant.weightType),
      HAS_LOGIT_BIAS: hasLogitBias,
      HAS_SHARED_GATE: hasSharedGate,
    };
    if (hasLogitBias) logitsDefines.LOGIT_BIAS_BINDING = logitsBindings.push('read-only-storage') - 1;
    if (hasSharedGate) logitsDefines.SHARED_GATE_BINDING = logitsBindings.push('read-only-storage', 'storage') - 2;
    const logitsKey = {
      op: 'router_logits',
      weight: decoder.name,
      wg: workgroupSize,
      tpr: threadsPerRow,
      bias: hasLogitBias,
      shared: hasSharedGate,
    };
    const topKKey = {
      op: 'router_topk',
      scoring: variant.scoring,
      norm: variant.normalize,
      selbias: hasSelectionBias,
      wg: TOPK_WORKGROUP_SIZE,
    };
    const [logitsPipeline, topKPipeline] = await Promise.all([
      cache.getOrCreate(logitsKey, (label) =>
        createComputePipeline(device, {
          label,
          code: loadShader('router_logits.wgsl', logitsDefines),
          bindings: logitsBindings,
          constants: { WG: workgroupSize, TPR: threadsPerRow },
        }),
      ),
      cache.getOrCreate(topKKey, (label) =>
        createComputePipeline(device, {
          label,
          code: loadShader('router_topk.wgsl', { HAS_SELECTION_BIAS: hasSelectionBias }),
          bindings: ['uniform', 'read-only-storage', 'storage', ...(hasSelectionBias ? ['read-only-storage' as const] : [])],
          constants: {
            WG: TOPK_WORKGROUP_SIZE,
            SCORING: SCORING_CODES[variant.scoring],
            NORMALIZE: variant.normalize ? 1 : 0,
          },
        }),
      ),
    ]);
    return new RouterKernel(device, logitsPipeline, topKPipeline, { ...variant }, workgroupSize / threadsPerRow);
  }

  /** Labels of the two pipelines, logits then top-k. */
  get labels(): [string, string] {
    return [this.logitsPipeline.label, this.topKPipeline.label];
  }

  /** Checks `buffers` against `shape` and creates the bind groups and uniforms for them. */
  bind(buffers: RouterBuffers, shape: RouterShape): RouterBinding {
    this.check(buffers, shape);
    const { tokens, hidden, nExperts, topK } = shape;
    const label = this.logitsPipeline.label;
    const logitsParams = packUniformScalars([
      ['u32', tokens],
      ['u32', nExperts],
      ['u32', hidden],
    ]);
    const logitsBuffers: BufferRef[] = [buffers.x, buffers.weight, buffers.logits];
    if (buffers.logitBias) logitsBuffers.push(buffers.logitBias);
    if (buffers.sharedGateWeight && buffers.sharedGate) logitsBuffers.push(buffers.sharedGateWeight, buffers.sharedGate);
    const topKParams = packUniformScalars([
      ['u32', tokens],
      ['u32', nExperts],
      ['u32', topK],
      ['f32', shape.weightScale ?? 1],
      ['f32', shape.knobs?.minExpertWeight ?? 0],
      ['f32', shape.knobs?.topP ?? 1],
    ]);
    const topKBuffers: BufferRef[] = [buffers.logits, buffers.routing];
    if (buffers.selectionBias) topKBuffers.push(buffers.selectionBias);
    const matrixBytes = nExperts * rowBytes(quantDecoder(this.variant.weightType), hidden) + (buffers.sharedGateWeight ? hidden * 4 : 0);
    const logitsUniforms = createUniformBuffer(this.device, logitsParams, `${label} params`);
    const topKUniforms = createUniformBuffer(this.device, topKParams, `${this.topKPipeline.label} params`);
    return {
      shape: { ...shape },
      logitsGroup: this.bindGroup(this.logitsPipeline, logitsUniforms, logitsBuffers, label),
      topKGroup: this.bindGroup(this.topKPipeline, topKUniforms, topKBuffers, this.topKPipeline.label),
      uniforms: [logitsUniforms, topKUniforms],
      logitsWeightBytes: tokens * matrixBytes + (buffers.logitBias ? nExperts * 4 : 0),
      topKWeightBytes: buffers.selectionBias ? nExperts * 4 : 0,
    };
  }

  /** Records the two dispatches: logits (and shared gate), then top-k. */
  encode(pass: GPUComputePassEncoder, binding: RouterBinding): void {
    const { tokens, nExperts } = binding.shape;
    if (tokens === 0) return;
    const rows = nExperts + (this.variant.hasSharedGate ? 1 : 0);
    const maxPerDimension = this.device.limits.maxComputeWorkgroupsPerDimension;
    pass.setPipeline(this.logitsPipeline);
    pass.setBindGroup(0, binding.logitsGroup);
    pass.dispatchWorkgroups(...workgroupGrid(tokens * ceilDiv(rows, this.rowsPerWorkgroup), maxPerDimension));
    countDispatch(this.device, binding.logitsWeightBytes);
    pass.setPipeline(this.topKPipeline);
    pass.setBindGroup(0, binding.topKGroup);
    pass.dispatchWorkgroups(...workgroupGrid(ceilDiv(tokens, TOPK_WORKGROUP_SIZE), maxPerDimension));
    countDispatch(this.device, binding.topKWeightBytes);
  }

  private bindGroup(pipeline: GPUComputePipeline, uniforms: GPUBuffer, buffers: BufferRef[], label: string): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniforms } },
        ...buffers.map((buffer, index) => ({ binding: index + 1, resource: asBufferBinding(buffer) })),
      ],
    });
  }

  private check(buffers: RouterBuffers, shape: RouterShape): void {
    const { tokens, hidden, nExperts, topK } = shape;
    const name = this.logitsPipeline.label;
    checkInteger(tokens, 'router tokens');
    checkInteger(hidden, 'router hidden', 1);
    checkInteger(nExperts, 'router nExperts', 1);
    if (!Number.isInteger(topK) || topK < 1 || topK > Math.min(nExperts, MAX_ROUTER_TOP_K)) {
      throw new RangeError(`router topK must be an integer in 1..${Math.min(nExperts, MAX_ROUTER_TOP_K)}, got ${topK}`);
    }
    if (!Number.isFinite(shape.weightScale ?? 1)) throw new RangeError(`router weightScale must be finite, got ${shape.weightScale}`);
    const knobsProblem = routingKnobsProblem(shape.knobs);
    if (knobsProblem) throw new RangeError(`router ${knobsProblem}`);
    const weightRowBytes = rowBytes(quantDecoder(this.variant.weightType), hidden);
    checkU32Index(nExperts * weightRowBytes, `${name}: the router matrix`);
    checkU32Index(tokens * Math.max(hidden, nExperts, 2 * topK), `${name}: ${tokens} tokens`);
    checkBindingSize(buffers.x, tokens * hidden * 4, `${name} x`);
    checkBindingSize(buffers.weight, nExperts * weightRowBytes, `${name} weight`);
    checkBindingSize(buffers.logits, tokens * nExperts * 4, `${name} logits`);
    checkBindingSize(buffers.routing, routingBytes(tokens, topK), `${name} routing`);
    checkOptional(buffers.logitBias, this.variant.hasLogitBias, nExperts * 4, `${name} logitBias`);
    checkOptional(buffers.selectionBias, this.variant.hasSelectionBias, nExperts * 4, `${name} selectionBias`);
    checkOptional(buffers.sharedGateWeight, this.variant.hasSharedGate, hidden * 4, `${name} sharedGateWeight`);
    checkOptional(buffers.sharedGate, this.variant.hasSharedGate, tokens * 8, `${name} sharedGate`);
  }
}

/** A buffer must be given exactly when the variant has it, and be large enough. */
function checkOptional(ref: BufferRef | undefined, expected: boolean | undefined, neededBytes: number, what: string): void {
  if ((ref !== undefined) !== (expected ?? false)) {
    throw new Error(`${what} must be given exactly when the variant has it`);
  }
  if (ref) checkBindingSize(ref, neededBytes, what);
}
