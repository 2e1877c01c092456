/**
 * The config reader of a standard pre-norm MoE decoder (attention with Q, K,
 * V and output projections; a routed-expert FFN, optionally with a shared
 * expert, or a dense FFN on leading layers), parameterised by what an
 * architecture file declares: where its widths come from, which tensors are
 * optional, and the readers only it needs (scales, sliding windows).
 */

import type { GgufFile } from '../gguf/types';
import type { Architecture, GraphChoices, TinyRecipe } from './architecture';
import type { LayerTensors, ModelConfig, RopeConfig, ScaleConfig } from './config';
import { MODEL_LIMITS } from './config';
import { ArchMetadata, checkFfnWidths, checkStandardHeads, fullAttention, readCommonHparams, readRope } from './hparams';
import type { CommonHparams } from './hparams';
import { TensorFinder, denseFfn, moeFfn, standardAttention, tableFacts, tensorTable } from './tensor-table';

export interface DecoderSpec {
  name: string;
  graph: GraphChoices;
  /** The key of the routed expert width ('expert_feed_forward_length' falls back to feed_forward_length / experts used). */
  expertWidth(m: ArchMetadata, h: CommonHparams): number;
  /** The shared expert's width, 0 for none (default none). */
  sharedExpertWidth?(m: ArchMetadata, h: CommonHparams): number;
  /** Whether Q and K span heads*headDim (false: they span the hidden size, so heads*headDim must equal it). */
  ownHeadDim: boolean;
  /** Whether `expert_count` 0 is allowed (dense layers throughout). */
  allowsDense: boolean;
  /** Whether `output.weight` may be absent (tied to the token embedding). */
  outputOptional: boolean;
  /** The FFN input norm's tensor (default 'ffn_norm'). */
  ffnNormTensor?: 'ffn_norm' | 'post_attention_norm';
  /** Whether each layer has `attn_sinks` (required). */
  attentionSinks?: boolean;
  /** Whether the loader reads the `rope.scaling.yarn_*` keys. */
  readsYarnKeys?: boolean;
  /** Multipliers (default: none, attention 1/sqrt(headDim)). */
  scales?(m: ArchMetadata, h: CommonHparams): ScaleConfig;
  /** Per-layer attention windows (default: full attention everywhere). */
  attentionWindows?(m: ArchMetadata, h: CommonHparams, rope: RopeConfig): number[];
  tiny: TinyRecipe;
}

export function defineDecoder(spec: DecoderSpec): Architecture {
  return { name: spec.name, graph: spec.graph, tiny: spec.tiny, readConfig: (file) => readDecoderConfig(file, spec) };
}

export function defaultScales(headDim: number): ScaleConfig {
  return { embedding: 1, residual: 1, attention: 1 / Math.sqrt(headDim), logit: 1 };
}

function readDecoderConfig(file: GgufFile, spec: DecoderSpec): ModelConfig {
  const m = new ArchMetadata(file);
  const h = readCommonHparams(m, { allowsDense: spec.allowsDense });
  checkStandardHeads(m, h, { ownHeadDim: spec.ownHeadDim });
  const expertFF = spec.expertWidth(m, h);
  const sharedExpertFF = m.count('expert_shared_feed_forward_length', spec.sharedExpertWidth?.(m, h) ?? 0, 0, MODEL_LIMITS.maxWidth);
  const rope = readRope(m, { kind: spec.graph.rope, dims: h.headDimK, contextLength: h.contextLength, readsYarnKeys: spec.readsYarnKeys });
  const leadingDenseLayers = h.nExpert === 0 ? h.nLayer : m.count('leading_dense_block_count', m.optNumber('leading_dense_block_count') ?? 0, 0, h.nLayer);
  checkFfnWidths(m, { ...h, expertFF, leadingDenseLayers });

  const shape = { ...h, expertFF, sharedExpertFF };
  const t = new TensorFinder(file, m.arch);
  const layers: LayerTensors[] = [];
  for (let i = 0; i < h.nLayer; i++) {
    const b = `blk.${i}.`;
    layers.push({
      attnNorm: t.need(b + 'attn_norm.weight', [h.hidden]),
      attention: standardAttention(t, b, shape, { qkNorm: spec.graph.qkNorm, sinks: spec.attentionSinks }),
      ffnNorm: t.need(b + (spec.ffnNormTensor ?? 'ffn_norm') + '.weight', [h.hidden]),
      ffn: i < leadingDenseLayers ? denseFfn(t, b, shape) : moeFfn(t, b, shape, { sharedGate: spec.graph.routing.sharedExpertGate === 'sigmoid' }),
    });
  }
  const tensors = tensorTable(t, shape, layers, { outputOptional: spec.outputOptional });
  const { nExpertUsed } = h;
  return {
    arch: m.arch,
    ...h,
    expertFF,
    sharedExpertFF,
    leadingDenseLayers,
    rope,
    attentionWindow: spec.attentionWindows?.(m, h, rope) ?? fullAttention(h.nLayer),
    // None of these architectures' loaders reads expert_weights_scale: llama.cpp never scales them.
    routing: { ...spec.graph.routing, topK: nExpertUsed, weightsScale: 1 },
    activation: spec.graph.activation,
    scales: spec.scales?.(m, h) ?? defaultScales(h.headDimK),
    qkNorm: spec.graph.qkNorm,
    ...tableFacts(file, m.arch, tensors),
    tensors,
  };
}
