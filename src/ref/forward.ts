/**
 * A plain CPU forward pass of the supported MoE decoders (llama/Mixtral,
 * qwen2moe, qwen3moe, olmoe, granitemoe, gpt-oss), written to be read top to bottom: the yardstick
 * that GPU kernels and whole-model runs are compared against, itself held to
 * llama.cpp by the parity tests.
 *
 * Weights are dequantized to f32 once; activations are f32 and every dot
 * product and sum is accumulated in f64 (see forward-ops.ts), so results are
 * near-exact f32 values. One token per call, with a KV cache (llama2.c style).
 * Vectors are named by shape in comments; a matrix (rows, cols) has each of
 * its `rows` output rows contiguous, as GGUF stores it.
 */

import { readGguf } from '../gguf/reader';
import { sourceFromBytes } from '../gguf/source';
import type { ModelConfig } from '../models/config';
import { modelConfigFromGguf } from '../models/registry';
import { addInPlace, addScaled, matVec, rmsNormInPlace, scaleInPlace, sigmoid, softmaxInPlace, swiGluInPlace } from './forward-ops';
import { applyRope, ropeCache, ropeParams, type RopeParams } from './forward-rope';
import { type RouteStep, type RouteTrace, route } from './forward-routing';
import { inputRoundingFor, roundInput } from './forward-rounding';
import { activate } from './expert-ffn';
import { type DenseWeights, type Matrix, type ModelWeights, type MoeWeights, type StandardAttentionWeights, loadWeights } from './forward-weights';
import { latentAttention } from './forward-latent';
import { type ActivationMode, type ForwardModel, type RunState, createRunState, project } from './forward-model';

export type { RouteStep, RouteTrace } from './forward-routing';
export type { ActivationMode, ForwardModel, RunState } from './forward-model';
export { createRunState } from './forward-model';
export { firstNearTie } from './forward-routing';

/**
 * Runs one token at position `pos` (positions 0..pos-1 must already be in the
 * cache). Returns the logits (a view of s.logits, overwritten by the next
 * call) and each layer's routing (undefined for dense layers).
 */
export function forward(m: ForwardModel, s: RunState, token: number, pos: number): { logits: Float32Array; routes: (RouteStep | undefined)[] } {
  const c = m.config;
  const w = m.weights;
  const H = c.hidden;
  const routes: (RouteStep | undefined)[] = [];

  // Token embedding: x = tokenEmbd[token] * embedding scale (hidden).
  s.x.set(w.tokenEmbd.subarray(token * H, (token + 1) * H));
  scaleInPlace(s.x, c.scales.embedding);
  const rope = ropeCache(m.rope, pos, w.ropeFreqs);

  for (let l = 0; l < c.nLayer; l++) {
    const lw = w.layers[l];

    // Attention input norm: xb = rmsnorm(x) * attnNorm.
    s.xb.set(s.x);
    rmsNormInPlace(s.xb, lw.attnNorm, H, 1, c.rmsEps);

    // Attention into proj (hidden), then the residual: x += proj * residual scale.
    if (lw.attention.kind === 'latent') latentAttention(m, s, l, lw.attention, pos, rope);
    else standardAttention(m, s, l, lw.attention, pos, rope);
    scaleInPlace(s.proj, c.scales.residual);
    addInPlace(s.x, s.proj);

    // FFN input norm: xb = rmsnorm(x) * ffnNorm.
    s.xb.set(s.x);
    rmsNormInPlace(s.xb, lw.ffnNorm, H, 1, c.rmsEps);

    // FFN (routed experts, or dense), into proj; residual: x += proj * residual scale.
    if (lw.ffn.kind === 'moe') routes.push(moeFfn(m, s, lw.ffn));
    else {
      denseFfn(m, s, lw.ffn);
      routes.push(undefined);
    }
    scaleInPlace(s.proj, c.scales.residual);
    addInPlace(s.x, s.proj);
  }

  // Final norm and output projection: logits = output · (rmsnorm(x) * outputNorm) / logit scale (vocab).
  s.xb.set(s.x);
  rmsNormInPlace(s.xb, w.outputNorm, H, 1, c.rmsEps);
  project(m, s.logits, w.output, s.xb, c.vocabSize, H);
  scaleInPlace(s.logits, Math.fround(1 / c.scales.logit));
  return { logits: s.logits, routes };
}

