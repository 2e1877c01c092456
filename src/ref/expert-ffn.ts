/**
 * CPU reference of the gated expert FFN (the expert_ffn kernels' twin).
 *
 * For a token x [hidden] routed to experts id[0..k) with weights w[0..k):
 *
 *   h_j = act(G_j x + bg_j, U_j x + bu_j)        G_j, U_j [ffn, hidden], h_j [ffn]
 *   y  += sum_j w_j (D_j h_j + bd_j)             D_j [hidden, ffn]
 *
 * where the biases are present only for experts that have them (gpt-oss).
 * An expert the lookup does not know (a null "zero" expert, id >= the real
 * expert count) contributes nothing, although its weight was counted when the
 * router normalised the weights.
 *
 * Activations, on the gate value g and up value u:
 *   'silu'        silu(g) * u = g / (1 + exp(-g)) * u              (SwiGLU)
 *   'gelu'        gelu_tanh(g) * u                                  (GeGLU)
 *   'swiglu-oai'  gpt-oss: g' = min(g, limit), u' = clamp(u, -limit, limit),
 *                 g' / (1 + exp(-alpha g')) * (u' + 1), alpha 1.702, limit 7
 *
 * Matrices are dense f32 (dequantize with src/quant first); sums are in f64.
 */

export type FfnActivation = 'silu' | 'gelu' | 'swiglu-oai';

/** gpt-oss's SwiGLU constants (llama.cpp's swiglu_oai with these values). */
export const SWIGLU_OAI_ALPHA = 1.702;
export const SWIGLU_OAI_LIMIT = 7.0;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_COEF_A = 0.044715;

/** One expert's matrices, row-major as GGUF stores them. */
export interface DenseExpert {
  /** [ffn, hidden] */
  gate: Float32Array;
  /** [ffn, hidden] */
  up: Float32Array;
  /** [hidden, ffn] */
  down: Float32Array;
  /** [ffn], [ffn] and [hidden]; either all three or none. */
  gateBias?: Float32Array;
  upBias?: Float32Array;
  downBias?: Float32Array;
}

export function activate(activation: FfnActivation, gate: number, up: number): number {
  switch (activation) {
    case 'silu':
      return (gate / (1 + Math.exp(-gate))) * up;
    case 'gelu':
      return geluTanh(gate) * up;
    case 'swiglu-oai': {
      const g = Math.min(gate, SWIGLU_OAI_LIMIT);
      const u = Math.min(Math.max(up, -SWIGLU_OAI_LIMIT), SWIGLU_OAI_LIMIT);
      return (g / (1 + Math.exp(-SWIGLU_OAI_ALPHA * g))) * (u + 1);
    }
  }
}

/** GELU, tanh approximation: 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). */
export function geluTanh(g: number): number {
  return 0.5 * g * (1 + Math.tanh(SQRT_2_OVER_PI * g * (1 + GELU_COEF_A * g * g)));
}

/** h = act(G x + bg, U x + bu) for one token: f32 [ffn]. */
export function expertHidden(
  x: Float32Array,
  expert: DenseExpert,
  hidden: number,
  ffn: number,
  activation: FfnActivation,
): Float32Array {
  checkExpert(expert, hidden, ffn);
  checkLength(x, hidden, 'x');
  const h = new Float32Array(ffn);
  for (let r = 0; r < ffn; r++) {
    const gate = dot(expert.gate, r * hidden, x, 0, hidden) + (expert.gateBias?.[r] ?? 0);
    const up = dot(expert.up, r * hidden, x, 0, hidden) + (expert.upBias?.[r] ?? 0);
    h[r] = activate(activation, gate, up);
  }
  return h;
}

/** D h + bd for one token: f64 values [hidden]. */
export function expertOutput(h: Float32Array, expert: DenseExpert, hidden: number, ffn: number): Float64Array {
  checkExpert(expert, hidden, ffn);
  checkLength(h, ffn, 'h');
  const out = new Float64Array(hidden);
  for (let r = 0; r < hidden; r++) out[r] = dot(expert.down, r * ffn, h, 0, ffn) + (expert.downBias?.[r] ?? 0);
  return out;
}

export interface MoeFfnInput {
  /** f32 [tokens, hidden] */
  x: Float32Array;
  tokens: number;
  hidden: number;
  ffn: number;
  topK: number;
  /** Token-major [tokens * topK] ids and weights, as the router gives them. */
  ids: Uint32Array;
  weights: Float32Array;
  /** The expert with this id, or undefined for a null expert (skipped). */
  expert: (id: number) => DenseExpert | undefined;
  activation: FfnActivation;
}

/** The MoE block's contribution sum_j w_j (D_j h_j + bd_j), f32 [tokens, hidden], to add to the residual. */
export function moeFfn(input: MoeFfnInput): Float32Array {
  const { x, tokens, hidden, ffn, topK, ids, weights } = input;
  checkLength(x, tokens * hidden, 'x');
  checkLength(ids, tokens * topK, 'ids');
  checkLength(weights, tokens * topK, 'weights');
  const y = new Float32Array(tokens * hidden);
  for (let t = 0; t < tokens; t++) {
    const xt = x.subarray(t * hidden, (t + 1) * hidden);
    const sum = new Float64Array(hidden);
    for (let j = 0; j < topK; j++) {
      const expert = input.expert(ids[t * topK + j]);
      if (!expert) continue;
      const out = expertOutput(expertHidden(xt, expert, hidden, ffn, input.activation), expert, hidden, ffn);
      const w = weights[t * topK + j];
      for (let r = 0; r < hidden; r++) sum[r] += w * out[r];
    }
    y.set(sum, t * hidden);
  }
  return y;
}

function dot(a: Float32Array, aStart: number, b: ArrayLike<number>, bStart: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[aStart + i] * b[bStart + i];
  return sum;
}

function checkExpert(expert: DenseExpert, hidden: number, ffn: number): void {
  checkLength(expert.gate, ffn * hidden, 'gate');
  checkLength(expert.up, ffn * hidden, 'up');
  checkLength(expert.down, hidden * ffn, 'down');
  const biases = [expert.gateBias, expert.upBias, expert.downBias].filter((b) => b !== undefined).length;
  if (biases !== 0 && biases !== 3) throw new RangeError('an expert has either all three biases or none');
  if (expert.gateBias) checkLength(expert.gateBias, ffn, 'gate bias');
  if (expert.upBias) checkLength(expert.upBias, ffn, 'up bias');
  if (expert.downBias) checkLength(expert.downBias, hidden, 'down bias');
}

function checkLength(values: ArrayLike<number>, expected: number, what: string): void {
  if (values.length !== expected) throw new RangeError(`${what} has ${values.length} values, expected ${expected}`);
}
