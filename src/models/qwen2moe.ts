/**
 * Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): NeoX RoPE, biases on the Q, K and
 * V projections (read from the file), a softmax router whose top-k weights
 * are NOT renormalised, and a shared expert that every token runs, scaled by
 * sigmoid(ffn_gate_inp_shexp . x).
 */

import type { MoeArchitecture } from './moe-graph';

export const qwen2moe: MoeArchitecture = {
  arch: 'qwen2moe',
  graph: () => ({
    ropeOrdering: 'neox',
    router: { scoring: 'softmax', normalize: false },
    sharedExpert: 'sigmoid-gated',
    qkNorm: 'none',
    activation: 'silu',
  }),
};