/** Standard attention: proj = wo · attention(rope(norm(q, k)), cache) (+ bias), the token's k and v cached at pos. */
function standardAttention(m: ForwardModel, s: RunState, l: number, a: StandardAttentionWeights, pos: number, rope: Float32Array): void {
  const c = m.config;
  const { hidden: H, nHead, nHeadKv, headDimK: D } = c;
  const qDim = nHead * D;
  const kvDim = nHeadKv * D;

  // Q, K, V projections (+ biases): q (nHead * D), k and v (nHeadKv * D).
  project(m, s.q, a.wq, s.xb, qDim, H);
  project(m, s.k, a.wk, s.xb, kvDim, H);
  project(m, s.v, a.wv, s.xb, kvDim, H);
  if (a.bq) addInPlace(s.q, a.bq);
  if (a.bk) addInPlace(s.k, a.bk);
  if (a.bv) addInPlace(s.v, a.bv);

  // QK-norm, before RoPE: each head on its own (qwen3moe) or the whole projection (olmoe).
  if (a.qNorm && a.kNorm) {
    const perHead = c.qkNorm === 'per-head';
    rmsNormInPlace(s.q, a.qNorm, perHead ? D : qDim, perHead ? nHead : 1, c.rmsEps);
    rmsNormInPlace(s.k, a.kNorm, perHead ? D : kvDim, perHead ? nHeadKv : 1, c.rmsEps);
  }

  // RoPE on every head of q and k, then k and v into the cache at pos.
  applyRope(s.q, nHead, D, rope, m.rope.kind);
  applyRope(s.k, nHeadKv, D, rope, m.rope.kind);
  s.keyCache[l][pos] = s.k.slice();
  s.valueCache[l][pos] = s.v.slice();

  // Causal attention with grouped KV heads: query head h reads KV head h / (nHead / nHeadKv);
  // a sliding window and sink logits where the layer has them.
  attention(s, l, pos, c, a.sinks);

  // Output projection (+ bias).
  project(m, s.proj, a.wo, s.attOut, H, qDim);
  if (a.bo) addInPlace(s.proj, a.bo);
}

/** attOut[h] = softmax_t(q_h · k_t * scale) · v_t over cached positions t = 0..pos; scale is 1/sqrt(D) but for granite. */
function attention(s: RunState, l: number, pos: number, c: ModelConfig, sinks: Float32Array | undefined): void {
  const D = c.headDimK;
  const group = c.nHead / c.nHeadKv;
  const scale = c.scales.attention;
  // A window of w positions sees pos - w + 1 .. pos (llama.cpp masks p1 - p0 >= w).
  const window = c.attentionWindow[l];
  const first = window === 0 ? 0 : Math.max(0, pos + 1 - window);
  const n = pos + 1 - first;
  const scores = new Float32Array(n + 1); // (visible positions, + the sink)
  for (let h = 0; h < c.nHead; h++) {
    const qOff = h * D;
    const kvOff = Math.floor(h / group) * D;
    for (let t = first; t <= pos; t++) {
      const key = s.keyCache[l][t];
      let dot = 0;
      for (let i = 0; i < D; i++) dot += s.q[qOff + i] * key[kvOff + i];
      scores[t - first] = dot * scale;
    }
    // The sink logit joins the softmax denominator but weights no value.
    scores[n] = sinks ? sinks[h] : -Infinity;
    softmaxInPlace(scores);
    for (let i = 0; i < D; i++) {
      let sum = 0;
      for (let t = first; t <= pos; t++) sum += scores[t - first] * s.valueCache[l][t][kvOff + i];
      s.attOut[qOff + i] = sum;
    }
  }
}

