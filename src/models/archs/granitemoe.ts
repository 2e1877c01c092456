/**
 * IBM Granite 3.x MoE (llama.cpp's src/models/granite-moe.cpp): Mixtral's
 * graph (RoPE on adjacent pairs, a softmax router renormalised over the
 * top-k, SwiGLU experts) with four multipliers from the metadata: the token
 * embedding times `embedding_scale`, each attention and FFN output times
 * `residual_scale` before its residual add, q · k times `attention.scale`
 * instead of 1/sqrt(headDim), and the logits divided by `logit_scale`.
 * Granite MoE Shared models add an ungated shared expert (ffn_*_shexp) to
 * the routed experts' sum, before the residual scale.
 */

import { optBool } from '../../gguf/metadata';
import { kvF32, kvU32 } from '../../gguf/writer';
import type { ScaleConfig } from '../config';
import { defineDecoder } from '../decoder';
import type { ArchMetadata, CommonHparams } from '../hparams';
import { standardTinyTensors } from '../tiny-tensors';

/**
 * llama.cpp's granite loader: logit_scale is required; the others are
 * optional and 0 (their default) means "not applied". `rope.scaling.finetuned`
 * false (no RoPE) is not implemented.
 */
function readGraniteScales(m: ArchMetadata, h: CommonHparams): ScaleConfig {
  const logit = m.optNumber('logit_scale');
  if (logit === undefined) throw m.error(`required metadata key ${m.key('logit_scale')} is missing`);
  for (const key of ['logit_scale', 'embedding_scale', 'residual_scale', 'attention.scale']) {
    const value = m.optNumber(key);
    if (value !== undefined) m.real(key, value);
  }
  if (optBool(m.file, m.key('rope.scaling.finetuned')) === false) {
    throw m.error('models without RoPE (rope.scaling.finetuned = false) are not supported');
  }
  const orOne = (v: number | undefined): number => (v === undefined || v === 0 ? 1 : v);
  const attention = m.optNumber('attention.scale') ?? 0;
  return {
    embedding: orOne(m.optNumber('embedding_scale')),
    residual: orOne(m.optNumber('residual_scale')),
    attention: attention === 0 ? 1 / Math.sqrt(h.headDimK) : attention,
    // llama.cpp divides the logits only by a logit_scale other than 0.
    logit: orOne(logit),
  };
}

export const granitemoe = defineDecoder({
  name: 'granitemoe',
  graph: {
    rope: 'normal',
    routing: { scoring: 'softmax', normalize: true, sharedExpertGate: 'none' },
    qkNorm: 'none',
    activation: 'silu',
  },
  expertWidth: (_, h) => h.denseFF,
  // "Granite MoE Shared": an ungated shared expert beside the routed ones when its width is set.
  sharedExpertWidth: (m) => m.uniform('expert_shared_feed_forward_length') ?? 0,
  ownHeadDim: true,
  allowsDense: false,
  outputOptional: true,
  scales: readGraniteScales,
  tiny: {
    // No shared expert unless a width is asked for (--shared-ff).
    defaults: () => ({ sharedFF: 0 }),
    tensors: (s) => standardTinyTensors(s, { shared: s.sharedFF > 0 ? 'ungated' : undefined }),
    // Granite 3.0 1B-A400M's multipliers, but an attention scale that is not 1/sqrt(headDim) at tiny head sizes.
    metadata: (s) => [
      kvF32('granitemoe.embedding_scale', 12),
      kvF32('granitemoe.residual_scale', 0.22),
      kvF32('granitemoe.attention.scale', 0.1875),
      kvF32('granitemoe.logit_scale', 6),
      ...(s.sharedFF > 0 ? [kvU32('granitemoe.expert_shared_feed_forward_length', s.sharedFF)] : []),
    ],
  },
});
