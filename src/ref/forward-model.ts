/**
 * What the CPU reference forward pass reads (the model: config, dequantized
 * weights, RoPE parameters, how products round their input) and writes (the
 * run state: activation scratch and the KV cache), and its one product.
 */

import type { ModelConfig } from '../models/config';
import type { RopeParams } from './forward-rope';
import { matVec } from './forward-ops';
import { inputRoundingFor, roundInput } from './forward-rounding';
import type { Matrix, ModelWeights } from './forward-weights';

/**
 * How matrix products treat their input. 'f32': as it is (the exact
 * reference). 'llama.cpp': rounded first as llama.cpp's CPU backend rounds the
 * input of a product with non-F32 weights (to f16, Q8_0 or Q8_K; see
 * forward-rounding.ts), to compare with llama.cpp on quantized models.
 */
export type ActivationMode = 'f32' | 'llama.cpp';

/** Everything the forward pass reads and never writes. */
export interface ForwardModel {
  config: ModelConfig;
  weights: ModelWeights;
  rope: RopeParams;
  activations: ActivationMode;
}

/** Activation scratch and the KV cache: everything the forward pass writes. */
export interface RunState {
  x: Float32Array; // (hidden) the residual stream
  xb: Float32Array; // (hidden) normalised input of the current sub-block
  q: Float32Array; // (nHead * headDim)
  k: Float32Array; // (nHeadKv * headDim)
  v: Float32Array; // (nHeadKv * headDim)
  attOut: Float32Array; // (nHead * headDim) attention output, heads concatenated
  proj: Float32Array; // (hidden) a sub-block's output before the residual add
  expertOut: Float32Array; // (hidden) one expert's output
  gate: Float32Array; // (max FFN width)
  up: Float32Array; // (max FFN width)
  routerLogits: Float32Array; // (nExpert)
  logits: Float32Array; // (vocab)
  keyCache: Float32Array[][]; // [layer][pos] (nHeadKv * headDim), after RoPE
  valueCache: Float32Array[][]; // [layer][pos] (nHeadKv * headDim)
}

export function createRunState(c: ModelConfig): RunState {
  const qDim = c.nHead * c.headDimK;
  const kvDim = c.nHeadKv * c.headDimK;
  const ffMax = Math.max(c.expertFF, c.sharedExpertFF, c.denseFF);
  return {
    x: new Float32Array(c.hidden),
    xb: new Float32Array(c.hidden),
    q: new Float32Array(qDim),
    k: new Float32Array(kvDim),
    v: new Float32Array(kvDim),
    attOut: new Float32Array(qDim),
    proj: new Float32Array(c.hidden),
    expertOut: new Float32Array(c.hidden),
    gate: new Float32Array(ffMax),
    up: new Float32Array(ffMax),
    routerLogits: new Float32Array(c.nExpert),
    logits: new Float32Array(c.vocabSize),
    keyCache: Array.from({ length: c.nLayer }, () => []),
    valueCache: Array.from({ length: c.nLayer }, () => []),
  };
}

/** out = w · x for the (rows, cols) matrix at element `offset` of w, the input rounded as the activation mode says. */
export function project(m: ForwardModel, out: Float32Array, w: Matrix, x: Float32Array, rows: number, cols: number, offset = 0): void {
  const input = m.activations === 'llama.cpp' ? roundInput(x, inputRoundingFor(w.type)) : x;
  matVec(out, w.data, input, rows, cols, offset);
}
