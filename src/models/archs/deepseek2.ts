/**
 * DeepSeek-V2 / V2-Lite, Moonlight and other models in that layout (GGUF
 * architecture `deepseek2`, llama.cpp's src/models/deepseek2.cpp):
 *
 * - Multi-head latent attention, in the absorbed form: one cache row per
 *   position of L = kv_lora_rank compressed KV values (RMS-normed) and the
 *   r = rope.dimension_count rotated shared key; each head's query (n + r:
 *   key_length_mla) is taken into the latent space by attn_k_b and its output
 *   out of it by attn_v_b (value_length_mla each). The query comes from
 *   attn_q, or through a low-rank bottleneck (attn_q_a, its norm, attn_q_b)
 *   when q_lora_rank > 0. RoPE on adjacent pairs, YaRN with
 *   yarn_log_multiplier; q . k is scaled by mscale^2 / sqrt(n + r).
 * - The first leading_dense_block_count layers have a dense SwiGLU FFN; the
 *   others route to experts by softmax or sigmoid (expert_gating_func), with
 *   an optional selection bias (exp_probs_b) that picks experts but does not
 *   weight them, optional renormalisation (expert_weights_norm) and a scale
 *   (expert_weights_scale), beside expert_shared_count shared experts added
 *   ungated.
 *
 * Refused with a typed error: files without the *_mla keys (the older joint
 * attn_kv_b layout, which llama.cpp runs as standard attention),
 * group-limited routing (expert_group_count > 1) and attention temperature
 * scaling.
 */

import { optBool } from '../../gguf/metadata';
import type { GgufFile } from '../../gguf/types';
import { kvBool, kvF32, kvString, kvU32 } from '../../gguf/writer';
import type { Architecture, GraphChoices, TensorSpec, TinyShape } from '../architecture';
import type { LatentAttentionConfig, LatentAttentionTensors, LayerTensors, ModelConfig, RopeConfig } from '../config';
import { defaultScales } from '../decoder';
import { MODEL_LIMITS } from '../config';
import { ArchMetadata, checkFfnWidths, fullAttention, readCommonHparams, readRope } from '../hparams';
import { TensorFinder, denseFfn, moeFfn, tableFacts, tensorTable } from '../tensor-table';
import { standardTinyTensors } from '../tiny-tensors';

const graph: GraphChoices = {
  rope: 'normal',
  routing: { scoring: 'softmax', normalize: false, sharedExpertGate: 'none' },
  qkNorm: 'none',
  activation: 'silu',
};

const f = Math.fround;

