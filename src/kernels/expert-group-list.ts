/**
 * The grouped expert FFN's group list, built on the GPU
 * (shaders/expert_group_list.wgsl) from the router's ids and the expert slot
 * table: prefill gathers its tokens by expert with no routing read back.
 * The list has the layout `packGroupList` writes (src/kernels/expert-slots.ts),
 * with the pair indices at a fixed offset after room for the most groups.
 *
 * The CPU does not learn how many groups there are: `maxGroups` bounds them,
 * and the FFN's grid covers the bound (workgroups past the list's count do
 * nothing).
 */

import { checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import { groupListWords, SLOT_REF_BYTES } from './expert-slots';
import { checkInteger, checkU32Index, encodeDispatch } from './kernel-support';
import { routingBytes } from './router';

/** The most experts per layer the kernel counts in workgroup memory. */
export const MAX_GROUP_LIST_EXPERTS = 512;
const WORKGROUP_SIZE = 256;

export interface ExpertGroupListBuffers {
  /** The router's output: [tokens, 2 topK] words (ids, then weights). */
  routing: BufferRef;
  /** [layers, nExperts] slot refs (the expert table). */
  table: BufferRef;
  /** Written: groupListWords(tokens * topK) words. */
  list: BufferRef;
}

export interface ExpertGroupListShape {
  tokens: number;
  topK: number;
  /** Experts per layer: ids at or past this (null or masked) are left out. */
  nExperts: number;
  /** The layer whose table row to read. */
  layer: number;
  /** Most pairs per group (the FFN kernel's pairTile). */
  tile: number;
}

/**
 * The most groups `pairs` routed pairs over `nExperts` experts can form with
 * groups of at most `tile`: each used expert adds at most one partial group,
 * so u experts give at most u + floor((pairs - u) / tile), largest at
 * u = min(nExperts, pairs).
 */
export function maxGroups(pairs: number, nExperts: number, tile: number): number {
  const used = Math.min(nExperts, pairs);
  return used + Math.floor((pairs - used) / tile);
}

/** The groups the list holds for these routed ids (ids at or past nExperts left out): what the CPU can count when it knows the routing. */
export function countGroups(ids: ArrayLike<number>, nExperts: number, tile: number): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) if (ids[i]! < nExperts) counts.set(ids[i]!, (counts.get(ids[i]!) ?? 0) + 1);
  let groups = 0;
  for (const count of counts.values()) groups += Math.ceil(count / tile);
  return groups;
}

export class ExpertGroupListKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(device: GPUDevice): Promise<ExpertGroupListKernel> {
    const workgroupSize = Math.min(WORKGROUP_SIZE, device.limits.maxComputeInvocationsPerWorkgroup);
    const pipeline = await pipelineCacheFor(device).getOrCreate({ op: 'expert_group_list', wg: workgroupSize }, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('expert_group_list.wgsl'),
        bindings: ['uniform', 'read-only-storage', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize, MAX_EXPERTS: MAX_GROUP_LIST_EXPERTS },
      }),
    );
    return new ExpertGroupListKernel(device, pipeline);
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the build of the list into `pass`; returns maxGroups for the shape, the grid the FFN must cover. */
  encode(pass: GPUComputePassEncoder, buffers: ExpertGroupListBuffers, shape: ExpertGroupListShape): number {
    const { tokens, topK, nExperts, layer, tile } = shape;
    checkInteger(tokens, 'group list tokens');
    checkInteger(topK, 'group list topK', 1);
    checkInteger(nExperts, 'group list nExperts', 1);
    checkInteger(layer, 'group list layer');
    checkInteger(tile, 'group list tile', 1);
    if (nExperts > MAX_GROUP_LIST_EXPERTS) throw new RangeError(`group list supports at most ${MAX_GROUP_LIST_EXPERTS} experts per layer, got ${nExperts}`);
    const pairs = tokens * topK;
    checkU32Index(groupListWords(pairs), 'group list');
    checkBindingSize(buffers.routing, routingBytes(tokens, topK), 'group list routing');
    checkBindingSize(buffers.table, (layer + 1) * nExperts * SLOT_REF_BYTES, 'group list expert table');
    checkBindingSize(buffers.list, groupListWords(pairs) * 4, 'group list');
    if (pairs === 0) return 0;
    const uniforms = packUniformScalars([
      ['u32', pairs],
      ['u32', topK],
      ['u32', nExperts],
      ['u32', layer * nExperts],
      ['u32', tile],
    ]);
    encodeDispatch(this.device, pass, this.pipeline, uniforms, [buffers.routing, buffers.table, buffers.list], 1);
    return maxGroups(pairs, nExperts, tile);
  }
}
