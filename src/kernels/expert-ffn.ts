/**
 * Gated expert FFN over experts held in slab slots (shaders/expert_ffn_*.wgsl):
 *
 *   y[t] += sum_j w_tj (D_e (act(G_e x[t] + bg_e, U_e x[t] + bu_e)) + bd_e),  e = id_tj
 *
 * for the router's ids and weights (src/kernels/router.ts's routing buffer).
 * Semantics: src/ref/expert-ffn.ts. Slots, slabs, slot refs and group lists:
 * src/kernels/expert-slots.ts.
 *
 * Modes (ExpertFfnMode), all fed by the same routing buffer:
 *   'pair-list'     decode (or a few tokens, each reading its own experts):
 *                   `slots` holds a slot ref per routed pair, written with
 *                   writeBuffer after the routing was read back. 2 dispatches.
 *   'expert-table'  as 'pair-list', but `slots` is a [layers, nExperts] table
 *                   indexed on the GPU by the routed ids: no readback at all
 *                   when every expert is resident. 2 dispatches.
 *   'grouped'       prefill: `slots` is a group list (pairs gathered by
 *                   expert: built on the GPU by expert-group-list.ts from
 *                   the routing and the expert table, or on the CPU with
 *                   `groupPairsByExpert` + `packGroupList`), so each
 *                   expert's weights are read once per tile of tokens.
 *                   3 dispatches (gate/up, down, combine).
 * Changing which experts are resident changes only the contents of `slots`:
 * no pipeline or bind group is rebuilt. Decode and grouped modes give the
 * same bits for the same tokens.
 */

