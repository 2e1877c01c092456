/**
 * Finding a decoder's tensors in a GGUF file by their llama.cpp names and
 * checking their dims (ggml order: dims[0] is the row length), plus the
 * tensor groups most architectures share (standard attention, MoE and dense
 * FFNs, the embedding and output). Every tensor the graph uses is checked
 * against the shape the config implies, so a wrong config fails here, with
 * the tensor named, rather than as garbage logits later.
 */

import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import { optNumber, optString, optStringArray } from '../gguf/metadata';
import { ModelConfigError } from './config';
import type { DenseFfnTensors, LayerTensors, ModelConfig, MoeFfnTensors, QkNormKind, StandardAttentionTensors, TensorTable } from './config';

export class TensorFinder {
  private readonly byName: Map<string, GgufTensorInfo>;

  constructor(file: GgufFile, readonly arch: string) {
    this.byName = new Map(file.tensors.map((t) => [t.name, t]));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  dims(name: string): readonly number[] | undefined {
    return this.byName.get(name)?.dims;
  }

  /** The name of a required tensor of the given dims. */
  need(name: string, dims: number[]): string {
    const t = this.byName.get(name);
    if (!t) {
      const fused = name.endsWith('attn_q.weight') && this.byName.has(name.replace('attn_q', 'attn_qkv'));
      const hint = fused ? ' (fused attn_qkv tensors are not supported)' : '';
      throw new ModelConfigError('MISSING_TENSOR', `${this.arch}: tensor ${name} is missing${hint}`);
    }
    checkDims(this.arch, t, dims);
    return name;
  }

  /** The name of an optional tensor, checked when present. */
  maybe(name: string, dims: number[]): string | undefined {
    return this.byName.has(name) ? this.need(name, dims) : undefined;
  }
}

function checkDims(arch: string, t: GgufTensorInfo, expected: number[]): void {
  // Trailing 1s are not stored in GGUF, so [H, 1] and [H] are the same shape.
  const trim = (d: readonly number[]): number[] => {
    const out = [...d];
    while (out.length > 1 && out[out.length - 1] === 1) out.pop();
    return out;
  };
  const got = trim(t.dims);
  const want = trim(expected);
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new ModelConfigError('BAD_SHAPE', `${arch}: tensor ${t.name} has dims [${t.dims.join(', ')}], expected [${expected.join(', ')}]`);
  }
}

/** The sizes the shared tensor groups are checked against. */
export interface TableShape {
  hidden: number;
  nHead: number;
  nHeadKv: number;
  headDimK: number;
  nExpert: number;
  expertFF: number;
  sharedExpertFF: number;
  denseFF: number;
}

/** blk.i.attn_{q,k,v,output} with optional biases, QK-norm weights and sinks. */
export function standardAttention(
  t: TensorFinder,
  b: string,
  c: TableShape,
  opts: { qkNorm: QkNormKind; sinks?: boolean },
): StandardAttentionTensors {
  const H = c.hidden;
  const q = c.nHead * c.headDimK;
  const kv = c.nHeadKv * c.headDimK;
  const normDims = opts.qkNorm === 'per-head' ? [[c.headDimK], [c.headDimK]] : [[q], [kv]];
  return {
    kind: 'standard',
    q: t.need(b + 'attn_q.weight', [H, q]),
    k: t.need(b + 'attn_k.weight', [H, kv]),
    v: t.need(b + 'attn_v.weight', [H, kv]),
    qBias: t.maybe(b + 'attn_q.bias', [q]),
    kBias: t.maybe(b + 'attn_k.bias', [kv]),
    vBias: t.maybe(b + 'attn_v.bias', [kv]),
    qNorm: opts.qkNorm === 'none' ? undefined : t.need(b + 'attn_q_norm.weight', normDims[0]),
    kNorm: opts.qkNorm === 'none' ? undefined : t.need(b + 'attn_k_norm.weight', normDims[1]),
    attnOut: t.need(b + 'attn_output.weight', [q, H]),
    attnOutBias: t.maybe(b + 'attn_output.bias', [H]),
    attnSinks: opts.sinks ? t.need(b + 'attn_sinks.weight', [c.nHead]) : undefined,
  };
}

/** blk.i.ffn_{gate,up,down}: a dense SwiGLU FFN of width denseFF. */
export function denseFfn(t: TensorFinder, b: string, c: TableShape): DenseFfnTensors {
  const { hidden: H, denseFF: F } = c;
  return {
    kind: 'dense',
    gate: t.need(b + 'ffn_gate.weight', [H, F]),
    up: t.need(b + 'ffn_up.weight', [H, F]),
    down: t.need(b + 'ffn_down.weight', [F, H]),
  };
}