function readConfig(file: GgufFile): ModelConfig {
  const m = new ArchMetadata(file);
  const h = readCommonHparams(m, { allowsDense: false });
  const required = (key: string): number => m.required(key);
  if (m.optNumber('attention.key_length_mla') === undefined || m.optNumber('attention.value_length_mla') === undefined) {
    throw m.error('files without attention.key_length_mla and value_length_mla (the older joint attn_kv_b layout) are not supported');
  }
  if ((m.optNumber('expert_group_count') ?? 0) > 1) throw m.error('group-limited routing (expert_group_count > 1) is not supported');
  if ((m.optNumber('attention.temperature_scale') ?? 0) !== 0) throw m.error('attention temperature scaling is not supported');

  const { maxHeadDim, maxWidth } = MODEL_LIMITS;
  const kvLoraRank = m.count('attention.kv_lora_rank', required('attention.kv_lora_rank'), 1, maxHeadDim);
  const ropeDim = m.count('rope.dimension_count', required('rope.dimension_count'), 2, maxHeadDim);
  const keyLengthMla = m.count('attention.key_length_mla', required('attention.key_length_mla'), 1, maxHeadDim);
  const latent: LatentAttentionConfig = {
    kvLoraRank,
    qLoraRank: m.count('attention.q_lora_rank', m.optNumber('attention.q_lora_rank') ?? 0, 0, maxWidth),
    ropeDim,
    nopeDim: keyLengthMla - ropeDim,
    valueDim: m.count('attention.value_length_mla', required('attention.value_length_mla'), 1, maxHeadDim),
  };
  if (latent.nopeDim < 1) throw m.error(`key_length_mla ${keyLengthMla} must exceed the rope dimension count ${ropeDim}`);
  // The cache row is [latent | rope key], one for all heads; its first L values are the values.
  if (h.nHeadKv !== 1 || h.headDimK !== kvLoraRank + ropeDim || h.headDimV !== kvLoraRank) {
    throw m.error(`latent attention needs head_count_kv 1, key_length kv_lora_rank + rope dims (${kvLoraRank + ropeDim}) and value_length kv_lora_rank (${kvLoraRank}); got ${h.nHeadKv}, ${h.headDimK}, ${h.headDimV}`);
  }

  const gating = m.optNumber('expert_gating_func') ?? 0;
  if (gating !== 0 && gating !== 1 && gating !== 2) throw m.error(`expert_gating_func ${gating} is not supported (1 softmax, 2 sigmoid)`);
  const scale = m.real('expert_weights_scale', m.optNumber('expert_weights_scale') ?? 0);
  const expertFF = m.count('expert_feed_forward_length', required('expert_feed_forward_length'), 1, maxWidth);
  const sharedExpertFF = m.count('expert_shared_count', required('expert_shared_count'), 0, Math.floor(maxWidth / expertFF)) * expertFF;
  const leadingDenseLayers = m.count('leading_dense_block_count', m.optNumber('leading_dense_block_count') ?? 0, 0, h.nLayer);
  checkFfnWidths(m, { ...h, expertFF, leadingDenseLayers });
  const rope = readDeepseekRope(m, ropeDim, h.contextLength);
  const shape = { ...h, expertFF, sharedExpertFF };

  const t = new TensorFinder(file, m.arch);
  const layers: LayerTensors[] = [];
  for (let i = 0; i < h.nLayer; i++) {
    const b = `blk.${i}.`;
    if (t.has(b + 'attn_kv_b.weight')) throw m.error(`${b}attn_kv_b.weight: the joint attn_kv_b layout is not supported`);
    layers.push({
      attnNorm: t.need(b + 'attn_norm.weight', [h.hidden]),
      attention: latentAttention(t, b, h.hidden, h.nHead, latent),
      ffnNorm: t.need(b + 'ffn_norm.weight', [h.hidden]),
      ffn: i < leadingDenseLayers ? denseFfn(t, b, shape) : moeFfn(t, b, shape, { sharedGate: false }),
    });
  }
  const tensors = tensorTable(t, { ...shape, headDimK: ropeDim }, layers, { outputOptional: true });
  return {
    arch: m.arch,
    ...h,
    latent,
    expertFF,
    sharedExpertFF,
    leadingDenseLayers,
    rope,
    attentionWindow: fullAttention(h.nLayer),
    routing: {
      ...graph.routing,
      scoring: gating === 2 ? 'sigmoid' : 'softmax',
      normalize: optBool(file, m.key('expert_weights_norm')) ?? false,
      topK: h.nExpertUsed,
      // llama.cpp scales only by a factor other than 0 and 1.
      weightsScale: scale === 0 ? 1 : scale,
    },
    activation: graph.activation,
    scales: { ...defaultScales(keyLengthMla), attention: latentScale(rope, keyLengthMla) },
    qkNorm: 'none',
    ...tableFacts(file, m.arch, tensors),
    tensors,
  };
}

function latentAttention(t: TensorFinder, b: string, hidden: number, heads: number, l: LatentAttentionConfig): LatentAttentionTensors {
  const dk = l.nopeDim + l.ropeDim;
  const lora = l.qLoraRank > 0;
  return {
    kind: 'latent',
    q: lora ? undefined : t.need(b + 'attn_q.weight', [hidden, heads * dk]),
    qA: lora ? t.need(b + 'attn_q_a.weight', [hidden, l.qLoraRank]) : undefined,
    qANorm: lora ? t.need(b + 'attn_q_a_norm.weight', [l.qLoraRank]) : undefined,
    qB: lora ? t.need(b + 'attn_q_b.weight', [l.qLoraRank, heads * dk]) : undefined,
    kvAMqa: t.need(b + 'attn_kv_a_mqa.weight', [hidden, l.kvLoraRank + l.ropeDim]),
    kvANorm: t.need(b + 'attn_kv_a_norm.weight', [l.kvLoraRank]),
    kB: t.need(b + 'attn_k_b.weight', [l.nopeDim, l.kvLoraRank, heads]),
    vB: t.need(b + 'attn_v_b.weight', [l.kvLoraRank, l.valueDim, heads]),
    attnOut: t.need(b + 'attn_output.weight', [heads * l.valueDim, hidden]),
  };
}

