/**
 * The tokenizer of a GGUF model, reproducing llama.cpp's `llama_tokenize` and
 * `llama_detokenize` for byte-level BPE ('gpt2', and 'gemma4'-style BPE over
 * raw UTF-8) and SentencePiece BPE ('llama') vocabularies.
 *
 * Encoding: special-token texts are cut out first (special.ts); each
 * remaining fragment is split by the pre-tokenizer (BPE) and merged
 * (merge.ts). Decoding: each token becomes its bytes (byte-level tokens map
 * back through the byte alphabet, <0xNN> tokens are single bytes), and the
 * bytes are read as UTF-8.
 */

import type { GgufFile } from '../gguf/types';
import { cleanUpSpaces } from './clean-spaces';
import { byteTokenText, concatBytes, fromByteAlphabet, toByteAlphabet, utf8Bytes } from './bytes';
import { bpeMerge, spmMerge } from './merge';
import { preTokenize } from './pre-tokenizers';
import { splitSpecialTokens } from './special';
import { Attr, readVocab, tokenTypeOf } from './vocab';
import type { TokenType, Vocab } from './vocab';

export interface EncodeOptions {
  /** Add BOS (and EOS) as the model's add_bos_token / add_eos_token say. Default false. */
  addSpecial?: boolean;
  /** Recognise control-token texts such as "<|im_start|>" in the input. Default false (user-defined tokens are always recognised). */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render control and unknown tokens as nothing, and drop the BOS/EOS that encoding with addSpecial adds. Default false. */
  skipSpecial?: boolean;
  /**
   * Apply llama.cpp's clean-up of spaces before punctuation and contractions
   * where the vocabulary asks for it (GPT-2-era BPE), as llama_detokenize
   * does. Default false: the text is exactly the tokens' bytes.
   */
  cleanSpaces?: boolean;
}

const ESCAPED_SPACE = '\u2581';
const EMPTY = new Uint8Array(0);
const LONE_SURROGATE = /\p{Cs}/gu;

export class Tokenizer {
  private readonly pieces = new Map<number, Uint8Array>();
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  private constructor(private readonly vocab: Vocab) {}

  /** Builds the tokenizer from GGUF metadata; throws UnsupportedTokenizerError for other tokenizer kinds. */
  static fromGguf(file: GgufFile): Tokenizer {
    return new Tokenizer(readVocab(file));
  }

  get vocabSize(): number {
    return this.vocab.texts.length;
  }
  get bos(): number | undefined {
    return this.vocab.special.bos;
  }
  get eos(): number | undefined {
    return this.vocab.special.eos;
  }
  /** End of turn (e.g. <|im_end|>, <|eot_id|>), from the file or found by text. */
  get eot(): number | undefined {
    return this.vocab.special.eot;
  }
  /** Whether encoding with addSpecial prepends BOS. */
  get addsBos(): boolean {
    return this.vocab.addBos;
  }