/**
 * Routed experts (ffn_*_exps, with optional router and expert biases) and,
 * when sharedExpertFF > 0, the shared expert (ffn_*_shexp, with its gate
 * vector ffn_gate_inp_shexp when `sharedGate`).
 */
export function moeFfn(t: TensorFinder, b: string, c: TableShape, opts: { sharedGate: boolean }): MoeFfnTensors {
  const { hidden: H, expertFF: F, nExpert: E, sharedExpertFF: S } = c;
  return {
    kind: 'moe',
    router: t.need(b + 'ffn_gate_inp.weight', [H, E]),
    routerBias: t.maybe(b + 'ffn_gate_inp.bias', [E]),
    selectionBias: t.maybe(b + 'exp_probs_b.bias', [E]),
    gateExps: t.need(b + 'ffn_gate_exps.weight', [H, F, E]),
    upExps: t.need(b + 'ffn_up_exps.weight', [H, F, E]),
    downExps: t.need(b + 'ffn_down_exps.weight', [F, H, E]),
    expertBiases:
      t.maybe(b + 'ffn_gate_exps.bias', [F, E]) === undefined
        ? undefined
        : { gate: b + 'ffn_gate_exps.bias', up: t.need(b + 'ffn_up_exps.bias', [F, E]), down: t.need(b + 'ffn_down_exps.bias', [H, E]) },
    shared:
      S > 0
        ? {
            gateInp: opts.sharedGate ? t.need(b + 'ffn_gate_inp_shexp.weight', [H]) : undefined,
            gate: t.need(b + 'ffn_gate_shexp.weight', [H, S]),
            up: t.need(b + 'ffn_up_shexp.weight', [H, S]),
            down: t.need(b + 'ffn_down_shexp.weight', [S, H]),
          }
        : undefined,
  };
}

/** token_embd, output_norm, output (optional: tied to token_embd) and rope_freqs around the layers. */
export function tensorTable(t: TensorFinder, c: TableShape, layers: LayerTensors[], opts: { outputOptional: boolean }): TensorTable {
  const H = c.hidden;
  const vocab = t.dims('token_embd.weight')?.[1] ?? 0;
  const tokenEmbd = t.need('token_embd.weight', [H, vocab]);
  const output = opts.outputOptional ? t.maybe('output.weight', [H, vocab]) ?? tokenEmbd : t.need('output.weight', [H, vocab]);
  return {
    tokenEmbd,
    outputNorm: t.need('output_norm.weight', [H]),
    output,
    ropeFreqs: t.maybe('rope_freqs.weight', [c.headDimK / 2]),
    layers,
  };
}

/**
 * The fields of a config that come from the tensor table and the tokenizer
 * (vocabulary size, tied output, QKV biases, special tokens), checked
 * against each other.
 */
export function tableFacts(
  file: GgufFile,
  arch: string,
  tensors: TensorTable,
): Pick<ModelConfig, 'name' | 'vocabSize' | 'qkvBias' | 'tiedOutput' | 'bosTokenId' | 'eosTokenId'> {
  // The table has checked that token_embd exists and is [hidden, vocab].
  const vocabSize = file.tensors.find((t) => t.name === tensors.tokenEmbd)?.dims[1] ?? 0;
  const tokens = optStringArray(file, 'tokenizer.ggml.tokens');
  if (tokens && tokens.length !== vocabSize) {
    throw new ModelConfigError('BAD_SHAPE', `${arch}: ${tokens.length} tokens but token_embd has ${vocabSize} rows`);
  }
  return {
    name: optString(file, 'general.name'),
    vocabSize,
    qkvBias: tensors.layers.some((l) => l.attention.kind === 'standard' && (l.attention.qBias ?? l.attention.kBias ?? l.attention.vBias) !== undefined),
    tiedOutput: tensors.output === tensors.tokenEmbd,
    bosTokenId: tokenIdOf(file, 'tokenizer.ggml.bos_token_id', vocabSize),
    eosTokenId: tokenIdOf(file, 'tokenizer.ggml.eos_token_id', vocabSize),
  };
}

/** A special token id, undefined when outside the vocabulary (as the tokenizer and llama.cpp ignore it). */
function tokenIdOf(file: GgufFile, key: string, vocabSize: number): number | undefined {
  const id = optNumber(file, key);
  return id !== undefined && Number.isInteger(id) && id >= 0 && id < vocabSize ? id : undefined;
}
