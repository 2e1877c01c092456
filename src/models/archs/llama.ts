/**
 * Mixtral, stored as GGUF architecture `llama` with experts (llama.cpp's
 * src/models/llama.cpp): RoPE on adjacent pairs, a softmax router whose top-k
 * weights are renormalised to sum to one, SwiGLU experts whose width is
 * `feed_forward_length`; no biases, no QK-norm, no shared expert. A file
 * without experts is a dense Llama, and `output.weight` may be tied to the
 * token embedding.
 */

import { defineDecoder } from '../decoder';
import { standardTinyTensors } from '../tiny-tensors';

export const llama = defineDecoder({
  name: 'llama',
  graph: {
    rope: 'normal',
    routing: { scoring: 'softmax', normalize: true, sharedExpertGate: 'none' },
    qkNorm: 'none',
    activation: 'silu',
  },
  expertWidth: (_, h) => h.denseFF,
  ownHeadDim: true,
  allowsDense: true,
  outputOptional: true,
  tiny: {
    tensors: (s) => standardTinyTensors(s),
    metadata: () => [],
  },
});