import { asBufferBinding, checkBindingSize, createUniformBuffer, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { countDispatch } from '../gpu/cost-counter';
import { ceilDiv, workgroupGrid } from '../gpu/dispatch';
import { isSoftwareDevice } from '../gpu/adapter-kind';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import type { BindingKind } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { checkInteger, checkPowerOfTwoWorkgroup, checkU32Index } from './kernel-support';
import { groupListWords, SLOT_REF_BYTES } from './expert-slots';
import type { ExpertSlotLayout } from './expert-slots';
import { decoderDefines, quantDecoder } from './quant-decoders';
import { routingBytes } from './router';

export type FfnActivation = 'silu' | 'gelu' | 'swiglu-oai';
export type ExpertFfnMode = 'pair-list' | 'expert-table' | 'grouped';

/** Slabs one dispatch can bind: 8 in the shaders, fewer where maxStorageBuffersPerShaderStage is lower. */
export const MAX_SLAB_BINDINGS = 8;
/** The largest k the FFN supports (the down kernel keeps k partial sums per thread). */
export const MAX_FFN_TOP_K = 16;

/** gpt-oss's SwiGLU constants (llama.cpp's swiglu_oai as gpt-oss calls it). */
export const SWIGLU_OAI_ALPHA = 1.702;
export const SWIGLU_OAI_LIMIT = 7.0;

const MODE_CODES: Readonly<Record<ExpertFfnMode, number>> = { 'pair-list': 0, 'expert-table': 1, grouped: 2 };
const ACTIVATION_CODES: Readonly<Record<FfnActivation, number>> = { silu: 0, gelu: 1, 'swiglu-oai': 2 };
/** Storage buffers besides the slabs in the gate/up and down kernels. */
const NON_SLAB_STORAGE_BUFFERS = 4;
const COMBINE_WORKGROUP_SIZE = 64;

export interface ExpertFfnVariant {
  /** The slot layout: H, F, block formats, biases. */
  layout: ExpertSlotLayout;
  activation: FfnActivation;
  topK: number;
  mode: ExpertFfnMode;
  /** Slab buffers bound at once, 1..MAX_SLAB_BINDINGS (and maxStorageBuffersPerShaderStage - 4). */
  slabCount: number;
  /** 'grouped': most pairs per group (default 8). */
  pairTile?: number;
  /** Threads per workgroup, a power of two (default 64). */
  workgroupSize?: number;
  /** Threads per matrix row, a power of two <= workgroupSize / 2 (default 8; 1 on a software adapter, see src/gpu/adapter-kind.ts). */
  threadsPerRow?: number;
}

export interface ExpertFfnShape {
  tokens: number;
  /** Ids at or past this are null experts: they contribute nothing. */
  nRealExperts: number;
  /** 'expert-table': the layer whose table row to read (default 0). */
  layer?: number;
  /** 'expert-table': entries per layer in the table (the model's expert count, default nRealExperts). */
  nExperts?: number;
}

export interface ExpertFfnBuffers {
  /** f32 [tokens, H], the FFN input (normalised hidden state). */
  x: BufferRef;
  /** f32 [tokens, H], the residual: y += the MoE output. */
  y: BufferRef;
  /** The router's output: [tokens, 2 topK] words (ids, then weights). */
  routing: BufferRef;
  /** Slot refs per pair ('pair-list'), per (layer, expert) ('expert-table'), or a group list ('grouped'). */
  slots: BufferRef;
  /** Scratch f32 [tokens * topK, F]: the activations h. */
  hidden: BufferRef;
  /** 'grouped' scratch f32 [tokens * topK, H]: each pair's down output before the weighted sum. */
  pairOutput?: BufferRef;
  /** The slab buffers, slabCount of them; a slot ref's slab indexes this list. */
  slabs: readonly BufferRef[];
}

/** One layer's buffers and shape, bound: encode it each token; rewrite `slots` between submits. */
export interface ExpertFfnBinding {
  readonly shape: Readonly<ExpertFfnShape>;
  readonly gateUpGroup: GPUBindGroup;
  readonly downGroup: GPUBindGroup;
  readonly combineGroup?: GPUBindGroup;
  /** The binding's own uniform buffer: whoever keeps the binding destroys it with it. */
  readonly uniforms: GPUBuffer;
}

const DEFAULT_WORKGROUP_SIZE = 64;
const DEFAULT_THREADS_PER_ROW = 8;
const DEFAULT_PAIR_TILE = 8;

/** Scratch sizes for `tokens` tokens: `hidden` always, `pairOutput` in grouped mode. */
export function expertFfnScratchBytes(variant: Pick<ExpertFfnVariant, 'layout' | 'topK'>, tokens: number): { hidden: number; pairOutput: number } {
  const pairs = tokens * variant.topK;
  return { hidden: pairs * variant.layout.ffn * 4, pairOutput: pairs * variant.layout.hidden * 4 };
}

export class ExpertFfnKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly gateUpPipeline: GPUComputePipeline,
    private readonly downPipeline: GPUComputePipeline,
    private readonly combinePipeline: GPUComputePipeline | undefined,
    readonly variant: Readonly<ExpertFfnVariant>,
    /** Most pairs per group in 'grouped' mode (1 otherwise): build group lists with this tile. */
    readonly pairTile: number,
    /** Rows of the down projection per workgroup; gate/up takes half as many (a gate and an up row each). */
    private readonly rowsPerWorkgroup: number,
  ) {}

  /** Builds (or takes from the device's cache) the pipelines of `variant`. */
  static async create(device: GPUDevice, variant: ExpertFfnVariant): Promise<ExpertFfnKernel> {
    const { layout, slabCount } = variant;
    const workgroupSize = variant.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    const threadsPerRow = variant.threadsPerRow ?? (isSoftwareDevice(device) ? 1 : DEFAULT_THREADS_PER_ROW);
    const pairTile = variant.mode === 'grouped' ? (variant.pairTile ?? DEFAULT_PAIR_TILE) : 1;
    const partials = Math.max(MAX_FFN_TOP_K, pairTile);
    checkVariant(device, variant, workgroupSize, threadsPerRow, pairTile, partials);
    const gateUpDecoder = quantDecoder(layout.gateUpType, 'expert gate/up');
    const downDecoder = quantDecoder(layout.downType, 'expert down');

    const slabDefines: Record<string, boolean> = {};
    for (let s = 1; s < MAX_SLAB_BINDINGS; s++) slabDefines[`HAS_SLAB_${s}`] = s < slabCount;
    const slabBindings: BindingKind[] = Array.from({ length: slabCount }, () => 'read-only-storage');
    const bindings: BindingKind[] = ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', ...slabBindings];
    // Mode, activation and biases are uniforms, so every variant with the same formats and tile shares these pipelines.
    const keyParts = { tile: pairTile, slabs: slabCount, wg: workgroupSize, tpr: threadsPerRow };
    const geometry = { WG: workgroupSize, TPR: threadsPerRow };
    const cache = pipelineCacheFor(device);
    const build = (fileName: string, defines: Record<string, string | number | boolean>, constants: Record<string, number>) =>
      (label: string) =>
        createComputePipeline(device, { label, code: loadShader(fileName, { ...defines, PAIR_TILE: pairTile, ...slabDefines }), bindings, constants });

    const [gateUpPipeline, downPipeline, combinePipeline] = await Promise.all([
      cache.getOrCreate(
        { op: 'expert_ffn_gate_up', weights: gateUpDecoder.name, ...keyParts },
        build('expert_ffn_gate_up.wgsl', decoderDefines(layout.gateUpType), geometry),
      ),
      cache.getOrCreate(
        { op: 'expert_ffn_down', weights: downDecoder.name, ...keyParts },
        build('expert_ffn_down.wgsl', decoderDefines(layout.downType), { ...geometry, PARTIALS: partials }),
      ),
      variant.mode === 'grouped'
        ? cache.getOrCreate({ op: 'expert_ffn_combine', wg: COMBINE_WORKGROUP_SIZE }, (label) =>
            createComputePipeline(device, {
              label,
              code: loadShader('expert_ffn_combine.wgsl'),
              bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'storage'],
              constants: { WG: COMBINE_WORKGROUP_SIZE },
            }),
          )
        : undefined,
    ]);
    return new ExpertFfnKernel(device, gateUpPipeline, downPipeline, combinePipeline, { ...variant }, pairTile, workgroupSize / threadsPerRow);
  }

  /** Labels of the pipelines, in dispatch order. */
  get labels(): string[] {
    return [this.gateUpPipeline, this.downPipeline, this.combinePipeline].filter((p) => p !== undefined).map((p) => p.label);
  }

  /** Checks `buffers` against `shape` and creates the bind groups and uniforms for them. */
  bind(buffers: ExpertFfnBuffers, shape: ExpertFfnShape): ExpertFfnBinding {
    this.check(buffers, shape);
    const { layout, topK } = this.variant;
    const biases = layout.biases;
    const params = packUniformScalars([
      ['u32', layout.hidden],
      ['u32', layout.ffn],
      ['u32', topK],
      ['u32', shape.tokens * topK],
      ['u32', shape.nRealExperts],
      ['u32', (shape.layer ?? 0) * (shape.nExperts ?? shape.nRealExperts)],
      ['u32', layout.gate.offsetBytes],
      ['u32', layout.up.offsetBytes],
      ['u32', layout.down.offsetBytes],
      ['u32', biases?.gate.offsetBytes ?? 0],
      ['u32', biases?.up.offsetBytes ?? 0],
      ['u32', biases?.down.offsetBytes ?? 0],
      ['u32', MODE_CODES[this.variant.mode]],
      ['u32', ACTIVATION_CODES[this.variant.activation]],
      ['u32', biases ? 1 : 0],
      ['f32', SWIGLU_OAI_ALPHA],
      ['f32', SWIGLU_OAI_LIMIT],
    ]);
    const uniforms = createUniformBuffer(this.device, params, `${this.gateUpPipeline.label} params`);
    const grouped = this.variant.mode === 'grouped';
    const downOutput = grouped ? buffers.pairOutput! : buffers.y;
    const { x, routing, slots, hidden, slabs } = buffers;
    return {
      shape: { ...shape },
      gateUpGroup: this.bindGroup(this.gateUpPipeline, uniforms, [x, routing, slots, hidden, ...slabs]),
      downGroup: this.bindGroup(this.downPipeline, uniforms, [hidden, routing, slots, downOutput, ...slabs]),
      combineGroup: this.combinePipeline && this.bindGroup(this.combinePipeline, uniforms, [buffers.pairOutput!, routing, buffers.y]),
      uniforms,
    };
  }

  /**
   * Records the FFN: 2 dispatches, or 3 in 'grouped' mode, where `groupCount`
   * sizes the grid: the number of groups in the list now in `slots`, or a
   * bound on it when the list is built on the GPU (maxGroups; workgroups past
   * the list's count do nothing, and the weight bytes counted are a bound too).
   * `liveTokens` (default all) is how many tokens' routing is not masked, for
   * the weight bytes counted: each live token reads its k experts' gate, up
   * and down (a group its expert's, once), null experts included, since which
   * ids are null is known only on the GPU.
   */
  encode(pass: GPUComputePassEncoder, binding: ExpertFfnBinding, groupCount?: number, liveTokens = binding.shape.tokens): void {
    const { tokens } = binding.shape;
    const { layout, topK, mode } = this.variant;
    if (mode === 'grouped') {
      if (groupCount === undefined) throw new Error(`${this.gateUpPipeline.label}: grouped mode needs the group count`);
      checkInteger(groupCount, 'groupCount');
      if (groupCount > tokens * topK) throw new RangeError(`groupCount ${groupCount} exceeds the ${tokens * topK} routed pairs`);
    }
    if (tokens === 0 || groupCount === 0) return;
    const gateUpWork = mode === 'grouped' ? groupCount! : tokens * topK;
    const downWork = mode === 'grouped' ? groupCount! : tokens;
    const reads = mode === 'grouped' ? groupCount! : liveTokens * topK;
    const biases = layout.biases;
    const gateUpBytes = layout.gate.sizeBytes + layout.up.sizeBytes + (biases ? biases.gate.sizeBytes + biases.up.sizeBytes : 0);
    const downBytes = layout.down.sizeBytes + (biases ? biases.down.sizeBytes : 0);
    this.dispatch(pass, this.gateUpPipeline, binding.gateUpGroup, gateUpWork * ceilDiv(layout.ffn, this.rowsPerWorkgroup / 2), reads * gateUpBytes);
    this.dispatch(pass, this.downPipeline, binding.downGroup, downWork * ceilDiv(layout.hidden, this.rowsPerWorkgroup), reads * downBytes);
    if (this.combinePipeline && binding.combineGroup) {
      this.dispatch(pass, this.combinePipeline, binding.combineGroup, ceilDiv(tokens * layout.hidden, COMBINE_WORKGROUP_SIZE), 0);
    }
  }

  private dispatch(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, group: GPUBindGroup, workgroups: number, weightBytes: number): void {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...workgroupGrid(workgroups, this.device.limits.maxComputeWorkgroupsPerDimension));
    countDispatch(this.device, weightBytes);
  }

  private bindGroup(pipeline: GPUComputePipeline, uniforms: GPUBuffer, buffers: readonly BufferRef[]): GPUBindGroup {
    return this.device.createBindGroup({
      label: pipeline.label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniforms } },
        ...buffers.map((buffer, index) => ({ binding: index + 1, resource: asBufferBinding(buffer) })),
      ],
    });
  }

  private check(buffers: ExpertFfnBuffers, shape: ExpertFfnShape): void {
    const { layout, topK, mode, slabCount } = this.variant;
    const name = this.gateUpPipeline.label;
    const { tokens, nRealExperts } = shape;
    checkInteger(tokens, 'expert FFN tokens');
    checkInteger(nRealExperts, 'expert FFN nRealExperts');
    const pairs = tokens * topK;
    checkU32Index(pairs * Math.max(layout.ffn, layout.hidden), `${name}: ${tokens} tokens`);
    checkBindingSize(buffers.x, tokens * layout.hidden * 4, `${name} x`);
    checkBindingSize(buffers.y, tokens * layout.hidden * 4, `${name} y`);
    checkBindingSize(buffers.routing, routingBytes(tokens, topK), `${name} routing`);
    checkBindingSize(buffers.hidden, pairs * layout.ffn * 4, `${name} hidden`);
    if (mode === 'grouped') {
      if (!buffers.pairOutput) throw new Error(`${name}: grouped mode needs a pairOutput buffer`);
      checkBindingSize(buffers.pairOutput, pairs * layout.hidden * 4, `${name} pairOutput`);
      checkBindingSize(buffers.slots, groupListWords(pairs) * 4, `${name} group list`);
    } else if (mode === 'expert-table') {
      const layer = shape.layer ?? 0;
      const nExperts = shape.nExperts ?? nRealExperts;
      checkInteger(layer, 'expert FFN layer');
      checkInteger(nExperts, 'expert FFN nExperts', 1);
      checkBindingSize(buffers.slots, (layer + 1) * nExperts * SLOT_REF_BYTES, `${name} expert table`);
    } else {
      checkBindingSize(buffers.slots, pairs * SLOT_REF_BYTES, `${name} pair slot list`);
    }
    if (buffers.slabs.length !== slabCount) throw new Error(`${name}: expected ${slabCount} slab buffers, got ${buffers.slabs.length}`);
    buffers.slabs.forEach((slab, s) => checkBindingSize(slab, layout.slotBytes, `${name} slab ${s}`));
  }
}

