/**
 * gpt-oss (GGUF architecture `gpt-oss`, llama.cpp's LLM_ARCH_OPENAI_MOE,
 * src/models/openai-moe-iswa.cpp): NeoX RoPE with YaRN scaling, biases on Q,
 * K, V and the output projection, a learned sink logit per head that joins
 * every attention softmax, sliding-window attention on even layers
 * (set_swa_pattern(2)), the FFN input norm stored as `post_attention_norm`; a
 * router with a logit bias whose top-k logits are softmaxed, and experts with
 * biases and the clamped SwiGLU (swiglu_oai: alpha 1.702, limit 7). No
 * QK-norm, no shared expert. Experts are MXFP4 in released checkpoints.
 */

import { optNumber } from '../../gguf/metadata';
import { kvF32, kvString, kvU32 } from '../../gguf/writer';
import { MODEL_LIMITS } from '../config';
import type { RopeConfig } from '../config';
import { defineDecoder } from '../decoder';
import type { ArchMetadata, CommonHparams } from '../hparams';
import { expertWidthOrShare } from '../hparams';
import { expertWidthKv, standardTinyTensors } from '../tiny-tensors';

/** gpt-oss's sliding window in generated models (real checkpoints: 128). */
export const GPT_OSS_SLIDING_WINDOW = 16;

/**
 * `attention.sliding_window` is required; of every `sliding_window_pattern`
 * layers (default 2) all but the last slide, as llama.cpp's set_swa_pattern.
 */
function readSlidingWindows(m: ArchMetadata, h: CommonHparams, rope: RopeConfig): number[] {
  const window = m.optNumber('attention.sliding_window');
  if (window === undefined) throw m.error(`${m.key('attention.sliding_window')} must be a positive integer`);
  m.count('attention.sliding_window', window, 1, MODEL_LIMITS.maxContext);
  const period = m.count('attention.sliding_window_pattern', m.uniform('attention.sliding_window_pattern') ?? 2, 0, MODEL_LIMITS.maxLayers);
  const swaFreqBase = optNumber(m.file, m.key('rope.freq_base_swa'));
  if (swaFreqBase !== undefined && swaFreqBase !== rope.freqBase) {
    throw m.error(`a separate RoPE base for sliding-window layers (${swaFreqBase}) is not supported`);
  }
  // Layer l slides unless it is the last of its period (period 0: every layer slides).
  return Array.from({ length: h.nLayer }, (_, l) => (period === 0 || l % period < period - 1 ? window : 0));
}

export const gptOss = defineDecoder({
  name: 'gpt-oss',
  graph: {
    rope: 'neox',
    routing: { scoring: 'softmax-selected', normalize: false, sharedExpertGate: 'none' },
    qkNorm: 'none',
    activation: 'swiglu-oai',
  },
  expertWidth: expertWidthOrShare,
  ownHeadDim: true,
  allowsDense: false,
  outputOptional: false,
  ffnNormTensor: 'post_attention_norm',
  attentionSinks: true,
  attentionWindows: readSlidingWindows,
  tiny: {
    // Released checkpoints ship MXFP4 experts with F32, F16 or Q8_0 elsewhere.
    weightTypes: ['f32', 'f16', 'q8_0', 'mxfp4'],
    tensors: (s) =>
      standardTinyTensors(s, { qkvBias: true, outputBias: true, sinks: true, ffnNorm: 'post_attention_norm', routerBias: true, expertBiases: true }),
    // As converted checkpoints: YaRN (scaled down from factor 32 over 4096), and a window short enough that 40-token tests slide.
    metadata: (s) => [
      expertWidthKv('gpt-oss', s),
      kvU32('gpt-oss.attention.sliding_window', GPT_OSS_SLIDING_WINDOW),
      kvString('gpt-oss.rope.scaling.type', 'yarn'),
      kvF32('gpt-oss.rope.scaling.factor', 4),
      kvU32('gpt-oss.rope.scaling.original_context_length', s.contextLength / 4),
    ],
  },
});
