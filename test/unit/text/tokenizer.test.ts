/**
 * The tokenizer's behaviour on small hand-made vocabularies, where every
 * expected id can be worked out by hand: merges, special-token parsing,
 * llama.cpp's fix-ups of special tokens, byte fallback, decoding, errors.
 */
import { describe, expect, it } from 'vitest';
import type { GgufFile, GgufKv } from '../../../src/gguf/types';
import { kvBool, kvF32Array, kvI32Array, kvString, kvStringArray, kvU32 } from '../../../src/gguf/writer';
import { BYTE_TO_CHAR } from '../../../src/text/bytes';
import { TextError, UnsupportedTokenizerError } from '../../../src/text/errors';
import { Tokenizer } from '../../../src/text/tokenizer';
import { TokenType } from '../../../src/text/vocab';

function ggufOf(metadata: GgufKv[]): GgufFile {
  return { version: 3, alignment: 32, metadata: new Map(metadata.map((kv) => [kv.key, kv])), tensors: [], dataOffset: 0, fileBytes: 0 };
}

interface BpeSpec {
  pre?: string;
  merges?: string[];
  /** [text, token_type] appended after the 256 byte tokens and the merged tokens. */
  extra?: Array<[string, TokenType]>;
  more?: GgufKv[];
}

/** A byte-level BPE vocabulary: the 256 byte tokens (ids 0..255 in byte order), one token per merge, then `extra`. */
function byteLevelVocab(spec: BpeSpec = {}): { file: GgufFile; id: (text: string) => number } {
  const merges = spec.merges ?? ['h e', 'Ġ t', 'Ġt he', 'l l', 'he ll'];
  const tokens = [...BYTE_TO_CHAR, ...merges.map((m) => m.replace(' ', ''))];
  const types = tokens.map(() => TokenType.Normal as number);
  for (const [text, type] of spec.extra ?? []) {
    tokens.push(text);
    types.push(type);
  }
  const file = ggufOf([
    kvString('tokenizer.ggml.model', 'gpt2'),
    kvString('tokenizer.ggml.pre', spec.pre ?? 'qwen2'),
    kvStringArray('tokenizer.ggml.tokens', tokens),
    kvI32Array('tokenizer.ggml.token_type', types),
    kvStringArray('tokenizer.ggml.merges', merges),
    ...(spec.more ?? []),
  ]);
  return { file, id: (text) => tokens.indexOf(text) };
}

const SPECIALS: Array<[string, TokenType]> = [
  ['<|endoftext|>', TokenType.Control],
  ['<|im_start|>', TokenType.Control],
  ['<|im_end|>', TokenType.Normal], // mis-typed on purpose: llama.cpp makes it control
  ['<tool>', TokenType.UserDefined],
  ['<|fim_pad|>', TokenType.UserDefined],
];

