/**
 * Streaming output: the detokenizer never emits a broken character, whichever
 * way tokens split the bytes, and the stop matcher cuts exactly before a stop
 * string however the text arrives.
 */
import { describe, expect, it } from 'vitest';
import type { GgufFile, GgufKv } from '../../../src/gguf/types';
import { kvF32Array, kvI32Array, kvString, kvStringArray } from '../../../src/gguf/writer';
import { BYTE_TO_CHAR } from '../../../src/text/bytes';
import { StopMatcher, StreamingDetokenizer } from '../../../src/text/streaming';
import { Tokenizer } from '../../../src/text/tokenizer';
import { TokenType } from '../../../src/text/vocab';

function ggufOf(metadata: GgufKv[]): GgufFile {
  return { version: 3, alignment: 32, metadata: new Map(metadata.map((kv) => [kv.key, kv])), tensors: [], dataOffset: 0, fileBytes: 0 };
}

const SAMPLE = 'a€😀é中';
const SAMPLE_BYTES = new TextEncoder().encode(SAMPLE);

/** Byte offsets where a character starts or the text ends. */
const CHAR_BOUNDARIES = (() => {
  const bounds = [0];
  for (const char of SAMPLE) bounds.push(bounds[bounds.length - 1] + new TextEncoder().encode(char).length);
  return bounds;
})();

/** A byte-level vocabulary with a token for every byte substring of SAMPLE, plus one control token. */
function substringVocabulary(): { tok: Tokenizer; idOfBytes: (from: number, to: number) => number; control: number } {
  const spell = (from: number, to: number) => Array.from(SAMPLE_BYTES.subarray(from, to), (b) => BYTE_TO_CHAR[b]).join('');
  const tokens = [...BYTE_TO_CHAR];
  for (let from = 0; from < SAMPLE_BYTES.length; from++) {
    for (let to = from + 2; to <= SAMPLE_BYTES.length; to++) if (!tokens.includes(spell(from, to))) tokens.push(spell(from, to));
  }
  tokens.push('<|ctrl|>');
  const types = tokens.map((t) => (t === '<|ctrl|>' ? TokenType.Control : TokenType.Normal));
  const tok = Tokenizer.fromGguf(
    ggufOf([
      kvString('tokenizer.ggml.model', 'gpt2'),
      kvString('tokenizer.ggml.pre', 'qwen2'),
      kvStringArray('tokenizer.ggml.tokens', tokens),
      kvI32Array('tokenizer.ggml.token_type', types),
      kvStringArray('tokenizer.ggml.merges', []),
    ]),
  );
  return { tok, idOfBytes: (from, to) => tokens.indexOf(spell(from, to)), control: tokens.length - 1 };
}

