/**
 * gpt-oss (GGUF architecture `gpt-oss`, llama.cpp's LLM_ARCH_OPENAI_MOE):
 * NeoX RoPE with YaRN scaling, biases on Q, K, V and the output projection,
 * a learned sink logit per head that joins every attention softmax, sliding-
 * window attention on even layers (llama.cpp's set_swa_pattern(2)), the FFN
 * input norm stored as `post_attention_norm`; a router with a logit bias
 * whose top-k logits are softmaxed (SOFTMAX_WEIGHT gating), and experts with
 * biases and the clamped SwiGLU (swiglu_oai: alpha 1.702, limit 7). No
 * QK-norm, no shared expert. Experts are MXFP4 in released checkpoints.
 */

import type { MoeArchitecture } from './moe-graph';

export const gptOss: MoeArchitecture = {
  arch: 'gpt-oss',
  graph: () => ({
    ropeOrdering: 'neox',
    router: { scoring: 'softmax-selected', normalize: false },
    sharedExpert: 'none',
    qkNorm: 'none',
    activation: 'swiglu-oai',
  }),
};
