/**
 * IBM Granite 3.x MoE: Mixtral's graph (RoPE on adjacent pairs, a softmax
 * router renormalised over the top-k, SwiGLU experts) with four multipliers
 * from the GGUF metadata (config.scales): the token embedding times
 * `embedding_scale`, each attention and FFN output times `residual_scale`
 * before its residual add, q · k times `attention.scale` instead of
 * 1/sqrt(headDim), and the logits divided by `logit_scale`.
 */

import type { MoeArchitecture } from './moe-graph';

export const granitemoe: MoeArchitecture = {
  arch: 'granitemoe',
  graph: () => ({
    ropeOrdering: 'normal',
    router: { scoring: 'softmax', normalize: true },
    sharedExpert: 'none',
    qkNorm: 'none',
    activation: 'silu',
  }),
};
