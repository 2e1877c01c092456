/**
 * The tensor list of a generated standard decoder, named and shaped as
 * llama.cpp loads it, with the optional tensors an architecture file picks.
 * Dims are in ggml order: dims[0] is the row length.
 */

import { kvU32 } from '../gguf/writer';
import type { GgufKv } from '../gguf/types';
import type { TensorSpec, TinyShape } from './architecture';
import type { QkNormKind } from './config';

export interface TinyTensorOptions {
  qkvBias?: boolean;
  qkNorm?: QkNormKind;
  outputBias?: boolean;
  sinks?: boolean;
  /** The FFN input norm's name (default 'ffn_norm'). */
  ffnNorm?: 'ffn_norm' | 'post_attention_norm';
  routerBias?: boolean;
  expertBiases?: boolean;
  /** A shared expert of width sharedFF: 'gated' adds its sigmoid gate vector. */
  shared?: 'gated' | 'ungated';
}

export function standardTinyTensors(s: TinyShape, o: TinyTensorOptions = {}): TensorSpec[] {
  const { hidden: H, headDim: D, experts: E, expertFF: F, vocab: V, sharedFF: S } = s;
  const q = s.heads * D;
  const kv = s.kvHeads * D;
  const specs: TensorSpec[] = [{ name: 'token_embd.weight', dims: [H, V], role: 'embedding' }];
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}.`;
    const add = (name: string, dims: number[], role: TensorSpec['role']): number => specs.push({ name: b + name, dims, role });
    add('attn_norm.weight', [H], 'norm');
    add('attn_q.weight', [H, q], 'matrix');
    add('attn_k.weight', [H, kv], 'matrix');
    add('attn_v.weight', [H, kv], 'matrix');
    if (o.qkvBias) {
      add('attn_q.bias', [q], 'bias');
      add('attn_k.bias', [kv], 'bias');
      add('attn_v.bias', [kv], 'bias');
    }
    if (o.qkNorm === 'per-head' || o.qkNorm === 'whole') {
      const perHead = o.qkNorm === 'per-head';
      add('attn_q_norm.weight', [perHead ? D : q], 'norm');
      add('attn_k_norm.weight', [perHead ? D : kv], 'norm');
    }
    add('attn_output.weight', [q, H], 'matrix');
    if (o.outputBias) add('attn_output.bias', [H], 'bias');
    if (o.sinks) add('attn_sinks.weight', [s.heads], 'sink');
    add(`${o.ffnNorm ?? 'ffn_norm'}.weight`, [H], 'norm');
    add('ffn_gate_inp.weight', [H, E], 'router');
    if (o.routerBias) add('ffn_gate_inp.bias', [E], 'router');
    for (const part of ['gate', 'up', 'down'] as const) {
      add(`ffn_${part}_exps.weight`, part === 'down' ? [F, H, E] : [H, F, E], 'expert');
      if (o.expertBiases) add(`ffn_${part}_exps.bias`, part === 'down' ? [H, E] : [F, E], 'bias');
    }
    if (o.shared) {
      if (o.shared === 'gated') add('ffn_gate_inp_shexp.weight', [H], 'router');
      add('ffn_gate_shexp.weight', [H, S], 'matrix');
      add('ffn_up_shexp.weight', [H, S], 'matrix');
      add('ffn_down_shexp.weight', [S, H], 'matrix');
    }
  }
  specs.push({ name: 'output_norm.weight', dims: [H], role: 'norm' }, { name: 'output.weight', dims: [H, V], role: 'matrix' });
  return specs;
}

/** `<arch>.expert_feed_forward_length` for architectures that read the expert width from it. */
export function expertWidthKv(arch: string, s: TinyShape): GgufKv {
  return kvU32(`${arch}.expert_feed_forward_length`, s.expertFF);
}