describe('StreamingDetokenizer', () => {
  const { tok, idOfBytes, control } = substringVocabulary();

  it('emits only whole characters for every way of cutting the bytes into three tokens', () => {
    const n = SAMPLE_BYTES.length;
    let cuts = 0;
    for (let i = 1; i < n; i++) {
      for (let j = i; j < n; j++) {
        const spans = [[0, i], [i, j], [j, n]].filter(([from, to]) => to > from);
        const stream = new StreamingDetokenizer(tok);
        let shown = '';
        for (const [from, to] of spans) {
          const delta = stream.push(idOfBytes(from, to));
          expect(delta).not.toContain('\uFFFD');
          shown += delta;
          // Everything up to the last character boundary reached is shown, nothing more.
          const complete = Math.max(...CHAR_BOUNDARIES.filter((b) => b <= to));
          expect(new TextEncoder().encode(shown).length).toBe(complete);
        }
        expect(shown + stream.flush()).toBe(SAMPLE);
        cuts++;
      }
    }
    expect(cuts).toBeGreaterThan(50);
  });

  it('emits single byte tokens one character at a time', () => {
    const stream = new StreamingDetokenizer(tok);
    const deltas = Array.from(SAMPLE_BYTES, (b) => stream.push(b));
    expect(deltas.filter((d) => d !== '')).toEqual([...SAMPLE]);
  });

  it('turns bytes left incomplete at the end into U+FFFD and starts afresh', () => {
    const stream = new StreamingDetokenizer(tok);
    expect(stream.push(idOfBytes(0, 3))).toBe('a'); // "a" and 2 of the 3 bytes of "€"
    expect(stream.flush()).toBe('\uFFFD');
    expect(stream.push(idOfBytes(0, 1))).toBe('a');
  });

  it('renders control tokens unless told to skip them', () => {
    expect(new StreamingDetokenizer(tok).push(control)).toBe('<|ctrl|>');
    expect(new StreamingDetokenizer(tok, { skipSpecial: true }).push(control)).toBe('');
  });

  it('joins SentencePiece <0xNN> byte tokens into characters', () => {
    const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    const pieces = ['▁', 'h', 'i', '▁h', '▁hi'];
    const tokens = ['<unk>', '<s>', '</s>', ...bytes, ...pieces];
    const spm = Tokenizer.fromGguf(
      ggufOf([
        kvString('tokenizer.ggml.model', 'llama'),
        kvStringArray('tokenizer.ggml.tokens', tokens),
        kvI32Array('tokenizer.ggml.token_type', [2, 3, 3, ...bytes.map(() => 6), ...pieces.map(() => 1)]),
        kvF32Array('tokenizer.ggml.scores', tokens.map(() => 0)),
      ]),
    );
    const ids = spm.encode('hi€😀');
    expect(ids.length).toBe(1 + 3 + 4);
    const stream = new StreamingDetokenizer(spm);
    expect(ids.map((id) => stream.push(id))).toEqual([' hi', '', '', '€', '', '', '', '😀']);
  });
});

/** Runs deltas through a matcher; returns what was shown and the stop found. */
function run(stops: string[], deltas: string[]): { shown: string; stop?: string } {
  const matcher = new StopMatcher(stops);
  let shown = '';
  for (const delta of deltas) {
    const result = matcher.push(delta);
    shown += result.text;
    if (result.stopped) return { shown, stop: result.stop };
  }
  return { shown: shown + matcher.flush() };
}

/** Every way to cut `text` into up to three deltas. */
function splits(text: string): string[][] {
  const out: string[][] = [];
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) out.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
  }
  return out;
}

describe('StopMatcher', () => {
  it('stops exactly before a stop string spread over deltas, at every split point', () => {
    for (const deltas of splits('Hello </stop> world')) {
      expect(run(['</stop>'], deltas)).toEqual({ shown: 'Hello ', stop: '</stop>' });
    }
  });

  it('passes text through unchanged when no stop string completes, at every split point', () => {
    for (const deltas of splits('a </st b </sto')) {
      expect(run(['</stop>'], deltas)).toEqual({ shown: 'a </st b </sto' });
    }
  });

  it('holds back only what could still start a stop string', () => {
    const matcher = new StopMatcher(['STOP']);
    expect(matcher.push('abc ST')).toEqual({ text: 'abc ', stopped: false });
    expect(matcher.push('ART')).toEqual({ text: 'START', stopped: false });
    expect(matcher.push('S')).toEqual({ text: '', stopped: false });
    expect(matcher.flush()).toBe('S');
  });

  it('cuts at the earliest of several stop strings and ignores later input', () => {
    const matcher = new StopMatcher(['\n\n', 'User:', '']);
    expect(matcher.push('one User: two\n\nthree')).toEqual({ text: 'one ', stopped: true, stop: 'User:' });
    expect(matcher.stopped).toBe(true);
    expect(matcher.push('more')).toEqual({ text: '', stopped: true });
    expect(matcher.flush()).toBe('');
  });

  it('works on detokenized deltas when the stop string and a character span tokens', () => {
    const { tok, idOfBytes } = substringVocabulary();
    // "a€😀é中" with stop "😀é": tokens cut inside € and inside 😀.
    const stream = new StreamingDetokenizer(tok);
    const matcher = new StopMatcher(['😀é']);
    let shown = '';
    let stopped = false;
    for (const [from, to] of [[0, 2], [2, 6], [6, 9], [9, SAMPLE_BYTES.length]]) {
      const result = matcher.push(stream.push(idOfBytes(from, to)));
      shown += result.text;
      stopped ||= result.stopped;
    }
    expect(stopped).toBe(true);
    expect(shown).toBe('a€');
  });
});
