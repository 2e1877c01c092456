/**
 * Builds a routing trace (src/experts/trace.ts) from what an engine's routers
 * chose, batch by batch: the forward pass hands over each MoE layer's routing
 * for all tokens of a batch (and a pre-gate's guesses, when it made any), and
 * the recorder turns it into rows per token. Layers are the model's MoE
 * layers in order (dense layers have no routing to record).
 */

import type { RoutingTrace, TokenRouting } from './trace';

export interface RecorderShape {
  name: string;
  /** MoE layers. */
  nLayers: number;
  nExperts: number;
  topK: number;
  expertBytes?: number;
}

export class RoutingRecorder {
  private tokens: TokenRouting[] = [];
  private batch: TokenRouting[] = [];

  constructor(readonly shape: RecorderShape) {}

  /** Tokens recorded so far (finished batches). */
  get length(): number {
    return this.tokens.length;
  }

  beginBatch(tokens: number): void {
    const { nLayers } = this.shape;
    this.batch = Array.from({ length: tokens }, () => ({
      experts: Array.from({ length: nLayers }, () => [] as number[]),
      weights: Array.from({ length: nLayers }, () => [] as number[]),
    }));
  }

  /** Layer `layer`'s routing for the batch: ids and weights [tokens * topK], token-major, best first. */
  setLayer(layer: number, ids: ArrayLike<number>, weights: ArrayLike<number>): void {
    const k = this.shape.topK;
    this.batch.forEach((row, t) => {
      row.experts[layer] = Array.from({ length: k }, (_, j) => ids[t * k + j]);
      row.weights[layer] = Array.from({ length: k }, (_, j) => weights[t * k + j]);
    });
  }

  /** A pre-gate's guess for `layer` of batch token `token`. */
  setPredicted(token: number, layer: number, ids: readonly number[]): void {
    const row = this.batch[token];
    row.predicted ??= new Array<number[] | null>(this.shape.nLayers).fill(null);
    row.predicted[layer] = [...ids];
  }

  endBatch(): void {
    this.tokens.push(...this.batch);
    this.batch = [];
  }

  /** The trace so far; recording starts over. */
  take(): RoutingTrace {
    const { name, nLayers, nExperts, topK, expertBytes } = this.shape;
    const trace: RoutingTrace = { name, nLayers, nExperts, topK, tokens: this.tokens };
    if (expertBytes !== undefined) trace.expertBytes = expertBytes;
    this.tokens = [];
    return trace;
  }
}