function checkVariant(
  device: GPUDevice,
  variant: ExpertFfnVariant,
  workgroupSize: number,
  threadsPerRow: number,
  pairTile: number,
  partials: number,
): void {
  const { limits } = device;
  checkPowerOfTwoWorkgroup(workgroupSize, limits.maxComputeInvocationsPerWorkgroup, 'expert FFN');
  // gate/up pairs a gate row with an up row, so a workgroup needs at least two rows.
  const isPowerOfTwo = Number.isInteger(threadsPerRow) && threadsPerRow >= 1 && (threadsPerRow & (threadsPerRow - 1)) === 0;
  if (!isPowerOfTwo || threadsPerRow > workgroupSize / 2) {
    throw new RangeError(`expert FFN threadsPerRow must be a power of two <= workgroupSize / 2 = ${workgroupSize / 2}, got ${threadsPerRow}`);
  }
  if (!Number.isInteger(variant.topK) || variant.topK < 1 || variant.topK > MAX_FFN_TOP_K) {
    throw new RangeError(`expert FFN topK must be an integer in 1..${MAX_FFN_TOP_K}, got ${variant.topK}`);
  }
  checkInteger(pairTile, 'expert FFN pairTile', 1);
  const maxSlabs = Math.min(MAX_SLAB_BINDINGS, limits.maxStorageBuffersPerShaderStage - NON_SLAB_STORAGE_BUFFERS);
  if (!Number.isInteger(variant.slabCount) || variant.slabCount < 1 || variant.slabCount > maxSlabs) {
    throw new RangeError(`expert FFN slabCount must be an integer in 1..${maxSlabs} on this device, got ${variant.slabCount}`);
  }
  // gate/up keeps pairTile sums per thread, down keeps `partials`.
  const workgroupBytes = workgroupSize * 4 * partials;
  if (workgroupBytes > limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(
      `expert FFN needs ${workgroupBytes} bytes of workgroup memory (workgroupSize ${workgroupSize}, pairTile ${pairTile}); ` +
        `the device allows ${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
}