  /** True for every token that ends generation (EOS, EOT, <|im_end|>, <|return|>...), as llama.cpp decides. */
  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }

  /** The ids that end generation, ascending. */
  eogIds(): number[] {
    return [...this.vocab.eog].sort((a, b) => a - b);
  }

  /** The token's kind after llama.cpp's fix-ups (e.g. <|im_end|> is control even if the file says normal). */
  tokenType(id: number): TokenType {
    return tokenTypeOf(this.vocab.attrs[this.checkId(id)]);
  }

  /** The token as the vocabulary spells it (byte alphabet, ▁ for spaces, <0xNN>...). */
  tokenText(id: number): string {
    return this.vocab.texts[this.checkId(id)];
  }

  /** The id of the token spelled exactly `text` in the vocabulary. */
  tokenId(text: string): number | undefined {
    return this.vocab.idOf.get(text);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const { bos, eos } = this.vocab.special;
    const addBos = !!options.addSpecial && this.vocab.addBos && bos !== undefined;
    const addEos = !!options.addSpecial && this.vocab.addEos && eos !== undefined;
    const out: number[] = addBos ? [bos] : [];
    // llama.cpp reads invalid UTF-8 as U+FFFD; a lone surrogate is its JS counterpart.
    const wellFormed = text.replace(LONE_SURROGATE, '\uFFFD');
    // SentencePiece: a space goes before the text at the start and after every special token.
    let afterSpecial = true;
    for (const fragment of splitSpecialTokens(wellFormed, this.vocab, !!options.parseSpecial)) {
      if ('id' in fragment) {
        out.push(fragment.id);
        afterSpecial = true;
      } else if (this.vocab.kind === 'spm') {
        this.encodeSpm((this.vocab.addSpacePrefix && afterSpecial ? ' ' : '') + fragment.text, out);
        afterSpecial = false;
      } else {
        this.encodeBpe(fragment.text, out);
      }
    }
    if (addEos) out.push(eos);
    return out;
  }

  /** The bytes one token stands for when decoded (a shared array: do not modify it). */
  tokenBytes(id: number, options: DecodeOptions = {}): Uint8Array {
    const attr = this.vocab.attrs[this.checkId(id)];
    if (options.skipSpecial && attr & (Attr.CONTROL | Attr.UNKNOWN)) return EMPTY;
    let piece = this.pieces.get(id);
    if (!piece) {
      piece = this.pieceOf(id, attr);
      this.pieces.set(id, piece);
    }
    return piece;
  }

  /**
   * The text of a token sequence, as llama.cpp's detokenizer writes it: the
   * SentencePiece space prefix that encoding adds is removed again, so
   * decode(encode(s)) === s for well-formed text (without cleanSpaces).
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    let list = ids;
    let removeSpace = this.vocab.addSpacePrefix;
    const { bos, eos } = this.vocab.special;
    if (options.skipSpecial && this.vocab.addBos && list.length > 0 && list[0] === bos) {
      removeSpace = false;
      list = list.slice(1);
    }
    if (options.skipSpecial && this.vocab.addEos && list.length > 0 && list[list.length - 1] === eos) {
      list = list.slice(0, -1);
    }
    const parts = list.map((id, i) => {
      const piece = this.tokenBytes(id, options);
      return i === 0 && removeSpace && piece[0] === 0x20 ? piece.subarray(1) : piece;
    });
    const bytes = concatBytes(parts);
    const clean = !!options.cleanSpaces && !!this.vocab.pre?.cleanSpaces;
    return this.utf8.decode(clean ? cleanUpSpaces(bytes) : bytes);
  }

  private encodeBpe(text: string, out: number[]): void {
    const { pre, idOf, merges } = this.vocab;
    if (!pre) throw new Error('unreachable: a BPE vocabulary has a pre-tokenizer');
    const rankOf = (left: string, right: string) => merges.rankOf(left, right);
    const input = pre.escapeSpaces ? text.replaceAll(' ', ESCAPED_SPACE) : text;
    for (const piece of preTokenize(input, pre)) {
      const word = pre.byteEncode ? toByteAlphabet(piece) : piece;
      const whole = idOf.get(word);
      // Gemma 4 keeps a run of newlines whole when the vocabulary has it.
      if (whole !== undefined && (pre.ignoreMerges || (pre.name === 'gemma4' && /^\n+$/.test(word)))) {
        out.push(whole);
        continue;
      }
      for (const symbol of bpeMerge(word, rankOf)) {
        const id = idOf.get(symbol);
        if (id !== undefined) out.push(id);
        else this.pushBytes(symbol, pre.byteEncode, out);
      }
    }
  }

  private encodeSpm(text: string, out: number[]): void {
    const { idOf, scores } = this.vocab;
    const scoreOf = (piece: string) => {
      const id = idOf.get(piece);
      return id === undefined ? undefined : (scores?.[id] ?? 0);
    };
    for (const symbol of spmMerge(text.replaceAll(' ', ESCAPED_SPACE), scoreOf)) {
      const id = idOf.get(symbol);
      if (id !== undefined) out.push(id);
      else this.pushBytes(symbol, false, out);
    }
  }

  /**
   * A symbol that is no token falls back to one token per UTF-8 byte: <0xNN>
   * tokens, else the byte itself as a one-character token (in byte-level
   * vocabularies only ASCII can match, as in llama.cpp); unmatched bytes are
   * dropped, or become <unk> in SentencePiece vocabularies.
   */
  private pushBytes(symbol: string, byteAlphabet: boolean, out: number[]): void {
    const { idOf, special } = this.vocab;
    for (const byte of utf8Bytes(symbol)) {
      const asChar = byte < 0x80 ? idOf.get(String.fromCharCode(byte)) : undefined;
      const id = byteAlphabet ? asChar : (idOf.get(byteTokenText(byte)) ?? asChar ?? (this.vocab.kind === 'spm' ? special.unk : undefined));
      if (id !== undefined) out.push(id);
    }
  }

  private pieceOf(id: number, attr: number): Uint8Array {
    const text = this.vocab.texts[id];
    if (attr & (Attr.CONTROL | Attr.UNKNOWN | Attr.USER_DEFINED)) return utf8Bytes(text);
    if (attr & Attr.NORMAL) {
      const spaced = this.vocab.kind === 'spm' || !!this.vocab.pre?.escapeSpaces;
      return spaced ? utf8Bytes(text.replaceAll(ESCAPED_SPACE, ' ')) : fromByteAlphabet(text);
    }
    // llama.cpp reads the two hex digits after "<0x" without checking them.
    if (attr & Attr.BYTE) return Uint8Array.of(parseInt(text.substr(3, 2), 16) || 0);
    return EMPTY;
  }

  private checkId(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.texts.length) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocab.texts.length - 1})`);
    }
    return id;
  }
}
