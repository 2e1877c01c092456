/**
 * Qwen1.5-MoE / Qwen2-MoE (llama.cpp's src/models/qwen2moe.cpp): NeoX RoPE,
 * biases on Q, K and V, a softmax router without renormalisation, and a
 * shared expert beside the routed ones whose output is scaled per token by
 * sigmoid(ffn_gate_inp_shexp · x). Heads span the hidden size.
 */

import { kvU32 } from '../../gguf/writer';
import { defineDecoder } from '../decoder';
import { expertWidthOrShare } from '../hparams';
import { expertWidthKv, standardTinyTensors } from '../tiny-tensors';

export const qwen2moe = defineDecoder({
  name: 'qwen2moe',
  graph: {
    rope: 'neox',
    routing: { scoring: 'softmax', normalize: false, sharedExpertGate: 'sigmoid' },
    qkNorm: 'none',
    activation: 'silu',
  },
  expertWidth: expertWidthOrShare,
  sharedExpertWidth: (m, h) => m.uniform('expert_shared_feed_forward_length') ?? h.denseFF,
  ownHeadDim: false,
  allowsDense: false,
  outputOptional: false,
  tiny: {
    problem: (s) => (s.heads * s.headDim !== s.hidden ? `qwen2moe needs heads * head dim (${s.heads * s.headDim}) = hidden (${s.hidden})` : undefined),
    tensors: (s) => standardTinyTensors(s, { qkvBias: true, shared: 'gated' }),
    metadata: (s) => [expertWidthKv('qwen2moe', s), kvU32('qwen2moe.expert_shared_feed_forward_length', s.sharedFF)],
  },
});
