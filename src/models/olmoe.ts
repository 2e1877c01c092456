/**
 * OLMoE: NeoX RoPE, RMSNorm of the whole Q and K projections (one
 * [heads * headDim] weight each, before RoPE), and a softmax router whose
 * top-k weights are used as they are (not renormalised).
 */

import type { MoeArchitecture } from './moe-graph';

export const olmoe: MoeArchitecture = {
  arch: 'olmoe',
  graph: () => ({
    ropeOrdering: 'neox',
    router: { scoring: 'softmax', normalize: false },
    sharedExpert: 'none',
    qkNorm: 'whole',
    activation: 'silu',
  }),
};
