/**
 * Model configs are read from GGUF metadata and tensor infos, never assumed:
 * every hyper-parameter follows the file, each architecture gets llama.cpp's
 * RoPE layout, routing policy and QK-norm, and a file whose tensors disagree
 * with its metadata is refused with the tensor named.
 */
import { describe, expect, it } from 'vitest';
import { getStringArray } from '../../../src/gguf/metadata';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { GgufKv, GgufFile } from '../../../src/gguf/types';
import { kvF32, kvString, kvU32, kvU32Array, writeGguf } from '../../../src/gguf/writer';
import type { GgufTensorSpec } from '../../../src/gguf/writer';
import { ModelConfigError, type ModelConfig } from '../../../src/models/config';
import { ArchMetadata, readRope } from '../../../src/models/hparams';
import { modelConfigFromGguf } from '../../../src/models/registry';
import { TINY_ARCHS, type TinyArch } from '../../../src/tiny/archs';
import { makeTinyModel, resolveShape, type TinyModelOptions } from '../../../src/tiny/make-tiny';

async function parse(bytes: Uint8Array): Promise<GgufFile> {
  return readGguf(sourceFromBytes(bytes));
}

async function configOf(opts: TinyModelOptions): Promise<ModelConfig> {
  return modelConfigFromGguf(await parse(makeTinyModel(opts)));
}

interface Edit {
  metadata?: (kvs: GgufKv[]) => GgufKv[];
  tensors?: (tensors: GgufTensorSpec[]) => GgufTensorSpec[];
}

/** The file of `opts` with its metadata and tensor list edited, re-encoded. */
async function editedFile(opts: TinyModelOptions, edit: Edit): Promise<GgufFile> {
  const bytes = makeTinyModel(opts);
  const file = await parse(bytes);
  const tensors = file.tensors.map((t) => {
    const start = file.dataOffset + t.offset;
    return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(start, start + t.nBytes) };
  });
  const metadata = [...file.metadata.values()];
  return parse(writeGguf({ metadata: edit.metadata?.(metadata) ?? metadata, tensors: edit.tensors?.(tensors) ?? tensors }));
}

const replacing = (...kvs: GgufKv[]) => (old: GgufKv[]): GgufKv[] => [
  ...old.filter((kv) => !kvs.some((n) => n.key === kv.key)),
  ...kvs,
];
const without = (...keys: string[]) => (old: GgufKv[]): GgufKv[] => old.filter((kv) => !keys.includes(kv.key));

function expectConfigError(run: () => unknown, code: string, text: string): void {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelConfigError);
    expect((e as ModelConfigError).code).toBe(code);
    expect((e as Error).message).toContain(text);
    return;
  }
  expect.unreachable(`expected ModelConfigError ${code}`);
}

