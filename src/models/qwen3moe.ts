/**
 * Qwen3-MoE: NeoX RoPE, RMSNorm of each query and key head (before RoPE)
 * with a [headDim] weight, a head dim that need not be hidden / heads, and a
 * softmax router renormalised over the top-k. No biases, no shared expert.
 */

import type { MoeArchitecture } from './moe-graph';

export const qwen3moe: MoeArchitecture = {
  arch: 'qwen3moe',
  graph: () => ({
    ropeOrdering: 'neox',
    router: { scoring: 'softmax', normalize: true },
    sharedExpert: 'none',
    qkNorm: 'per-head',
    activation: 'silu',
  }),
};