/**
 * RoPE as llama.cpp's deepseek2 loader reads it: the YaRN betas and factors
 * keep their defaults; `rope.scaling.yarn_log_multiplier` is stored as 0.1
 * mscale_all_dim and divided back, and serves as the numerator's mscale too.
 */
function readDeepseekRope(m: ArchMetadata, ropeDim: number, contextLength: number): RopeConfig {
  const rope = readRope(m, { kind: graph.rope, dims: ropeDim, contextLength });
  const stored = m.optNumber('rope.scaling.yarn_log_multiplier');
  if (stored === undefined) return rope;
  m.real('rope.scaling.yarn_log_multiplier', stored);
  const logMultiplier = f(stored / f(0.1));
  return { ...rope, yarn: { ...rope.yarn, logMultiplier, mscale: logMultiplier } };
}

/** llama.cpp's kq_scale for deepseek2: mscale^2 / sqrt(n + r), from the context's YaRN attention factor, in f32. */
function latentScale(rope: RopeConfig, keyLengthMla: number): number {
  const freqScale = rope.scalingType === 'none' ? 1 : f(1 / rope.scalingFactor);
  const extFactor = rope.yarn.extFactor ?? (rope.scalingType === 'yarn' ? 1 : 0);
  const ln = (x: number): number => f(Math.log(x));
  let attnFactor = 1;
  if (extFactor !== 0) {
    const mscale = (s: number, k: number): number => (s <= 1 ? 1 : f(f(f(0.1 * k) * ln(s)) + 1));
    const factor = f(1 / freqScale);
    const logMul = rope.yarn.logMultiplier;
    attnFactor = logMul !== 0 ? f(mscale(factor, rope.yarn.mscale ?? 1) / mscale(factor, logMul)) : mscale(factor, 1);
    attnFactor = f(attnFactor * f(1 / f(1 + f(0.1 * ln(factor)))));
  }
  attnFactor = f(attnFactor * rope.attnFactor);
  const inverse = ln(f(1 / freqScale));
  const original = f(attnFactor * f(1 + f(0.1 * inverse)));
  const mscale = f(original * f(1 + f(f(0.1 * rope.yarn.logMultiplier) * inverse)));
  return f(f(mscale * mscale) / f(Math.sqrt(keyLengthMla)));
}

/** Generated models: latent 64 (256 for K-quants), rope 16, heads of 32 + 16, values of hidden / heads. */
const TINY_ROPE = 16;
const TINY_NOPE = 32;

