/**
 * Generates small, valid, deterministic GGUF v3 MoE models with random
 * weights, in the exact layouts llama.cpp loads, for tests and benchmarks.
 *
 * Quantized tensors need no quantizer: random blocks with sane scales are
 * valid data in any format, and every runtime computes with exactly those
 * weights, which gives exact references for every format.
 */
import { GgmlType, blockFormat, ggmlTypeName } from '../quant/formats';
import { mulberry32, randomBlocks } from '../quant/random';
import type { GgufKv } from '../gguf/types';
import { kvBool, kvF32, kvI32Array, kvString, kvStringArray, kvU32, writeGguf } from '../gguf/writer';
import type { TinyWeightType } from '../models/architecture';
import { ARCHITECTURES } from '../models/registry';
import { type TensorRole, type TinyArch, type TinyShape, TINY_ARCHS, shapeProblem, tensorSpecs } from './archs';
import { learnBpe } from './bpe';
import { TINY_CORPUS } from './corpus';
import { applyLocality, localityProblem, type TinyLocality } from './locality';

export type { TinyWeightType } from '../models/architecture';
export const TINY_WEIGHT_TYPES: readonly TinyWeightType[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k', 'q6_k', 'mxfp4'];

/** The weight types generated for an architecture (its recipe may name fewer). */
export function tinyWeightTypesFor(arch: TinyArch): readonly TinyWeightType[] {
  return ARCHITECTURES[arch].tiny.weightTypes ?? TINY_WEIGHT_TYPES;
}

export interface TinyModelOptions extends Partial<Omit<TinyShape, 'vocab'>> {
  arch: TinyArch;
  type?: TinyWeightType;
  seed?: number;
  /** Number of BPE merges learned from the built-in text (vocabulary = 256 bytes + merges + 3 specials). */
  merges?: number;
  /** Routing locality of trained MoEs (temporal reuse, inter-layer affinity, popularity skew); default none (see locality.ts). */
  locality?: TinyLocality;
}

export class TinyModelError extends Error {
  override name = 'TinyModelError';
}

const WEIGHT_TYPE: Record<TinyWeightType, GgmlType> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
  q4_k: GgmlType.Q4_K,
  q6_k: GgmlType.Q6_K,
  mxfp4: GgmlType.MXFP4,
};

/** llama.cpp's `general.file_type` (llama_ftype) for each weight type. */
const FILE_TYPE: Record<TinyWeightType, number> = {
  f32: 0, f16: 1, q8_0: 7, q4_0: 2, q4_k: 15, q6_k: 18, mxfp4: 38,
};

export { GPT_OSS_SLIDING_WINDOW } from '../models/archs/gpt-oss';

const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";

/** The storage type of a tensor of the given role. */
export function tensorType(role: TensorRole, type: TinyWeightType): GgmlType {
  if (role === 'norm' || role === 'bias' || role === 'router' || role === 'sink') return GgmlType.F32;
  // MXFP4 is an expert format (gpt-oss); its other matrices are 8-bit.
  if (type === 'mxfp4' && role !== 'expert') return GgmlType.Q8_0;
  return WEIGHT_TYPE[type];
}

/** The full shape a set of options resolves to (defaults depend on the arch and type). */
export function resolveShape(opts: TinyModelOptions, vocab: number): TinyShape {
  const type = opts.type ?? 'f32';
  const superBlock = (blockFormat(WEIGHT_TYPE[type])?.blockSize ?? 1) === 256;
  const hidden = opts.hidden ?? (superBlock ? 256 : 64);
  const heads = opts.heads ?? 4;
  const archDefaults = ARCHITECTURES[opts.arch].tiny.defaults?.({ hidden, heads }) ?? {};
  const headDim = opts.headDim ?? archDefaults.headDim ?? hidden / heads;
  const kvHeads = opts.kvHeads ?? archDefaults.kvHeads ?? Math.max(1, heads / 2);
  const expertFF = opts.expertFF ?? (superBlock ? 256 : 64);
  return {
    layers: opts.layers ?? 2,
    hidden,
    heads,
    kvHeads,
    headDim,
    experts: opts.experts ?? 8,
    topK: opts.topK ?? 2,
    expertFF,
    sharedFF: opts.sharedFF ?? archDefaults.sharedFF ?? 2 * expertFF,
    vocab,
    contextLength: opts.contextLength ?? 512,
    ropeTheta: opts.ropeTheta ?? 10000,
    rmsEps: opts.rmsEps ?? 1e-6,
    qLoraRank: opts.qLoraRank ?? archDefaults.qLoraRank,
    gating: opts.gating ?? archDefaults.gating,
    selectionBias: opts.selectionBias ?? archDefaults.selectionBias,
    normalizeWeights: opts.normalizeWeights ?? archDefaults.normalizeWeights,
    weightsScale: opts.weightsScale ?? archDefaults.weightsScale,
    leadingDense: opts.leadingDense ?? archDefaults.leadingDense,
    quantizedAbsorption: opts.quantizedAbsorption ?? archDefaults.quantizedAbsorption,
  };
}

