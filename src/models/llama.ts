/**
 * Mixtral, stored as GGUF architecture `llama` with experts: RoPE on
 * adjacent pairs, a softmax router whose top-k weights are renormalised to
 * sum to one, SwiGLU experts; no biases, no QK-norm, no shared expert.
 */

import type { MoeArchitecture } from './moe-graph';

export const llama: MoeArchitecture = {
  arch: 'llama',
  graph: () => ({
    ropeOrdering: 'normal',
    router: { scoring: 'softmax', normalize: true },
    sharedExpert: 'none',
    qkNorm: 'none',
    activation: 'silu',
  }),
};
