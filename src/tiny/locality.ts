/**
 * Routing locality for generated models. Random weights route every token
 * independently; trained MoEs do not: a token tends to reuse the experts of
 * the token before it (temporal reuse), an expert at layer l predicts which
 * expert follows at l+1 (inter-layer affinity), and some experts are used
 * far more than others (popularity skew). These knobs rebuild a few tensors
 * of a generated model so that its routing shows each of them, through the
 * forward pass itself (nothing in the runtime knows):
 *
 * - The residual stream gets three parts (dims below are hidden channels):
 *   a constant direction c (channel 0, in every token embedding), the token's
 *   own random part r (channels outside c and S), and a context subspace S
 *   (the next `m` channels) that only layer 0's attention writes.
 * - Layer 0's attention is a causal sliding average: its queries and keys
 *   read only c, so they are the same vector at every position, placed on
 *   RoPE pairs of low frequency; after RoPE, q_t . k_s = beta * f(t - s) with
 *   f a mean of cosines that decays over `window` tokens. Values read r and
 *   the output projection writes the average into S. S therefore drifts
 *   slowly along the sequence and survives every later layer through the
 *   residual connection.
 * - Routers (all layers) mix a random part that reads everything (the token),
 *   a part that reads S (`temporal`: its share of the logit spread), and a
 *   per-expert weight on c (`skew`: a bias in units of the logit spread,
 *   since c . xb is nearly constant).
 * - Layer l+1's router row pi_l(e) = a * (layer l's row e) + sqrt(1 - a^2) *
 *   fresh, for a random permutation pi_l and a = `affinity`: neighbouring
 *   layers read nearly the same residual stream, so expert e at l makes
 *   pi_l(e) likely at l+1.
 *
 * Rebuilt tensors are F32 whatever the model's type (token embedding, layer
 * 0's attention projections, QK-norms and biases, routers), so exact values
 * survive; everything else is left as generated. Scales are calibrated here
 * on sampled embeddings, so the knobs mean the same for any shape.
 */

import { GgmlType } from '../quant/formats';
import { mulberry32 } from '../quant/random';
import { ARCHITECTURES } from '../models/registry';
import type { TinyArch, TinyShape } from './archs';

export interface TinyLocality {
  /** 0..1: share of the router logits' spread read from the slowly varying context (temporal reuse). Default 0. */
  temporal?: number;
  /** Tokens the context averages over (>= 1; default 8). */
  window?: number;
  /** 0..1: correlation of layer l+1's router rows with layer l's through a permutation (inter-layer affinity). Default 0. */
  affinity?: number;
  /** >= 0: spread of per-expert router biases, in units of the router logits' spread (popularity skew). Default 0. */
  skew?: number;
}

/** A tensor of the model being generated (data in its GGUF type). */
export interface TinyTensor {
  name: string;
  type: GgmlType;
  dims: number[];
  data: Uint8Array;
}

const DEFAULT_WINDOW = 8;
/** |c| and |r| of a token embedding over sqrt(hidden): large against one layer's random output (which grows as sqrt(hidden)), so they persist. */
const EMBED_NORM_PER_ROOT_HIDDEN = 2;
/** Logit spread of the routers' random part. */
const ROUTER_LOGIT_STD = 1;

/** What is wrong with the knobs, or undefined. */
export function localityProblem(locality: TinyLocality, shape: TinyShape): string | undefined {
  const { temporal = 0, affinity = 0, skew = 0, window = DEFAULT_WINDOW } = locality;
  if (!(temporal >= 0 && temporal < 1)) return `locality temporal must be in [0, 1), got ${temporal}`;
  if (!(affinity >= 0 && affinity <= 1)) return `locality affinity must be in [0, 1], got ${affinity}`;
  if (!(skew >= 0 && Number.isFinite(skew))) return `locality skew must be a number >= 0, got ${skew}`;
  if (!(window >= 1 && Number.isFinite(window))) return `locality window must be >= 1, got ${window}`;
  if (shape.hidden < 8) return `locality needs a hidden size of at least 8, got ${shape.hidden}`;
  return undefined;
}