/** Routed experts: proj = sum_e weight_e · down_e(silu(gate_e · xb) * (up_e · xb)), plus the shared expert. */
function moeFfn(m: ForwardModel, s: RunState, f: MoeWeights): RouteStep {
  const c = m.config;
  const H = c.hidden;
  const F = c.expertFF;
  const gate = s.gate.subarray(0, F); // (expertFF)
  const up = s.up.subarray(0, F); // (expertFF)

  // Router: logits over experts (+ bias), then the architecture's routing policy.
  project(m, s.routerLogits, f.router, s.xb, c.nExpert, H);
  if (f.routerBias) addInPlace(s.routerLogits, f.routerBias);
  const step = route(s.routerLogits, c.routing, f.selectionBias);

  // Each chosen expert's gated FFN (+ biases), weighted into proj.
  const activation = c.activation;
  const b = f.expertBiases;
  s.proj.fill(0);
  step.experts.forEach((e, i) => {
    project(m, gate, f.gateExps, s.xb, F, H, e * F * H);
    project(m, up, f.upExps, s.xb, F, H, e * F * H);
    if (b) {
      addInPlace(gate, b.gate.subarray(e * F, (e + 1) * F));
      addInPlace(up, b.up.subarray(e * F, (e + 1) * F));
    }
    if (activation === 'silu') swiGluInPlace(gate, up);
    else for (let j = 0; j < F; j++) gate[j] = activate(activation, gate[j], up[j]);
    project(m, s.expertOut, f.downExps, gate, H, F, e * H * F);
    if (b) addInPlace(s.expertOut, b.down.subarray(e * H, (e + 1) * H));
    addScaled(s.proj, s.expertOut, step.weights[i]);
  });

  // Shared expert: gated per token by sigmoid(gateInp · xb) (qwen2moe), or added as it is.
  if (f.shared) {
    const S = c.sharedExpertFF;
    let gate = 1;
    if (f.shared.gateInp) {
      let gateLogit = 0;
      for (let i = 0; i < H; i++) gateLogit += f.shared.gateInp[i] * s.xb[i];
      gate = Math.fround(sigmoid(Math.fround(gateLogit)));
    }
    swiGlu(m, s, f.shared, S);
    addScaled(s.proj, s.expertOut, gate);
  }
  return step;
}

/** A dense SwiGLU FFN: proj = down(silu(gate · xb) * (up · xb)). */
function denseFfn(m: ForwardModel, s: RunState, f: DenseWeights): void {
  swiGlu(m, s, f, m.config.denseFF);
  s.proj.set(s.expertOut);
}

/** expertOut = down(silu(gate · xb) * (up · xb)) for one un-routed FFN of width ff. */
function swiGlu(m: ForwardModel, s: RunState, f: { gate: Matrix; up: Matrix; down: Matrix }, ff: number): void {
  const H = m.config.hidden;
  const gate = s.gate.subarray(0, ff);
  const up = s.up.subarray(0, ff);
  project(m, gate, f.gate, s.xb, ff, H);
  project(m, up, f.up, s.xb, ff, H);
  swiGluInPlace(gate, up);
  project(m, s.expertOut, f.down, gate, H, ff);
}


export interface EvaluateOptions {
  /** Default 'f32' (exact activations). */
  activations?: ActivationMode;
}

/** A loaded model that evaluates token sequences from an empty cache. */
export interface ReferenceModel {
  readonly config: ModelConfig;
  /** Teacher forcing: the logits after each token of `tokens` (one (vocab) row per position). */
  logits(tokens: readonly number[], options?: EvaluateOptions): Float32Array[];
  /** As `logits`, with the route trace: routes[layer][position] (empty for dense layers). */
  evaluate(tokens: readonly number[], options?: EvaluateOptions): { logits: Float32Array[]; routes: RouteTrace };
}

/** Parses a whole GGUF file held in memory, reads its config and dequantizes its weights. */
export async function loadReferenceModel(bytes: Uint8Array): Promise<ReferenceModel> {
  const file = await readGguf(sourceFromBytes(bytes));
  const config = modelConfigFromGguf(file);
  const weights = loadWeights(file, bytes, config);
  const rope = ropeParams(config.rope);
  const evaluate = (tokens: readonly number[], options: EvaluateOptions = {}): { logits: Float32Array[]; routes: RouteTrace } => {
    const model: ForwardModel = { config, weights, rope, activations: options.activations ?? 'f32' };
    const state = createRunState(config);
    const logits: Float32Array[] = [];
    const routes: RouteTrace = Array.from({ length: config.nLayer }, () => []);
    tokens.forEach((token, pos) => {
      if (!Number.isInteger(token) || token < 0 || token >= config.vocabSize) {
        throw new RangeError(`token ${token} at position ${pos} is outside the vocabulary (0..${config.vocabSize - 1})`);
      }
      const out = forward(model, state, token, pos);
      logits.push(out.logits.slice());
      out.routes.forEach((step, l) => {
        if (step) routes[l].push(step);
      });
    });
    return { logits, routes };
  };
  return { config, evaluate, logits: (tokens, options) => evaluate(tokens, options).logits };
}
