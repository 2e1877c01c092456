import { describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { getNumber, getString, getStringArray } from '../../../src/gguf/metadata';
import { GgmlType, ggmlTypeName } from '../../../src/quant/formats';
import { dequantize } from '../../../src/quant/dequant';
import { TINY_ARCHS } from '../../../src/tiny/archs';
import { makeTinyModel, TINY_WEIGHT_TYPES, TinyModelError } from '../../../src/tiny/make-tiny';
import { byteToChar, learnBpe } from '../../../src/tiny/bpe';

describe('byte-level BPE vocabulary', () => {
  it('maps the 256 bytes to 256 distinct printable characters, keeping printable ASCII', () => {
    const chars = byteToChar();
    expect(new Set(chars).size).toBe(256);
    expect(chars[0x41]).toBe('A');
    expect(chars[0x20]).toBe('\u0120'); // space is the first non-printable byte after 0x00-0x1f
    expect(chars[0x0a]).toBe('\u010a');
  });

  it('learns merges of frequent pairs, deterministically, with unique tokens', () => {
    const v = learnBpe('the the the then there other', 5);
    // "h e" and "t h" both occur 6 times; ties go to the smaller pair string.
    expect(v.merges.slice(0, 2)).toEqual(['h e', 't he']);
    expect(v.tokens.slice(256)).toContain('the');
    expect(new Set(v.tokens).size).toBe(v.tokens.length);
    expect(learnBpe('the the the then there other', 5)).toEqual(v);
  });
});

describe('makeTinyModel', () => {
  it('is deterministic in its seed', () => {
    const a = makeTinyModel({ arch: 'qwen2moe', type: 'q4_0', seed: 7 });
    const b = makeTinyModel({ arch: 'qwen2moe', type: 'q4_0', seed: 7 });
    const c = makeTinyModel({ arch: 'qwen2moe', type: 'q4_0', seed: 8 });
    expect(Buffer.compare(a, b)).toBe(0);
    expect(Buffer.compare(a, c)).not.toBe(0);
  });

  for (const arch of TINY_ARCHS) {
    it(`writes the ${arch} layout with its hyper-parameters and tokenizer`, async () => {
      const file = await readGguf(sourceFromBytes(makeTinyModel({ arch, type: 'q8_0', layers: 3, experts: 6, topK: 3 })));
      expect(getString(file, 'general.architecture')).toBe(arch);
      expect(getNumber(file, `${arch}.block_count`)).toBe(3);
      const gptOss = arch === 'gpt-oss';
      expect(getNumber(file, `${arch}.expert_count`)).toBe(6);
      expect(getNumber(file, `${arch}.expert_used_count`)).toBe(3);
      const tokens = getStringArray(file, 'tokenizer.ggml.tokens');
      expect(tokens.slice(-3)).toEqual(['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
      expect(getNumber(file, 'tokenizer.ggml.eos_token_id')).toBe(tokens.length - 1);

      const byName = new Map(file.tensors.map((t) => [t.name, t]));
      const H = getNumber(file, `${arch}.embedding_length`);
      const gate = byName.get('blk.2.ffn_gate_exps.weight')!;
      // deepseek2 reads the expert width from its own key; its feed_forward_length is the dense first layer's.
      const widthKey = arch === 'deepseek2' ? 'expert_feed_forward_length' : 'feed_forward_length';
      expect(gate.dims).toEqual([H, getNumber(file, `${arch}.${widthKey}`), 6]);
      expect(ggmlTypeName(gate.type)).toBe('Q8_0');
      expect(byName.get('blk.2.ffn_gate_inp.weight')!.type).toBe(GgmlType.F32);
      expect(byName.has('blk.0.ffn_gate.weight')).toBe(arch === 'deepseek2');
      expect(byName.get('token_embd.weight')!.dims).toEqual([H, tokens.length]);
      expect(byName.has('blk.0.ffn_gate_inp_shexp.weight')).toBe(arch === 'qwen2moe');
      expect(byName.has('blk.0.attn_q.bias')).toBe(arch === 'qwen2moe' || gptOss);
      for (const name of ['attn_sinks.weight', 'post_attention_norm.weight', 'ffn_gate_inp.bias', 'ffn_down_exps.bias']) {
        expect(byName.has(`blk.0.${name}`)).toBe(gptOss);
      }
      expect(byName.has('blk.0.ffn_norm.weight')).toBe(!gptOss);
      expect(byName.has('blk.0.attn_q_norm.weight')).toBe(arch === 'qwen3moe' || arch === 'olmoe');
      expect(byName.has('blk.0.attn_kv_a_mqa.weight')).toBe(arch === 'deepseek2');
    });
  }

  it('gives qwen3moe a head dim independent of the hidden size', async () => {
    const file = await readGguf(sourceFromBytes(makeTinyModel({ arch: 'qwen3moe' })));
    const q = file.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(q.dims).toEqual([64, 4 * 32]);
    expect(getNumber(file, 'qwen3moe.attention.key_length')).toBe(32);
  });

  for (const type of TINY_WEIGHT_TYPES) {
    it(`writes ${type} weights that dequantize to finite values of a sane scale`, async () => {
      const bytes = makeTinyModel({ arch: 'llama', type });
      const file = await readGguf(sourceFromBytes(bytes));
      const t = file.tensors.find((x) => x.name === 'blk.0.ffn_up_exps.weight')!;
      const w = dequantize(t.type, bytes.subarray(file.dataOffset + t.offset, file.dataOffset + t.offset + t.nBytes), t.nElements);
      let sumSq = 0;
      for (const x of w) sumSq += x * x;
      expect(w.every(Number.isFinite)).toBe(true);
      const rms = Math.sqrt(sumSq / w.length);
      expect(rms).toBeGreaterThan(1e-3);
      expect(rms).toBeLessThan(1);
    });
  }

  it('rejects shapes llama.cpp would refuse, naming the problem', () => {
    expect(() => makeTinyModel({ arch: 'olmoe', kvHeads: 2 })).toThrow(TinyModelError);
    expect(() => makeTinyModel({ arch: 'qwen2moe', headDim: 8 })).toThrow(/hidden/);
    expect(() => makeTinyModel({ arch: 'llama', topK: 9, experts: 8 })).toThrow(/top-k/);
    expect(() => makeTinyModel({ arch: 'llama', type: 'q4_k', hidden: 64 })).toThrow(/block of 256/);
  });
});
