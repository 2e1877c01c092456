/**
 * What the GPU forward pass writes besides attention (whose block keeps its
 * own scratch and KV cache): activation buffers sized for the largest batch
 * of tokens and the routing buffers.
 * Shapes are noted per buffer ([tokens, width] row-major f32 unless said).
 */

import { createEmptyStorageBuffer, createStorageBuffer } from '../gpu/buffers';
import { groupListWords } from '../kernels/expert-slots';
import { routingBytes } from '../kernels/router';
import { topKResultBytes } from '../kernels/sample-topk';
import type { ModelConfig } from './config';

export interface RunStateSizes {
  /** Tokens of the largest batch (B below). */
  maxBatchTokens: number;
  /** Rows of logits the forward pass can write at once (L below, at most B): batches that return every row are cut to it. */
  logitRows: number;
  /** Whether batches run the routed experts grouped by expert (then pairOutput and groupList hold B * topK pairs). */
  grouped: boolean;
  /** Positions the KV cache holds. */
  maxContext: number;
  /** Widest FFN any single expert slot has (routed, shared or dense). */
  maxFfnWidth: number;
  /** Most sampling candidates. */
  maxTopK: number;
}

export class RunState {
  readonly ids: GPUBuffer; // u32 [B] token ids of the batch
  readonly positions: GPUBuffer; // u32 [B] their positions
  readonly x: GPUBuffer; // [B, hidden] residual stream
  readonly xb: GPUBuffer; // [B, hidden] normalised input of the current sub-block
  readonly routerLogits: GPUBuffer; // [B, nExpert]
  readonly routing: GPUBuffer; // [B, 2 topK] words: expert ids, then f32 weights
  readonly sharedRouting: GPUBuffer; // [B, 2] words: id 0, weight = the shared expert's gate (the router writes it)
  readonly unitRouting: GPUBuffer; // [B, 2] words: id 0, weight = the residual scale (an ungated shared expert or a dense FFN as one expert)
  readonly ffnHidden: GPUBuffer; // [B * topK, maxFfnWidth] expert activations
  readonly pairOutput: GPUBuffer; // [B * topK, hidden] each routed pair's expert output (grouped prefill)
  readonly groupList: GPUBuffer; // u32 groupListWords(B * topK): routed pairs gathered by expert (grouped prefill)
  readonly logits: GPUBuffer; // [L, vocab]
  readonly argmax: GPUBuffer; // u32 [1]
  readonly topK: GPUBuffer; // u32 [2 + 2 maxTopK] sampling candidates

  constructor(
    device: GPUDevice,
    readonly config: ModelConfig,
    readonly sizes: RunStateSizes,
  ) {
    const B = sizes.maxBatchTokens;
    const c = config;
    const topK = Math.max(1, c.nExpertUsed);
    const f32 = (elements: number, label: string): GPUBuffer => createEmptyStorageBuffer(device, elements * 4, label);
    this.ids = f32(B, 'ids');
    this.positions = f32(B, 'positions');
    this.x = f32(B * c.hidden, 'x');
    this.xb = f32(B * c.hidden, 'xb');
    this.routerLogits = f32(B * Math.max(1, c.nExpert), 'router logits');
    this.routing = createEmptyStorageBuffer(device, routingBytes(B, topK), 'routing');
    this.sharedRouting = createEmptyStorageBuffer(device, routingBytes(B, 1), 'shared routing');
    this.unitRouting = createStorageBuffer(device, unitRoutingWords(B, c.scales.residual), 'unit routing');
    this.ffnHidden = f32(B * topK * sizes.maxFfnWidth, 'ffn hidden');
    // Without grouping (one-token batches among them) the FFN runs per token: the grouped buffers stay placeholders.
    const groupedPairs = sizes.grouped ? B * topK : 1;
    this.pairOutput = f32(groupedPairs * c.hidden, 'pair output');
    this.groupList = createEmptyStorageBuffer(device, groupListWords(groupedPairs) * 4, 'group list');
    this.logits = f32(sizes.logitRows * c.vocabSize, 'logits');
    this.argmax = f32(1, 'argmax');
    this.topK = createEmptyStorageBuffer(device, topKResultBytes(sizes.maxTopK), 'top-k');
  }

  destroy(): void {
    for (const value of Object.values(this)) {
      if (Array.isArray(value)) value.forEach((b) => isBuffer(b) && b.destroy());
      else if (isBuffer(value)) value.destroy();
    }
  }
}

function isBuffer(value: unknown): value is GPUBuffer {
  return typeof value === 'object' && value !== null && 'destroy' in value && 'mapAsync' in value;
}

/** [tokens, 2] routing words choosing expert 0 with `weight` for every token. */
function unitRoutingWords(tokens: number, weight: number): Uint32Array {
  const words = new Uint32Array(tokens * 2);
  const weights = new Float32Array(words.buffer);
  for (let t = 0; t < tokens; t++) weights[2 * t + 1] = weight;
  return words;
}
