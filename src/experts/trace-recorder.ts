/**
 * Builds a routing trace (src/experts/trace.ts) from what an engine's routers
 * chose, batch by batch: the forward pass hands over each MoE layer's routing
 * for all tokens of a batch (and a pre-gate's guesses, when it made any), and
 * the recorder turns it into rows per token. Layers are the model's MoE
 * layers in order (dense layers have no routing to record).
 *
 * A scheduler holds up to two recorders (RoutingRecorders): one for a trace,
 * taken whole at the end, and one for a live stream of the routing, drained
 * after every forward call, so a long request never copies what it already
 * handed over.
 */

import { MASKED_EXPERT_ID } from '../kernels/router';
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

  /** Tokens held: finished batches since the last `take` or `drain`. */
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

  /**
   * Layer `layer`'s routing for the batch: ids and weights [tokens * topK],
   * token-major, best first. Pairs a routing knob skipped (MASKED_EXPERT_ID)
   * are left out: a token's row lists the experts it used.
   */
  setLayer(layer: number, ids: ArrayLike<number>, weights: ArrayLike<number>): void {
    const k = this.shape.topK;
    this.batch.forEach((row, t) => {
      const used = Array.from({ length: k }, (_, j) => t * k + j).filter((pair) => ids[pair] !== MASKED_EXPERT_ID);
      row.experts[layer] = used.map((pair) => ids[pair]);
      row.weights[layer] = used.map((pair) => weights[pair]);
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

  /**
   * The tokens of the batches finished since the last drain (or take), in
   * order, handed over rather than copied: the recorder forgets them, so a
   * later drain or take returns only what comes after. A batch still open
   * waits for its endBatch.
   */
  drain(): TokenRouting[] {
    const fresh = this.tokens;
    this.tokens = [];
    return fresh;
  }
}

/**
 * A scheduler's recorders: a trace (startTrace/takeTrace) and a live stream
 * (startStream/drainStream/stopStream), each optional and independent; the
 * routing a scheduler reads is handed to whichever are on.
 */
export class RoutingRecorders {
  private trace: RoutingRecorder | undefined;
  private stream: RoutingRecorder | undefined;

  /** Whether any recorder is on (the resident scheduler reads routing back only then). */
  get active(): boolean {
    return this.trace !== undefined || this.stream !== undefined;
  }

  startTrace(shape: RecorderShape): void {
    this.trace = new RoutingRecorder(shape);
  }

  /** The trace since startTrace (recording stops), or undefined when none was started. */
  takeTrace(): RoutingTrace | undefined {
    const trace = this.trace?.take();
    this.trace = undefined;
    return trace;
  }

  startStream(shape: RecorderShape): void {
    this.stream = new RoutingRecorder(shape);
  }

  /** Tokens finished since the last drain ([] when no stream is on). */
  drainStream(): TokenRouting[] {
    return this.stream?.drain() ?? [];
  }

  stopStream(): void {
    this.stream = undefined;
  }

  beginBatch(tokens: number): void {
    this.trace?.beginBatch(tokens);
    this.stream?.beginBatch(tokens);
  }

  setLayer(layer: number, ids: ArrayLike<number>, weights: ArrayLike<number>): void {
    this.trace?.setLayer(layer, ids, weights);
    this.stream?.setLayer(layer, ids, weights);
  }

  /** Pre-gate guesses belong to traces (the simulator scores them); the live stream carries routing only. */
  setPredicted(token: number, layer: number, ids: readonly number[]): void {
    this.trace?.setPredicted(token, layer, ids);
  }

  endBatch(): void {
    this.trace?.endBatch();
    this.stream?.endBatch();
  }
}