describe('byte-level BPE', () => {
  // Ids: 256 bytes, 5 merged tokens (256..260), then the specials from 261.
  const { file, id } = byteLevelVocab({ extra: SPECIALS, more: [kvU32('tokenizer.ggml.eos_token_id', 261)] });
  const tok = Tokenizer.fromGguf(file);
  const byteId = (char: string) => char.charCodeAt(0);

  it('applies merges by rank within each pre-tokenized word', () => {
    expect(tok.encode('hello the')).toEqual([id('hell'), byteId('o'), id('Ġthe')]);
  });

  it('round-trips any text, falling back to byte tokens', () => {
    for (const text of ['hello the', 'Grüße, 世界! 😀', '  \n\t x', '']) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('reads a lone surrogate as U+FFFD, as llama.cpp reads invalid UTF-8', () => {
    expect(tok.decode(tok.encode('a\uD800b'))).toBe('a\uFFFDb');
  });

  it('parses control-token texts only when asked', () => {
    const start = id('<|im_start|>');
    expect(tok.encode('<|im_start|>he', { parseSpecial: true })).toEqual([start, id('he')]);
    expect(tok.encode('<|im_start|>he')).not.toContain(start);
    expect(tok.decode(tok.encode('<|im_start|>he'))).toBe('<|im_start|>he');
  });

  it('always parses user-defined tokens', () => {
    expect(tok.encode('a<tool>b')).toEqual([byteId('a'), id('<tool>'), byteId('b')]);
  });

  it('makes <|im_end|> a control, end-of-turn and end-of-generation token whatever its type says', () => {
    const imEnd = id('<|im_end|>');
    expect(tok.tokenType(imEnd)).toBe(TokenType.Control);
    expect(tok.eot).toBe(imEnd);
    expect(tok.isEog(imEnd)).toBe(true);
    expect(tok.isEog(id('<|endoftext|>'))).toBe(true);
    expect(tok.isEog(id('<|im_start|>'))).toBe(false);
  });

  it('treats a FIM padding token as control and end of generation', () => {
    const pad = id('<|fim_pad|>');
    expect(tok.tokenType(pad)).toBe(TokenType.Control);
    expect(tok.isEog(pad)).toBe(true);
    expect(tok.encode('<|fim_pad|>')).not.toContain(pad);
  });

  it('renders control tokens unless skipSpecial, user-defined tokens always', () => {
    const ids = [id('<|im_start|>'), id('he'), id('<tool>')];
    expect(tok.decode(ids)).toBe('<|im_start|>he<tool>');
    expect(tok.decode(ids, { skipSpecial: true })).toBe('he<tool>');
  });

  it('takes EOS from the file and adds no BOS by default (qwen2)', () => {
    expect(tok.eos).toBe(id('<|endoftext|>'));
    expect(tok.addsBos).toBe(false);
    expect(tok.encode('he', { addSpecial: true })).toEqual([id('he')]);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.tokenText(tok.vocabSize)).toThrow(RangeError);
    expect(() => tok.decode([-1])).toThrow(RangeError);
  });
});

describe('vocabulary settings', () => {
  it('adds BOS and EOS when the file asks for them, and decode with skipSpecial drops them', () => {
    const { file, id } = byteLevelVocab({
      extra: [['<s>', TokenType.Control], ['</s>', TokenType.Control]],
      more: [
        kvU32('tokenizer.ggml.bos_token_id', 261), kvU32('tokenizer.ggml.eos_token_id', 262),
        kvBool('tokenizer.ggml.add_bos_token', true), kvBool('tokenizer.ggml.add_eos_token', true),
      ],
    });
    const tok = Tokenizer.fromGguf(file);
    const ids = tok.encode('he', { addSpecial: true });
    expect(ids).toEqual([id('<s>'), id('he'), id('</s>')]);
    expect(tok.decode(ids)).toBe('<s>he</s>');
    expect(tok.decode(ids, { skipSpecial: true })).toBe('he');
  });

  it('keeps the whole word when a llama3-style vocabulary has it, ignoring merges', () => {
    const merges = ['h e', 'l l', 'he ll'];
    const { file, id } = byteLevelVocab({ pre: 'llama-bpe', merges, extra: [['hello', TokenType.Normal]] });
    const tok = Tokenizer.fromGguf(file);
    expect(tok.encode('hello')).toEqual([id('hello')]);
    expect(tok.addsBos).toBe(true);
  });

  it('cleans spaces before punctuation on request, for vocabularies that do so in llama.cpp', () => {
    const gpt2 = Tokenizer.fromGguf(byteLevelVocab({ pre: 'gpt-2' }).file);
    const qwen2 = Tokenizer.fromGguf(byteLevelVocab({ pre: 'qwen2' }).file);
    const text = "a . b ' c it 's";
    expect(gpt2.decode(gpt2.encode(text), { cleanSpaces: true })).toBe("a. b'c it's");
    expect(gpt2.decode(gpt2.encode(text))).toBe(text);
    expect(qwen2.decode(qwen2.encode(text), { cleanSpaces: true })).toBe(text);
  });

  it('follows gpt-oss rules: <|end|> ends a message, not the generation; harmony markers are plain text', () => {
    const harmony: Array<[string, TokenType]> = ['<|return|>', '<|call|>', '<|end|>', '<|channel|>', '<|message|>'].map(
      (t) => [t, TokenType.Control],
    );
    const { file, id } = byteLevelVocab({ pre: 'gpt-4o', extra: harmony });
    const tok = Tokenizer.fromGguf(file);
    expect(tok.isEog(id('<|return|>'))).toBe(true);
    expect(tok.isEog(id('<|call|>'))).toBe(true);
    expect(tok.isEog(id('<|end|>'))).toBe(false);
    expect(tok.tokenType(id('<|channel|>'))).toBe(TokenType.UserDefined);
    expect(tok.encode('<|channel|>')).toEqual([id('<|channel|>')]);
    expect(tok.decode([id('<|channel|>'), id('<|return|>')], { skipSpecial: true })).toBe('<|channel|>');
  });
});

describe('SentencePiece BPE (llama)', () => {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const pieces: Array<[string, number]> = [['▁', -1], ['a', -2], ['b', -2], ['▁a', -3], ['ab', -4], ['▁ab', -5]];
  const tokens = ['<unk>', '<s>', '</s>', ...bytes, ...pieces.map(([t]) => t)];
  const types = [TokenType.Unknown, TokenType.Control, TokenType.Control, ...bytes.map(() => TokenType.Byte), ...pieces.map(() => TokenType.Normal)];
  const scores = [0, 0, 0, ...bytes.map(() => 0), ...pieces.map(([, s]) => s)];
  const tok = Tokenizer.fromGguf(
    ggufOf([
      kvString('tokenizer.ggml.model', 'llama'),
      kvStringArray('tokenizer.ggml.tokens', tokens),
      kvI32Array('tokenizer.ggml.token_type', types),
      kvF32Array('tokenizer.ggml.scores', scores),
    ]),
  );
  const id = (text: string) => tokens.indexOf(text);

  it('prefixes a space and merges the highest-scoring pairs first', () => {
    // ▁a (-3) beats ab (-4); then ▁a + b forms ▁ab.
    expect(tok.encode('ab')).toEqual([id('▁ab')]);
    expect(tok.encode('ba')).toEqual([id('▁'), id('b'), id('a')]);
  });

  it('spells unknown characters as <0xNN> byte tokens and decodes them back', () => {
    expect(tok.encode('é')).toEqual([id('▁'), id('<0xC3>'), id('<0xA9>')]);
    expect(tok.decode(tok.encode('é ab'))).toBe('é ab');
  });

  it('adds BOS by default and removes the space prefix of a text start when decoding', () => {
    expect(tok.bos).toBe(1);
    expect(tok.eos).toBe(2);
    expect(tok.encode('ab', { addSpecial: true })).toEqual([1, id('▁ab')]);
    expect(tok.decode([id('▁ab')])).toBe('ab');
    // As in llama.cpp: after a BOS the space stays.
    expect(tok.decode([1, id('▁ab')], { skipSpecial: true })).toBe(' ab');
    expect(tok.decode([1, id('▁ab')])).toBe('<s> ab');
    expect(tok.isEog(2)).toBe(true);
  });
});

describe('errors', () => {
  it('names an unsupported tokenizer model', () => {
    const file = ggufOf([kvString('tokenizer.ggml.model', 'bert'), kvStringArray('tokenizer.ggml.tokens', ['a'])]);
    let error: unknown;
    try {
      Tokenizer.fromGguf(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedTokenizerError);
    expect(error).toMatchObject({ code: 'UNSUPPORTED_TOKENIZER', kind: 'model', value: 'bert' });
    expect(String(error)).toContain("'bert'");
  });

  it('names an unsupported pre-tokenizer', () => {
    const { file } = byteLevelVocab({ pre: 'kimi-k2' });
    expect(() => Tokenizer.fromGguf(file)).toThrow(UnsupportedTokenizerError);
    expect(() => Tokenizer.fromGguf(file)).toThrow(/pre-tokenizer 'kimi-k2'.*qwen2/);
  });

  it('reports a BPE vocabulary without merges', () => {
    const file = ggufOf([kvString('tokenizer.ggml.model', 'gpt2'), kvStringArray('tokenizer.ggml.tokens', ['a'])]);
    expect(() => Tokenizer.fromGguf(file)).toThrow(TextError);
    expect(() => Tokenizer.fromGguf(file)).toThrow(/merges/);
  });

  it('reports a file without a vocabulary', () => {
    expect(() => Tokenizer.fromGguf(ggufOf([]))).toThrow(/tokenizer.ggml.model/);
  });
});