/** Builds the model and returns the GGUF file's bytes. */
export function makeTinyModel(opts: TinyModelOptions): Uint8Array {
  if (!TINY_ARCHS.includes(opts.arch)) {
    throw new TinyModelError(`unknown architecture '${opts.arch}' (known: ${TINY_ARCHS.join(', ')})`);
  }
  const type = opts.type ?? 'f32';
  if (!(type in WEIGHT_TYPE)) {
    throw new TinyModelError(`unknown weight type '${type}' (known: ${TINY_WEIGHT_TYPES.join(', ')})`);
  }
  if (!tinyWeightTypesFor(opts.arch).includes(type)) {
    throw new TinyModelError(`${opts.arch} models are generated in ${tinyWeightTypesFor(opts.arch).join(', ')}, not ${type}`);
  }
  const vocab = learnBpe(TINY_CORPUS, opts.merges ?? 200);
  const tokens = [...vocab.tokens, ...SPECIAL_TOKENS];
  const shape = resolveShape(opts, tokens.length);
  const problem = shapeProblem(opts.arch, shape) ?? (opts.locality && localityProblem(opts.locality, shape));
  if (problem) throw new TinyModelError(problem);
  const specs = tensorSpecs(opts.arch, shape);
  if (opts.locality && !specs.some((t) => t.name === 'blk.0.attn_k.weight')) {
    throw new TinyModelError(`routing locality is built in standard attention, which ${opts.arch} does not have`);
  }

  const rng = mulberry32(opts.seed ?? 1);
  const tensors = specs.map((spec) => {
    let ggmlType = spec.f32 ? GgmlType.F32 : tensorType(spec.role, type);
    if (spec.fallback && spec.dims[0] % (blockFormat(ggmlType)?.blockSize ?? 1) !== 0) ggmlType = quantizeFallback(ggmlType);
    const rowBlock = blockFormat(ggmlType)?.blockSize ?? 1;
    if (spec.dims[0] % rowBlock !== 0) {
      throw new TinyModelError(
        `${spec.name}: row length ${spec.dims[0]} is not a multiple of ${ggmlTypeName(ggmlType)}'s block of ${rowBlock}`,
      );
    }
    const n = spec.dims.reduce((a, b) => a * b, 1);
    return { name: spec.name, type: ggmlType, dims: spec.dims, data: tensorData(spec.role, ggmlType, n, rng) };
  });
  if (opts.locality) applyLocality(opts.arch, shape, tensors, opts.locality, opts.seed ?? 1);

  const a = opts.arch;
  const endOfText = tokens.indexOf('<|endoftext|>');
  const imEnd = tokens.indexOf('<|im_end|>');
  const metadata: GgufKv[] = [
    kvString('general.architecture', a),
    kvString('general.name', `webmoe tiny ${a} ${type}`),
    kvU32('general.file_type', FILE_TYPE[type]),
    kvU32(`${a}.context_length`, shape.contextLength),
    kvU32(`${a}.embedding_length`, shape.hidden),
    kvU32(`${a}.block_count`, shape.layers),
    kvU32(`${a}.feed_forward_length`, shape.expertFF),
    kvU32(`${a}.attention.head_count`, shape.heads),
    kvU32(`${a}.attention.head_count_kv`, shape.kvHeads),
    kvU32(`${a}.attention.key_length`, shape.headDim),
    kvU32(`${a}.attention.value_length`, shape.headDim),
    kvU32(`${a}.rope.dimension_count`, shape.headDim),
    kvF32(`${a}.rope.freq_base`, shape.ropeTheta),
    kvF32(`${a}.attention.layer_norm_rms_epsilon`, shape.rmsEps),
    kvU32(`${a}.expert_count`, shape.experts),
    kvU32(`${a}.expert_used_count`, shape.topK),
  ];
  for (const kv of ARCHITECTURES[a].tiny.metadata(shape)) {
    const at = metadata.findIndex((m) => m.key === kv.key);
    if (at >= 0) metadata[at] = kv;
    else metadata.push(kv);
  }
  metadata.push(
    kvString('tokenizer.ggml.model', 'gpt2'),
    kvString('tokenizer.ggml.pre', 'qwen2'),
    kvStringArray('tokenizer.ggml.tokens', tokens),
    // 1 = normal, 3 = control (llama_token_type)
    kvI32Array('tokenizer.ggml.token_type', tokens.map((_, i) => (i >= vocab.tokens.length ? 3 : 1))),
    kvStringArray('tokenizer.ggml.merges', vocab.merges),
    kvU32('tokenizer.ggml.bos_token_id', endOfText),
    kvU32('tokenizer.ggml.eos_token_id', imEnd),
    kvU32('tokenizer.ggml.padding_token_id', endOfText),
    kvBool('tokenizer.ggml.add_bos_token', false),
    kvString('tokenizer.chat_template', CHATML_TEMPLATE),
  );
  return writeGguf({ version: 3, metadata, tensors });
}

/** The type llama-quantize writes a tensor in when its rows do not fit the requested type's blocks (llama-quant.cpp). */
function quantizeFallback(type: GgmlType): GgmlType {
  switch (type) {
    case GgmlType.Q2_K:
    case GgmlType.Q3_K:
      return GgmlType.Q4_0;
    case GgmlType.Q4_K:
      return GgmlType.Q5_0;
    case GgmlType.Q5_K:
      return GgmlType.Q5_1;
    case GgmlType.Q6_K:
      return GgmlType.Q8_0;
    default:
      return GgmlType.F16;
  }
}

/** Random weights whose scale keeps a random forward pass finite and non-degenerate. */
function tensorData(role: TensorRole, type: GgmlType, n: number, rng: () => number): Uint8Array {
  if (role === 'norm') {
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = 1 + 0.2 * (rng() - 0.5);
    return new Uint8Array(w.buffer);
  }
  if (role === 'bias') return randomBlocks(GgmlType.F32, n, rng, 0.02);
  if (role === 'router') return randomBlocks(GgmlType.F32, n, rng, 0.5);
  // Sink logits of the order of the attention scores, so that they take a visible share of each softmax.
  if (role === 'sink') return randomBlocks(GgmlType.F32, n, rng, 2);
  return randomBlocks(type, n, rng);
}