describe('model config from GGUF', () => {
  for (const arch of TINY_ARCHS) {
    it(`${arch}: every hyper-parameter equals what the file was written with`, async () => {
      const file = await parse(makeTinyModel({ arch, seed: 1 }));
      const c = modelConfigFromGguf(file);
      const tokens = getStringArray(file, 'tokenizer.ggml.tokens');
      const s = resolveShape({ arch }, tokens.length);
      expect(c.arch).toBe(arch);
      const common = { nLayer: s.layers, hidden: s.hidden, nHead: s.heads, nExpert: s.experts, nExpertUsed: s.topK, expertFF: s.expertFF, contextLength: s.contextLength, tiedOutput: false };
      if (arch === 'deepseek2') {
        // Latent attention: one cache row of latent 64 + rope 16 for all heads; heads of 32 + 16, values of hidden / heads.
        expect(c).toMatchObject({ ...common, nHeadKv: 1, headDimK: 80, headDimV: 64, leadingDenseLayers: 1, sharedExpertFF: s.expertFF, denseFF: 2 * s.expertFF });
        expect(c.latent).toEqual({ kvLoraRank: 64, qLoraRank: 0, ropeDim: 16, nopeDim: 32, valueDim: 16 });
      } else {
        expect(c).toMatchObject({ ...common, nHeadKv: s.kvHeads, headDimK: s.headDim, headDimV: s.headDim, leadingDenseLayers: 0 });
        expect(c.sharedExpertFF).toBe(arch === 'qwen2moe' ? s.sharedFF : 0);
      }
      expect(c.rmsEps).toBeCloseTo(s.rmsEps, 12);
      const yarn = arch === 'gpt-oss' || arch === 'deepseek2';
      const scaling = yarn ? { scalingType: 'yarn', scalingFactor: 4, originalContextLength: s.contextLength / 4 } : { scalingType: 'linear', scalingFactor: 1 };
      expect(c.rope).toMatchObject({ dims: arch === 'deepseek2' ? 16 : s.headDim, freqBase: s.ropeTheta, ...scaling });
      expect(c.routing.topK).toBe(s.topK);
      expect(c.vocabSize).toBe(tokens.length);
      expect(c.bosTokenId).toBe(tokens.indexOf('<|endoftext|>'));
      expect(c.eosTokenId).toBe(tokens.indexOf('<|im_end|>'));
    });
  }

  it('follows the metadata when the shape changes', async () => {
    const c = await configOf({ arch: 'qwen3moe', layers: 3, experts: 4, topK: 3, heads: 8, kvHeads: 2, headDim: 16, hidden: 64, expertFF: 32 });
    expect(c).toMatchObject({ nLayer: 3, nExpert: 4, nExpertUsed: 3, nHead: 8, nHeadKv: 2, headDimK: 16, expertFF: 32 });
    expect(c.tensors.layers).toHaveLength(3);
  });

  const traits: Record<TinyArch, Partial<ModelConfig>> = {
    llama: { qkNorm: 'none', qkvBias: false },
    qwen2moe: { qkNorm: 'none', qkvBias: true },
    qwen3moe: { qkNorm: 'per-head', qkvBias: false },
    olmoe: { qkNorm: 'whole', qkvBias: false },
    granitemoe: { qkNorm: 'none', qkvBias: false, scales: { embedding: 12, residual: Math.fround(0.22), attention: 0.1875, logit: 6 } },
    // Layer 0 slides over GPT_OSS_SLIDING_WINDOW positions, layer 1 attends to all (set_swa_pattern(2)).
    'gpt-oss': { qkNorm: 'none', qkvBias: true, attentionWindow: [16, 0] },
    deepseek2: { qkNorm: 'none', qkvBias: false },
  };
  const routing: Record<TinyArch, [normalize: boolean, sharedExpertGate: string]> = {
    llama: [true, 'none'],
    qwen2moe: [false, 'sigmoid'],
    qwen3moe: [true, 'none'],
    olmoe: [false, 'none'],
    granitemoe: [true, 'none'],
    'gpt-oss': [false, 'none'],
    deepseek2: [false, 'none'],
  };
  for (const arch of TINY_ARCHS) {
    const norm = arch === 'llama' || arch === 'granitemoe' || arch === 'deepseek2';
    it(`${arch}: RoPE ${norm ? 'NORM' : 'NEOX'}, routing, QK-norm and scales as llama.cpp's graph has them`, async () => {
      const c = await configOf({ arch });
      expect(c.rope.kind).toBe(norm ? 'normal' : 'neox');
      expect(c).toMatchObject(traits[arch]);
      const [normalize, sharedExpertGate] = routing[arch];
      const scoring = arch === 'gpt-oss' ? 'softmax-selected' : 'softmax';
      expect(c.routing).toEqual({ scoring, topK: 2, normalize, weightsScale: 1, sharedExpertGate });
      expect(c.activation).toBe(arch === 'gpt-oss' ? 'swiglu-oai' : 'silu');
    });
  }

  it('gpt-oss: sinks, post-attention norm, router and expert biases by their llama.cpp names', async () => {
    const layer = (await configOf({ arch: 'gpt-oss' })).tensors.layers[1];
    expect(layer).toMatchObject({
      attention: { qBias: 'blk.1.attn_q.bias', attnOutBias: 'blk.1.attn_output.bias', attnSinks: 'blk.1.attn_sinks.weight' },
      ffnNorm: 'blk.1.post_attention_norm.weight',
      ffn: {
        routerBias: 'blk.1.ffn_gate_inp.bias',
        expertBiases: { gate: 'blk.1.ffn_gate_exps.bias', up: 'blk.1.ffn_up_exps.bias', down: 'blk.1.ffn_down_exps.bias' },
      },
    });
  });

  it('names every tensor of a layer as the file does, optional ones only when present', async () => {
    const qwen2 = (await configOf({ arch: 'qwen2moe' })).tensors;
    expect(qwen2.layers[1]).toEqual({
      attnNorm: 'blk.1.attn_norm.weight',
      attention: {
        kind: 'standard', q: 'blk.1.attn_q.weight', k: 'blk.1.attn_k.weight', v: 'blk.1.attn_v.weight',
        qBias: 'blk.1.attn_q.bias', kBias: 'blk.1.attn_k.bias', vBias: 'blk.1.attn_v.bias',
        qNorm: undefined, kNorm: undefined, attnOut: 'blk.1.attn_output.weight', attnOutBias: undefined, attnSinks: undefined,
      },
      ffnNorm: 'blk.1.ffn_norm.weight',
      ffn: {
        kind: 'moe', router: 'blk.1.ffn_gate_inp.weight', selectionBias: undefined,
        gateExps: 'blk.1.ffn_gate_exps.weight', upExps: 'blk.1.ffn_up_exps.weight', downExps: 'blk.1.ffn_down_exps.weight',
        shared: {
          gateInp: 'blk.1.ffn_gate_inp_shexp.weight', gate: 'blk.1.ffn_gate_shexp.weight',
          up: 'blk.1.ffn_up_shexp.weight', down: 'blk.1.ffn_down_shexp.weight',
        },
      },
    });
    expect(qwen2).toMatchObject({ tokenEmbd: 'token_embd.weight', outputNorm: 'output_norm.weight', output: 'output.weight' });
    const qwen3 = (await configOf({ arch: 'qwen3moe' })).tensors.layers[0].attention;
    expect(qwen3.kind === 'standard' && [qwen3.qNorm, qwen3.kNorm, qwen3.qBias]).toEqual(['blk.0.attn_q_norm.weight', 'blk.0.attn_k_norm.weight', undefined]);
  });

  for (const arch of ['llama', 'qwen3moe'] as const) {
    it(`${arch}: without output.weight the output projection is tied to the token embedding`, async () => {
      const file = await editedFile({ arch }, { tensors: (ts) => ts.filter((t) => t.name !== 'output.weight') });
      const c = modelConfigFromGguf(file);
      expect(c.tiedOutput).toBe(true);
      expect(c.tensors.output).toBe('token_embd.weight');
    });
  }

  for (const arch of ['qwen2moe', 'olmoe'] as const) {
    it(`${arch}: output.weight is required, as llama.cpp requires it`, async () => {
      const file = await editedFile({ arch }, { tensors: (ts) => ts.filter((t) => t.name !== 'output.weight') });
      expectConfigError(() => modelConfigFromGguf(file), 'MISSING_TENSOR', 'output.weight');
    });
  }

  it('refuses a file missing a layer tensor, naming it', async () => {
    const file = await editedFile({ arch: 'olmoe' }, { tensors: (ts) => ts.filter((t) => t.name !== 'blk.1.attn_k_norm.weight') });
    expectConfigError(() => modelConfigFromGguf(file), 'MISSING_TENSOR', 'blk.1.attn_k_norm.weight');
  });

  it('refuses tensors whose dims disagree with the metadata, naming the first', async () => {
    const file = await editedFile({ arch: 'qwen3moe' }, { metadata: replacing(kvU32('qwen3moe.expert_feed_forward_length', 32)) });
    expectConfigError(() => modelConfigFromGguf(file), 'BAD_SHAPE', 'blk.0.ffn_gate_exps.weight');
  });

  it('deepseek2: latent attention tensors, V3-style routing knobs and the YaRN scale of q . k as llama.cpp derives them', async () => {
    const c = await configOf({ arch: 'deepseek2', qLoraRank: 64, gating: 'sigmoid', selectionBias: true, normalizeWeights: true, weightsScale: 2.5 });
    expect(c.tensors.layers[1].attention).toEqual({
      kind: 'latent', q: undefined, qA: 'blk.1.attn_q_a.weight', qANorm: 'blk.1.attn_q_a_norm.weight', qB: 'blk.1.attn_q_b.weight',
      kvAMqa: 'blk.1.attn_kv_a_mqa.weight', kvANorm: 'blk.1.attn_kv_a_norm.weight', kB: 'blk.1.attn_k_b.weight', vB: 'blk.1.attn_v_b.weight',
      attnOut: 'blk.1.attn_output.weight',
    });
    expect(c.tensors.layers[0].ffn.kind).toBe('dense');
    const moe = c.tensors.layers[1].ffn;
    expect(moe.kind === 'moe' && [moe.selectionBias, moe.shared?.gate, moe.shared?.gateInp]).toEqual(['blk.1.exp_probs_b.bias', 'blk.1.ffn_gate_shexp.weight', undefined]);
    expect(c.routing).toEqual({ scoring: 'sigmoid', topK: 2, normalize: true, weightsScale: 2.5, sharedExpertGate: 'none' });
    // yarn_log_multiplier 0.0707 / 0.1 = 0.707 = mscale_all_dim: the context's attention factor is 1 / (1 + 0.1 ln 4), and
    // kq_scale = (1 + 0.1 * 0.707 ln 4)^2 / sqrt(48).
    expect(c.rope.yarn.logMultiplier).toBeCloseTo(0.707, 6);
    expect(c.scales.attention).toBeCloseTo((1 + 0.1 * 0.707 * Math.log(4)) ** 2 / Math.sqrt(48), 6);
  });

  it('deepseek2: refuses the joint attn_kv_b layout and group-limited routing, by name', async () => {
    const joint = await editedFile({ arch: 'deepseek2' }, { metadata: without('deepseek2.attention.key_length_mla') });
    expectConfigError(() => modelConfigFromGguf(joint), 'BAD_CONFIG', 'attn_kv_b');
    const grouped = await editedFile({ arch: 'deepseek2' }, { metadata: replacing(kvU32('deepseek2.expert_group_count', 4)) });
    expectConfigError(() => modelConfigFromGguf(grouped), 'BAD_CONFIG', 'expert_group_count');
  });

  it('granitemoe: expert_shared_feed_forward_length adds an ungated shared expert (Granite MoE Shared)', async () => {
    const c = await configOf({ arch: 'granitemoe', sharedFF: 96 });
    expect(c.sharedExpertFF).toBe(96);
    expect(c.routing.sharedExpertGate).toBe('none');
    const ffn = c.tensors.layers[1].ffn;
    expect(ffn.kind === 'moe' && ffn.shared).toEqual({
      gateInp: undefined, gate: 'blk.1.ffn_gate_shexp.weight', up: 'blk.1.ffn_up_shexp.weight', down: 'blk.1.ffn_down_shexp.weight',
    });
    expect((await configOf({ arch: 'granitemoe' })).sharedExpertFF).toBe(0);
  });

  it('qwen2moe: without expert_feed_forward_length the expert width is feed_forward_length / experts used', async () => {
    const file = await editedFile(
      { arch: 'qwen2moe', expertFF: 64, topK: 2 },
      { metadata: (kvs) => replacing(kvU32('qwen2moe.feed_forward_length', 128))(without('qwen2moe.expert_feed_forward_length')(kvs)) },
    );
    expect(modelConfigFromGguf(file).expertFF).toBe(64);
  });

  it('qwen2moe: without expert_shared_feed_forward_length the shared width is feed_forward_length', async () => {
    const file = await editedFile(
      { arch: 'qwen2moe', expertFF: 64, sharedFF: 96 },
      { metadata: (kvs) => replacing(kvU32('qwen2moe.feed_forward_length', 96))(without('qwen2moe.expert_shared_feed_forward_length')(kvs)) },
    );
    expect(modelConfigFromGguf(file).sharedExpertFF).toBe(96);
  });

  it('accepts per-layer arrays whose entries agree and refuses ones that differ', async () => {
    const same = await editedFile({ arch: 'llama' }, { metadata: replacing(kvU32Array('llama.attention.head_count_kv', [2, 2])) });
    expect(modelConfigFromGguf(same).nHeadKv).toBe(2);
    const differ = await editedFile({ arch: 'llama' }, { metadata: replacing(kvU32Array('llama.attention.head_count_kv', [2, 4])) });
    expectConfigError(() => modelConfigFromGguf(differ), 'BAD_CONFIG', 'head_count_kv');
  });

  it('reads rope scaling metadata when present', async () => {
    const file = await editedFile(
      { arch: 'qwen3moe' },
      {
        metadata: replacing(
          kvString('qwen3moe.rope.scaling.type', 'yarn'),
          kvF32('qwen3moe.rope.scaling.factor', 4),
          kvU32('qwen3moe.rope.scaling.original_context_length', 128),
          kvF32('qwen3moe.rope.freq_base', 1e6),
        ),
      },
    );
    expect(modelConfigFromGguf(file).rope).toMatchObject({
      scalingType: 'yarn', scalingFactor: 4, originalContextLength: 128, freqBase: 1e6, attnFactor: 1,
    });
    const unknown = await editedFile({ arch: 'qwen3moe' }, { metadata: replacing(kvString('qwen3moe.rope.scaling.type', 'ntk')) });
    expectConfigError(() => modelConfigFromGguf(unknown), 'BAD_CONFIG', "'ntk'");
  });

  it('reads the yarn_* keys only for architectures whose llama.cpp loader reads them', async () => {
    const file = await editedFile(
      { arch: 'qwen3moe' },
      { metadata: replacing(kvF32('qwen3moe.rope.scaling.yarn_beta_fast', 16), kvF32('qwen3moe.rope.scaling.yarn_log_multiplier', 0.1)) },
    );
    expect(modelConfigFromGguf(file).rope.yarn).toEqual({ attnFactor: 1, betaFast: 32, betaSlow: 1, logMultiplier: 0 });
    const reading = readRope(new ArchMetadata(file), { kind: 'neox', dims: 32, contextLength: 512, readsYarnKeys: true }).yarn;
    expect(reading.betaFast).toBe(16);
    expect(reading.logMultiplier).toBeCloseTo(0.1, 6);
    expect(reading.betaSlow).toBe(1);
  });

  it('without key_length the head dim is hidden / heads', async () => {
    const file = await editedFile({ arch: 'llama', hidden: 64, heads: 4 }, { metadata: without('llama.attention.key_length', 'llama.attention.value_length') });
    expect(modelConfigFromGguf(file).headDimK).toBe(16);
  });

  it('refuses a file without a required hyper-parameter', async () => {
    const file = await editedFile({ arch: 'olmoe' }, { metadata: without('olmoe.attention.layer_norm_rms_epsilon') });
    expect(() => modelConfigFromGguf(file)).toThrow(/layer_norm_rms_epsilon/);
  });
});
