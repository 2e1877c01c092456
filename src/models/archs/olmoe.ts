/**
 * OLMoE (llama.cpp's src/models/olmoe.cpp): NeoX RoPE, RMSNorm over the
 * whole Q and the whole K projection before RoPE (QK-norm 'whole'), a softmax
 * router without renormalisation, SwiGLU experts of width
 * `feed_forward_length`. Heads span the hidden size.
 */

import { defineDecoder } from '../decoder';
import { standardTinyTensors } from '../tiny-tensors';

export const olmoe = defineDecoder({
  name: 'olmoe',
  graph: {
    rope: 'neox',
    routing: { scoring: 'softmax', normalize: false, sharedExpertGate: 'none' },
    qkNorm: 'whole',
    activation: 'silu',
  },
  expertWidth: (_, h) => h.denseFF,
  ownHeadDim: false,
  allowsDense: false,
  outputOptional: false,
  tiny: {
    defaults: (s) => ({ kvHeads: s.heads }),
    problem: (s) => {
      if (s.heads * s.headDim !== s.hidden) return `olmoe needs heads * head dim (${s.heads * s.headDim}) = hidden (${s.hidden})`;
      if (s.kvHeads !== s.heads) return 'olmoe needs kv heads = heads (its K-norm spans the hidden size)';
      return undefined;
    },
    tensors: (s) => standardTinyTensors(s, { qkNorm: 'whole' }),
    metadata: () => [],
  },
});
