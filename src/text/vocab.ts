/**
 * The vocabulary of a model as llama.cpp builds it from GGUF metadata: token
 * texts, scores and attributes, merge ranks, special token ids, the
 * end-of-generation set, and the encoding flags.
 *
 * GGUF files under-describe special tokens, so llama.cpp fixes them up by
 * token text (e.g. "<|im_end|>" is end-of-turn and control even when typed
 * normal). The same fix-ups are applied here, because they decide which
 * texts are parsed as special and which ids end generation. Where llama.cpp's
 * choice depends on hash-map order (several candidate texts for one role),
 * the first candidate in list order is taken.
 */

import { getStringArray, optBool, optKv, optNumber, optNumberArray, optString, optStringArray } from '../gguf/metadata';
import type { GgufFile } from '../gguf/types';
import { TextError, UnsupportedTokenizerError } from './errors';
import { preTokenizerFor } from './pre-tokenizers';
import type { PreTokenizer } from './pre-tokenizers';

/** `tokenizer.ggml.token_type` values. */
export enum TokenType {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

/** Token attribute bits (several may be set after fix-ups). */
export const Attr = {
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  /** Matching this special token also eats white space to its left. */
  LSTRIP: 1 << 7,
  /** ... or to its right. */
  RSTRIP: 1 << 8,
} as const;

const ATTR_OF_TYPE: Readonly<Record<number, number>> = {
  [TokenType.Normal]: Attr.NORMAL,
  [TokenType.Unknown]: Attr.UNKNOWN,
  [TokenType.Control]: Attr.CONTROL,
  [TokenType.UserDefined]: Attr.USER_DEFINED,
  [TokenType.Unused]: Attr.UNUSED,
  [TokenType.Byte]: Attr.BYTE,
};

export type VocabKind = 'bpe' | 'spm';

export interface SpecialIds {
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  mask?: number;
  fimPre?: number;
  fimSuf?: number;
  fimMid?: number;
  fimPad?: number;
  fimRep?: number;
  fimSep?: number;
}

export interface Vocab {
  readonly kind: VocabKind;
  /** BPE only. */
  readonly pre?: PreTokenizer;
  readonly texts: readonly string[];
  readonly attrs: Uint16Array;
  readonly scores?: Float32Array;
  readonly idOf: ReadonlyMap<string, number>;
  /** BPE merge ranks (lower merges first). */
  readonly merges: MergeRanks;
  readonly special: Readonly<SpecialIds>;
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** Control, user-defined and unknown tokens, longest text first: matched in this order. */
  readonly specialTokens: readonly number[];
}

export interface MergeRanks {
  /** The rank of merging `left` and `right`, or undefined when they do not merge. */
  rankOf(left: string, right: string): number | undefined;
}

const NO_MERGES: MergeRanks = { rankOf: () => undefined };

const SUPPORTED_MODELS = ['gpt2', 'llama', 'gemma4'];

const SPECIAL_ID_KEYS: ReadonlyArray<[keyof SpecialIds, string]> = [
  ['bos', 'bos_token_id'], ['eos', 'eos_token_id'], ['eot', 'eot_token_id'], ['eom', 'eom_token_id'],
  ['unk', 'unknown_token_id'], ['sep', 'seperator_token_id'], ['pad', 'padding_token_id'], ['mask', 'mask_token_id'],
  ['fimPre', 'fim_pre_token_id'], ['fimSuf', 'fim_suf_token_id'], ['fimMid', 'fim_mid_token_id'],
  ['fimPad', 'fim_pad_token_id'], ['fimRep', 'fim_rep_token_id'], ['fimSep', 'fim_sep_token_id'],
  // Deprecated spellings, read last so they win as in llama.cpp.
  ['fimPre', 'prefix_token_id'], ['fimSuf', 'suffix_token_id'], ['fimMid', 'middle_token_id'],
];

/** Texts by which a role is recognised when the file does not name its id. */
const ROLE_TEXTS: ReadonlyArray<[keyof SpecialIds, readonly string[]]> = [
  ['eot', ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>']],
  ['eom', ['<|eom_id|>']],
  ['fimPre', ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>']],
  ['fimSuf', ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>']],
  ['fimMid', ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>']],
  ['fimPad', ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]']],
  ['fimRep', ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>']],
  ['fimSep', ['<|file_sep|>']],
];

/** Texts that end generation whatever the file says. */
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
];

/** gpt-oss (harmony) markers that are always rendered and parsed, like user text. */
const ALWAYS_RENDERED = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'];

/** Reads and fixes up the vocabulary; throws UnsupportedTokenizerError for other tokenizer models. */
export function readVocab(file: GgufFile): Vocab {
  const model = optString(file, 'tokenizer.ggml.model');
  if (model === undefined) throw new TextError('BAD_VOCAB', 'tokenizer.ggml.model is missing: the file has no vocabulary');
  if (!SUPPORTED_MODELS.includes(model)) throw new UnsupportedTokenizerError('model', model, SUPPORTED_MODELS);
  const kind: VocabKind = model === 'llama' ? 'spm' : 'bpe';
  const pre = kind === 'bpe' ? preTokenizerFor(model === 'gemma4' ? 'gemma4' : optString(file, 'tokenizer.ggml.pre')) : undefined;

  const texts = getStringArray(file, 'tokenizer.ggml.tokens').map((t, i) => (t === '' ? `[EMPTY_${i}]` : t));
  const n = texts.length;
  const idOf = new Map<string, number>();
  texts.forEach((t, i) => idOf.set(t, i));
  const scores = optArrayOfLength(file, 'scores', n);
  const types = optArrayOfLength(file, 'token_type', n);
  const attrs = new Uint16Array(n);
  for (let i = 0; i < n; i++) attrs[i] = types ? (ATTR_OF_TYPE[types[i]] ?? 0) : Attr.NORMAL;

  const special = readSpecialIds(file, kind, n, pre?.noBos ?? false);
  const addBosDefault = kind === 'spm' || !!pre?.addBosDefault;
  // llama.cpp overrides a Gemma 4 file that says no BOS.
  const addBos = pre?.name === 'gemma4' || (optBool(file, 'tokenizer.ggml.add_bos_token') ?? addBosDefault);
  detectRoles(special, idOf, attrs);
  const eog = endOfGeneration(special, idOf, texts, attrs);
  if (/phi-?3/.test((optString(file, 'general.name') ?? '').toLowerCase())) stripAroundPhi3Specials(idOf, attrs);

  return {
    kind,
    pre,
    texts,
    attrs,
    scores: scores && Float32Array.from(scores),
    idOf,
    merges: kind === 'bpe' ? readMerges(file) : NO_MERGES,
    special,
    eog,
    addBos,
    addEos: optBool(file, 'tokenizer.ggml.add_eos_token') ?? false,
    addSpacePrefix: optBool(file, 'tokenizer.ggml.add_space_prefix') ?? kind === 'spm',
    specialTokens: specialTokensByLength(texts, attrs),
  };
}

function optArrayOfLength(file: GgufFile, suffix: string, n: number): number[] | undefined {
  const values = optNumberArray(file, `tokenizer.ggml.${suffix}`);
  if (values && values.length < n) {
    throw new TextError('BAD_VOCAB', `tokenizer.ggml.${suffix} has ${values.length} entries for ${n} tokens`);
  }
  return values;
}

/**
 * Merge ranks keyed by the merge line itself ("left right"), which lookups
 * rebuild from the two halves. A line with more than one space could be read
 * two ways; llama.cpp splits it at the first space after the first character,
 * and such lines are also recorded with that split so no other reading matches.
 */
function readMerges(file: GgufFile): MergeRanks {
  const merges = optStringArray(file, 'tokenizer.ggml.merges');
  if (!merges) throw new TextError('BAD_VOCAB', 'tokenizer.ggml.merges is missing: a BPE vocabulary needs its merges');
  const ranks = new Map<string, number>();
  const leftLengths = new Map<string, number>();
  merges.forEach((merge, rank) => {
    const at = merge.indexOf(' ', 1);
    if (at < 0 || ranks.has(merge)) return;
    ranks.set(merge, rank);
    if (merge.indexOf(' ', at + 1) >= 0) leftLengths.set(merge, at);
  });
  return {
    rankOf(left, right) {
      const key = left + ' ' + right;
      const rank = ranks.get(key);
      if (rank === undefined) return undefined;
      const leftLength = leftLengths.get(key);
      return leftLength === undefined || leftLength === left.length ? rank : undefined;
    },
  };
}

/** Ids from the file over the defaults of the model kind (out-of-range values ignored). */
function readSpecialIds(file: GgufFile, kind: VocabKind, n: number, noDefaultBos: boolean): SpecialIds {
  // llama.cpp's defaults when the file is silent: SentencePiece <unk> <s> </s>; BPE 11 (GPT-2 era).
  const ids: SpecialIds = kind === 'spm' ? { bos: 1, eos: 2, unk: 0 } : { bos: noDefaultBos ? undefined : 11, eos: 11 };
  for (const key of Object.keys(ids) as (keyof SpecialIds)[]) {
    if ((ids[key] as number) >= n) ids[key] = undefined;
  }
  for (const [role, key] of SPECIAL_ID_KEYS) {
    const kv = optKv(file, `tokenizer.ggml.${key}`);
    if (!kv) continue;
    const id = optNumber(file, kv.key);
    if (id !== undefined && Number.isInteger(id) && id >= 0 && id < n) ids[role] = id;
  }
  return ids;
}

function markControl(attrs: Uint16Array, id: number): void {
  attrs[id] |= Attr.CONTROL;
}

/** EOT, EOM and FIM roles found by text when the file does not name them; found tokens become control. */
function detectRoles(ids: SpecialIds, idOf: ReadonlyMap<string, number>, attrs: Uint16Array): void {
  for (const [role, candidates] of ROLE_TEXTS) {
    if (ids[role] !== undefined) continue;
    const id = candidates.map((t) => idOf.get(t)).find((found) => found !== undefined);
    if (id === undefined) continue;
    ids[role] = id;
    markControl(attrs, id);
  }
}

function endOfGeneration(ids: SpecialIds, idOf: ReadonlyMap<string, number>, texts: readonly string[], attrs: Uint16Array): Set<number> {
  const eog = new Set<number>();
  for (const role of ['fimPad', 'fimRep', 'fimSep'] as const) if (ids[role] !== undefined) eog.add(ids[role]);
  for (const text of EOG_TEXTS) {
    const id = idOf.get(text);
    if (id === undefined) continue;
    eog.add(id);
    markControl(attrs, id);
  }
  for (const text of ALWAYS_RENDERED) {
    const id = idOf.get(text);
    if (id !== undefined) attrs[id] = Attr.USER_DEFINED;
  }
  for (const role of ['eos', 'eot', 'eom'] as const) if (ids[role] !== undefined) eog.add(ids[role]);

  const eogWithText = (text: string) => [...eog].find((id) => texts[id] === text);
  // Harmony (gpt-oss) and solar-open: "<|end|>" ends a message, not the generation.
  const end = eogWithText('<|end|>');
  const hasCall = eogWithText('<|call|>') !== undefined || eogWithText('<|calls|>') !== undefined;
  if (end !== undefined && hasCall && (eogWithText('<|return|>') !== undefined || eogWithText('<|flush|>') !== undefined)) {
    eog.delete(end);
    attrs[end] = Attr.USER_DEFINED;
  }
  // Gemma 4: "</s>" is ordinary text there.
  const endOfSequence = eogWithText('</s>');
  if (endOfSequence !== undefined && eogWithText('<|tool_response>') !== undefined) {
    eog.delete(endOfSequence);
    attrs[endOfSequence] = Attr.NORMAL;
  }
  return eog;
}

/** Phi-3 swallows white space after its special tokens (except <unk>, <s>, <|endoftext|>). */
function stripAroundPhi3Specials(idOf: ReadonlyMap<string, number>, attrs: Uint16Array): void {
  for (let id = 0; id < attrs.length; id++) {
    if (attrs[id] & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) attrs[id] |= Attr.RSTRIP;
  }
  const set = (text: string, on: boolean) => {
    const id = idOf.get(text);
    if (id !== undefined) attrs[id] = on ? attrs[id] | Attr.RSTRIP : attrs[id] & ~Attr.RSTRIP;
  };
  set('</s>', true);
  for (const text of ['<unk>', '<s>', '<|endoftext|>']) set(text, false);
}

function specialTokensByLength(texts: readonly string[], attrs: Uint16Array): number[] {
  const ids: number[] = [];
  for (let id = 0; id < texts.length; id++) {
    if (attrs[id] & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) ids.push(id);
  }
  const utf8Length = (s: string) => new TextEncoder().encode(s).length;
  const lengths = new Map(ids.map((id) => [id, utf8Length(texts[id])]));
  return ids.sort((a, b) => lengths.get(b)! - lengths.get(a)! || a - b);
}

/** The token type as llama.cpp treats the token after its fix-ups. */
export function tokenTypeOf(attr: number): TokenType {
  if (attr & Attr.UNKNOWN) return TokenType.Unknown;
  if (attr & Attr.CONTROL) return TokenType.Control;
  if (attr & Attr.USER_DEFINED) return TokenType.UserDefined;
  if (attr & Attr.BYTE) return TokenType.Byte;
  if (attr & Attr.UNUSED) return TokenType.Unused;
  if (attr & Attr.NORMAL) return TokenType.Normal;
  return TokenType.Undefined;
}