function tinyTensors(s: TinyShape): TensorSpec[] {
  const { hidden: H, heads, experts: E, expertFF: F, layers } = s;
  const L = H;
  const dk = TINY_NOPE + TINY_ROPE;
  const dv = H / heads;
  const qLora = s.qLoraRank ?? 0;
  const dense = s.leadingDense ?? 1;
  const standard = standardTinyTensors({ ...s, layers: 0 }); // token_embd, output_norm, output
  const specs: TensorSpec[] = [standard[0]];
  for (let i = 0; i < layers; i++) {
    const add = (name: string, dims: number[], role: TensorSpec['role'], extra: Partial<TensorSpec> = {}) =>
      specs.push({ name: `blk.${i}.${name}`, dims, role, ...extra });
    add('attn_norm.weight', [H], 'norm');
    if (qLora > 0) {
      add('attn_q_a.weight', [H, qLora], 'matrix');
      add('attn_q_a_norm.weight', [qLora], 'norm');
      add('attn_q_b.weight', [qLora, heads * dk], 'matrix');
    } else {
      add('attn_q.weight', [H, heads * dk], 'matrix');
    }
    add('attn_kv_a_mqa.weight', [H, L + TINY_ROPE], 'matrix');
    add('attn_kv_a_norm.weight', [L], 'norm');
    // F32 by default: the llama.cpp build the tests compare with cannot run these 3-D products quantized on the CPU
    // (with Q8_0, Q4_0, MXFP4 or F16 attn_k_b its scheduler asserts, the repacked weights supporting only 2-D products;
    // with K-quant attn_v_b every logit is 0). Quantized (quantizedAbsorption), rows of the non-rotated head width fall
    // back to another type in K-quant files, as llama-quantize does.
    const absorption = s.quantizedAbsorption ? { fallback: true } : { f32: true };
    add('attn_k_b.weight', [TINY_NOPE, L, heads], 'matrix', absorption);
    add('attn_v_b.weight', [L, dv, heads], 'matrix', absorption);
    add('attn_output.weight', [heads * dv, H], 'matrix');
    add('ffn_norm.weight', [H], 'norm');
    if (i < dense) {
      add('ffn_gate.weight', [H, 2 * F], 'matrix');
      add('ffn_up.weight', [H, 2 * F], 'matrix');
      add('ffn_down.weight', [2 * F, H], 'matrix');
      continue;
    }
    add('ffn_gate_inp.weight', [H, E], 'router');
    if (s.selectionBias) add('exp_probs_b.bias', [E], 'router');
    add('ffn_gate_exps.weight', [H, F, E], 'expert');
    add('ffn_up_exps.weight', [H, F, E], 'expert');
    add('ffn_down_exps.weight', [F, H, E], 'expert');
    add('ffn_gate_shexp.weight', [H, F], 'matrix');
    add('ffn_up_shexp.weight', [H, F], 'matrix');
    add('ffn_down_shexp.weight', [F, H], 'matrix');
  }
  return [...specs, ...standard.slice(1)];
}

function tinyMetadata(s: TinyShape) {
  const a = 'deepseek2';
  const L = s.hidden;
  const kvs = [
    kvU32(`${a}.feed_forward_length`, 2 * s.expertFF),
    kvU32(`${a}.expert_feed_forward_length`, s.expertFF),
    kvU32(`${a}.expert_shared_count`, 1),
    kvU32(`${a}.leading_dense_block_count`, s.leadingDense ?? 1),
    kvU32(`${a}.attention.head_count_kv`, 1),
    kvU32(`${a}.attention.q_lora_rank`, s.qLoraRank ?? 0),
    kvU32(`${a}.attention.kv_lora_rank`, L),
    kvU32(`${a}.attention.key_length`, L + TINY_ROPE),
    kvU32(`${a}.attention.value_length`, L),
    kvU32(`${a}.attention.key_length_mla`, TINY_NOPE + TINY_ROPE),
    kvU32(`${a}.attention.value_length_mla`, s.hidden / s.heads),
    kvU32(`${a}.rope.dimension_count`, TINY_ROPE),
    kvU32(`${a}.expert_gating_func`, s.gating === 'sigmoid' ? 2 : 1),
    kvF32(`${a}.expert_weights_scale`, s.weightsScale ?? 1),
    // As converted DeepSeek-V2-Lite: YaRN with its log multiplier (0.1 mscale_all_dim), scaled down.
    kvString(`${a}.rope.scaling.type`, 'yarn'),
    kvF32(`${a}.rope.scaling.factor`, 4),
    kvU32(`${a}.rope.scaling.original_context_length`, s.contextLength / 4),
    kvF32(`${a}.rope.scaling.yarn_log_multiplier`, 0.0707),
  ];
  if (s.normalizeWeights) kvs.push(kvBool(`${a}.expert_weights_norm`, true));
  return kvs;
}

export const deepseek2: Architecture = {
  name: 'deepseek2',
  graph,
  readConfig,
  tiny: {
    defaults: () => ({ leadingDense: 1 }),
    problem: (s) => {
      if (s.hidden % s.heads !== 0) return `deepseek2 needs hidden (${s.hidden}) to be a multiple of heads (${s.heads})`;
      if ((s.leadingDense ?? 1) >= s.layers) return `deepseek2 needs a MoE layer after its ${s.leadingDense ?? 1} dense one(s): give more layers`;
      return undefined;
    },
    tensors: tinyTensors,
    metadata: tinyMetadata,
  },
};