/** Rewrites the tensors (by name) that carry the locality structure. */
export function applyLocality(arch: TinyArch, shape: TinyShape, tensors: TinyTensor[], locality: TinyLocality, seed: number): void {
  const rng = mulberry32((seed * 2654435761 + 0x10ca1) >>> 0);
  const normal = gaussian(rng);
  const H = shape.hidden;
  const EMBED_NORM = EMBED_NORM_PER_ROOT_HIDDEN * Math.sqrt(H);
  const m = Math.max(2, Math.floor(H / 8));
  const S = Array.from({ length: m }, (_, i) => 1 + i);
  const tokenDims = Array.from({ length: H - 1 - m }, (_, i) => 1 + m + i);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const set = (name: string, values: Float32Array): void => {
    const t = byName.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    t.type = GgmlType.F32;
    t.data = new Uint8Array(values.buffer);
  };

  // Token embeddings [V, H]: c = EMBED_NORM on channel 0, r of norm EMBED_NORM on the token channels, nothing in S.
  const V = shape.vocab;
  const embd = new Float32Array(V * H);
  for (let v = 0; v < V; v++) {
    const row = embd.subarray(v * H, (v + 1) * H);
    row[0] = EMBED_NORM;
    for (const d of tokenDims) row[d] = normal();
    scaleDims(row, tokenDims, EMBED_NORM / norm(row, tokenDims));
  }
  set('token_embd.weight', embd);

  // Layer 0 attention: a sliding average over `window` tokens, written into S.
  const D = shape.headDim;
  const window = locality.window ?? DEFAULT_WINDOW;
  const pairs = windowPairs(D, shape.ropeTheta, window);
  const f = (delta: number): number => pairs.reduce((s, p) => s + Math.cos(p.theta * delta), 0) / pairs.length;
  const beta = 1 / Math.max(0.05, 1 - f(window));
  // The element of each head that carries pair i (its first), by RoPE ordering.
  const graph = ARCHITECTURES[arch].graph;
  const first = pairs.map((p) => (graph.rope === 'neox' ? p.index : 2 * p.index));
  const qkNorm = graph.qkNorm !== 'none';
  // xb channel 0 after rmsnorm: c over the rms of [c, r] (attn_norm ~ 1).
  const xb0 = (EMBED_NORM * Math.sqrt(H)) / Math.sqrt(2 * EMBED_NORM * EMBED_NORM);
  // Each selected element: q = k = a; score = sum a^2 cos / sqrt(D) = beta f  =>  a^2 = beta sqrt(D) / |pairs|.
  const a = Math.sqrt((beta * Math.sqrt(D)) / pairs.length);
  const qk = (heads: number): Float32Array => {
    const w = new Float32Array(heads * D * H);
    for (let h = 0; h < heads; h++) for (const j of first) w[(h * D + j) * H] = qkNorm ? 1 : a / xb0;
    return w;
  };
  set('blk.0.attn_q.weight', qk(shape.heads));
  set('blk.0.attn_k.weight', qk(shape.kvHeads));
  if (qkNorm) {
    // After the norm each selected element is sqrt(D / |pairs|) times its weight g: g = a / sqrt(D / |pairs|).
    const g = a / Math.sqrt(D / pairs.length);
    const normWeights = (width: number): Float32Array => {
      const w = new Float32Array(width).fill(1);
      for (let i = 0; i < width; i += D) for (const j of first) w[i + j] = g;
      return w;
    };
    const whole = graph.qkNorm === 'whole';
    set('blk.0.attn_q_norm.weight', normWeights(whole ? shape.heads * D : D));
    set('blk.0.attn_k_norm.weight', normWeights(whole ? shape.kvHeads * D : D));
  }
  if (tensors.some((t) => t.name === 'blk.0.attn_q.bias')) {
    set('blk.0.attn_q.bias', new Float32Array(shape.heads * D));
    set('blk.0.attn_k.bias', new Float32Array(shape.kvHeads * D));
    set('blk.0.attn_v.bias', new Float32Array(shape.kvHeads * D));
  }
  // Values [kvHeads * D, H] read the token channels; the output [H, heads * D] writes S only.
  const kvDim = shape.kvHeads * D;
  const qDim = shape.heads * D;
  const wv = new Float32Array(kvDim * H);
  for (let o = 0; o < kvDim; o++) for (const d of tokenDims) wv[o * H + d] = normal() / Math.sqrt(tokenDims.length);
  const wo = new Float32Array(H * qDim);
  for (const s of S) for (let j = 0; j < qDim; j++) wo[s * qDim + j] = normal() / Math.sqrt(qDim);
  // Calibrate: the average of `window` tokens' values, projected, has the norm of r (in xb units).
  const group = shape.heads / shape.kvHeads;
  const sample = (): Float32Array => {
    const avg = new Float32Array(qDim);
    const n = Math.max(1, Math.round(window));
    for (let i = 0; i < n; i++) {
      const v = Math.floor(rng() * V);
      const xb = rmsScaled(embd.subarray(v * H, (v + 1) * H));
      for (let h = 0; h < shape.heads; h++) {
        const kvh = Math.floor(h / group);
        for (let j = 0; j < D; j++) avg[h * D + j] += dot(wv.subarray((kvh * D + j) * H, (kvh * D + j + 1) * H), xb) / n;
      }
    }
    const out = new Float32Array(H);
    for (const s of S) out[s] = dot(wo.subarray(s * qDim, (s + 1) * qDim), avg);
    return out;
  };
  let written = 0;
  const trials = 16;
  for (let i = 0; i < trials; i++) written += norm(sample(), S) / trials;
  // The attention output lands in x (not xb), where r has norm EMBED_NORM: match it.
  const gain = EMBED_NORM / Math.max(written, 1e-6);
  for (let i = 0; i < wo.length; i++) wo[i] *= gain;
  set('blk.0.attn_v.weight', wv);
  set('blk.0.attn_output.weight', wo);

  // Routers [E, H]: random (token) + S (context) + c (bias) parts, chained across layers by permutations.
  const E = shape.experts;
  const temporal = locality.temporal ?? 0;
  const skew = locality.skew ?? 0;
  const rho = locality.affinity ?? 0;
  // xb of a token after layer 0: c, r and the context each about a third of the energy.
  const part = Math.sqrt(H / 3);
  const fresh = (): Float32Array => {
    const w = new Float32Array(E * H);
    for (let e = 0; e < E; e++) {
      const row = w.subarray(e * H, (e + 1) * H);
      // Random part over all channels: logit std sqrt(1 - temporal) * ROUTER_LOGIT_STD for an xb of norm sqrt(H).
      for (let d = 0; d < H; d++) row[d] = (normal() * Math.sqrt(1 - temporal) * ROUTER_LOGIT_STD) / Math.sqrt(H);
      // Context part: logit std sqrt(temporal) for a context of norm `part` in S.
      for (const s of S) row[s] += (normal() * Math.sqrt(temporal) * ROUTER_LOGIT_STD) / part;
      // Bias on c (xb channel 0 is about `part` for every token).
      row[0] = (normal() * skew * ROUTER_LOGIT_STD) / part;
    }
    return w;
  };
  let previous: Float32Array | undefined;
  for (let l = 0; l < shape.layers; l++) {
    const w = fresh();
    if (previous && rho > 0) {
      const perm = permutation(E, rng);
      const mixed = new Float32Array(E * H);
      for (let e = 0; e < E; e++) {
        const to = perm[e];
        for (let d = 0; d < H; d++) mixed[to * H + d] = rho * previous[e * H + d] + Math.sqrt(1 - rho * rho) * w[to * H + d];
      }
      previous = mixed;
    } else {
      previous = w;
    }
    set(`blk.${l}.ffn_gate_inp.weight`, previous.slice());
  }
}

/** RoPE pairs whose frequencies make a window of about `window` tokens (at least one). */
function windowPairs(headDim: number, base: number, window: number): { index: number; theta: number }[] {
  const all = Array.from({ length: headDim / 2 }, (_, i) => ({ index: i, theta: Math.pow(base, (-2 * i) / headDim) }));
  const chosen = all.filter((p) => p.theta <= 1 / window && p.theta >= 1 / (16 * window));
  if (chosen.length > 0) return chosen;
  const target = 1 / window;
  return [all.reduce((best, p) => (Math.abs(Math.log(p.theta / target)) < Math.abs(Math.log(best.theta / target)) ? p : best))];
}

function gaussian(rng: () => number): () => number {
  return () => {
    const u = Math.max(rng(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
  };
}

function permutation(n: number, rng: () => number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

function norm(v: Float32Array, dims: readonly number[]): number {
  return Math.sqrt(dims.reduce((s, d) => s + v[d] * v[d], 0));
}

function scaleDims(v: Float32Array, dims: readonly number[], by: number): void {
  for (const d of dims) v[d] *= by;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** x * sqrt(n) / |x| (rmsnorm without weights). */
function rmsScaled(x: Float32Array): Float32Array {
  const n = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  return x.map((v) => v / n);
}
