/**
 * Tensor tables and hyper-parameter keys of the architectures that generated
 * test models use, named and shaped exactly as llama.cpp loads them.
 * Dims are in ggml order: dims[0] is the row length.
 */

export type TinyArch = 'llama' | 'qwen2moe' | 'qwen3moe' | 'olmoe' | 'granitemoe' | 'gpt-oss';
export const TINY_ARCHS: readonly TinyArch[] = ['llama', 'qwen2moe', 'qwen3moe', 'olmoe', 'granitemoe', 'gpt-oss'];

export interface TinyShape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  topK: number;
  expertFF: number;
  /** Shared-expert FFN width (qwen2moe only). */
  sharedFF: number;
  vocab: number;
  contextLength: number;
  ropeTheta: number;
  rmsEps: number;
}

/** How a tensor is stored: norms, biases, routers and attention sinks stay F32, as llama.cpp keeps them. */
export type TensorRole = 'norm' | 'bias' | 'router' | 'sink' | 'matrix' | 'embedding' | 'expert';

export interface TensorSpec {
  name: string;
  dims: number[];
  role: TensorRole;
}

export function tensorSpecs(arch: TinyArch, s: TinyShape): TensorSpec[] {
  const { hidden: H, headDim: D, experts: E, expertFF: F, vocab: V } = s;
  const q = s.heads * D;
  const kv = s.kvHeads * D;
  const specs: TensorSpec[] = [{ name: 'token_embd.weight', dims: [H, V], role: 'embedding' }];
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}.`;
    specs.push(
      { name: b + 'attn_norm.weight', dims: [H], role: 'norm' },
      { name: b + 'attn_q.weight', dims: [H, q], role: 'matrix' },
      { name: b + 'attn_k.weight', dims: [H, kv], role: 'matrix' },
      { name: b + 'attn_v.weight', dims: [H, kv], role: 'matrix' },
    );
    if (arch === 'qwen2moe' || arch === 'gpt-oss') {
      specs.push(
        { name: b + 'attn_q.bias', dims: [q], role: 'bias' },
        { name: b + 'attn_k.bias', dims: [kv], role: 'bias' },
        { name: b + 'attn_v.bias', dims: [kv], role: 'bias' },
      );
    }
    // QK-norm: per head for qwen3moe, over the whole projection for olmoe.
    if (arch === 'qwen3moe') {
      specs.push(
        { name: b + 'attn_q_norm.weight', dims: [D], role: 'norm' },
        { name: b + 'attn_k_norm.weight', dims: [D], role: 'norm' },
      );
    }
    if (arch === 'olmoe') {
      specs.push(
        { name: b + 'attn_q_norm.weight', dims: [q], role: 'norm' },
        { name: b + 'attn_k_norm.weight', dims: [kv], role: 'norm' },
      );
    }
    if (arch === 'gpt-oss') {
      // gpt-oss: output bias, a sink logit per head, the FFN norm named post_attention_norm, a router bias and expert biases.
      specs.push(
        { name: b + 'attn_output.weight', dims: [q, H], role: 'matrix' },
        { name: b + 'attn_output.bias', dims: [H], role: 'bias' },
        { name: b + 'attn_sinks.weight', dims: [s.heads], role: 'sink' },
        { name: b + 'post_attention_norm.weight', dims: [H], role: 'norm' },
        { name: b + 'ffn_gate_inp.weight', dims: [H, E], role: 'router' },
        { name: b + 'ffn_gate_inp.bias', dims: [E], role: 'router' },
        { name: b + 'ffn_gate_exps.weight', dims: [H, F, E], role: 'expert' },
        { name: b + 'ffn_gate_exps.bias', dims: [F, E], role: 'bias' },
        { name: b + 'ffn_up_exps.weight', dims: [H, F, E], role: 'expert' },
        { name: b + 'ffn_up_exps.bias', dims: [F, E], role: 'bias' },
        { name: b + 'ffn_down_exps.weight', dims: [F, H, E], role: 'expert' },
        { name: b + 'ffn_down_exps.bias', dims: [H, E], role: 'bias' },
      );
      continue;
    }
    specs.push(
      { name: b + 'attn_output.weight', dims: [q, H], role: 'matrix' },
      { name: b + 'ffn_norm.weight', dims: [H], role: 'norm' },
      { name: b + 'ffn_gate_inp.weight', dims: [H, E], role: 'router' },
      { name: b + 'ffn_gate_exps.weight', dims: [H, F, E], role: 'expert' },
      { name: b + 'ffn_up_exps.weight', dims: [H, F, E], role: 'expert' },
      { name: b + 'ffn_down_exps.weight', dims: [F, H, E], role: 'expert' },
    );
    if (arch === 'qwen2moe') {
      specs.push(
        { name: b + 'ffn_gate_inp_shexp.weight', dims: [H], role: 'router' },
        { name: b + 'ffn_gate_shexp.weight', dims: [H, s.sharedFF], role: 'matrix' },
        { name: b + 'ffn_up_shexp.weight', dims: [H, s.sharedFF], role: 'matrix' },
        { name: b + 'ffn_down_shexp.weight', dims: [s.sharedFF, H], role: 'matrix' },
      );
    }
  }
  specs.push(
    { name: 'output_norm.weight', dims: [H], role: 'norm' },
    { name: 'output.weight', dims: [H, V], role: 'matrix' },
  );
  return specs;
}

/** Architecture constraints llama.cpp's loader imposes; returns the first broken one. */
export function shapeProblem(arch: TinyArch, s: TinyShape): string | undefined {
  if (s.topK < 1 || s.topK > s.experts) return `top-k ${s.topK} must be in 1..experts (${s.experts})`;
  if (s.heads % s.kvHeads !== 0) return `heads (${s.heads}) must be a multiple of kv heads (${s.kvHeads})`;
  if (s.headDim % 2 !== 0) return `head dim (${s.headDim}) must be even for RoPE`;
  const fixedHeadDim = arch === 'qwen2moe' || arch === 'olmoe';
  if (fixedHeadDim && s.heads * s.headDim !== s.hidden) {
    return `${arch} needs heads * head dim (${s.heads * s.headDim}) = hidden (${s.hidden})`;
  }
  if (arch === 'olmoe' && s.kvHeads !== s.heads) return 'olmoe needs kv heads = heads (its K-norm spans the hidden size)';
  return undefined;
}
