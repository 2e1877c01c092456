/**
 * Qwen3-MoE (llama.cpp's src/models/qwen3moe.cpp): NeoX RoPE, RMSNorm of
 * each query and key head before RoPE (QK-norm per head), a softmax router
 * renormalised over the top-k, SwiGLU experts; head dim independent of the
 * hidden size (Qwen3-30B-A3B: 32 heads of 128 over hidden 2048).
 */

import { defineDecoder } from '../decoder';
import { expertWidthOrShare } from '../hparams';
import { expertWidthKv, standardTinyTensors } from '../tiny-tensors';

export const qwen3moe = defineDecoder({
  name: 'qwen3moe',
  graph: {
    rope: 'neox',
    routing: { scoring: 'softmax', normalize: true, sharedExpertGate: 'none' },
    qkNorm: 'per-head',
    activation: 'silu',
  },
  expertWidth: expertWidthOrShare,
  ownHeadDim: true,
  allowsDense: false,
  outputOptional: true,
  tiny: {
    // Heads wider than hidden / heads, as in the real models.
    defaults: (s) => ({ headDim: (2 * s.hidden) / s.heads }),
    tensors: (s) => standardTinyTensors(s, { qkNorm: 'per-head' }),
    metadata: (s) => [expertWidthKv('qwen3moe', s)],
  },
});
