/**
 * Pre-tokenizers of byte-pair-encoding vocabularies, keyed by the GGUF
 * `tokenizer.ggml.pre` value, with the splitting rules llama.cpp applies.
 *
 * A pre-tokenizer is a list of regular expressions applied in turn: each one
 * splits every piece left by the previous one into its matches and the gaps
 * between them (gaps are kept as pieces of their own). BPE merges then run
 * within each piece only.
 *
 * The patterns follow llama.cpp's adapted forms, whose character classes
 * differ from the original tokenizer.json ones in ways that change results:
 *   - `\s` is Unicode White_Space (U+0085 included, U+FEFF not, unlike JS `\s`);
 *   - before matching, non-ASCII white space is seen as U+000B, so it never
 *     matches an explicit character range (e.g. U+3000 in deepseek-llm's);
 *   - `\p{Lu}`-style case classes outside ASCII do not exist: any non-ASCII
 *     letter counts as both upper and lower case (gpt-4o, tekken), and combining
 *     marks are not letters there.
 */

import { UnsupportedTokenizerError } from './errors';

export interface PreTokenizer {
  /** The canonical name (the first alias in the table). */
  readonly name: string;
  /** Regexes applied in sequence, each with the `gu` flags. */
  readonly splits: readonly RegExp[];
  /** A piece that is itself a vocabulary token is emitted whole, merges skipped. */
  readonly ignoreMerges: boolean;
  /** Default of `add_bos_token` when the file does not say. */
  readonly addBosDefault: boolean;
  /** Pieces are mapped to the GPT-2 byte alphabet before merging (false: raw UTF-8 with <0xNN> byte tokens). */
  readonly byteEncode: boolean;
  /** Spaces are written as U+2581 before splitting (SentencePiece-style BPE). */
  readonly escapeSpaces: boolean;
  /** The model has no default BOS token (chatglm). */
  readonly noBos: boolean;
  /** Detokenizing may drop spaces before punctuation and contractions (llama.cpp's clean_spaces). */
  readonly cleanSpaces: boolean;
}

/** Names the GGUF `tokenizer.ggml.pre` key takes for each supported rule set. */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  default: ['default'],
  llama3: ['llama-bpe', 'llama3', 'llama-v3', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'],
  dbrx: ['dbrx', 'smaug-bpe'],
  chatglm: ['glm4', 'chatglm-bpe'],
  gpt2: [
    'gpt-2', 'gpt2', 'mpt', 'olmo', 'phi-2', 'jais', 'trillion', 'granite-docling', 'exaone4', 'gigachat',
    'a.x-4.0', 'mellum', 'modern-bert', 'jina-es', 'jina-de', 'jina-v2-es', 'jina-v2-de', 'jina-v1-en',
    'jina-v2-code', 'roberta-bpe',
  ],
  starcoder: ['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b', 'mellum2'],
  falcon: ['falcon'],
  qwen2: [
    'qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'megrez', 'stablelm2', 'hunyuan', 'solar-open', 'grok-2',
  ],
  qwen35: ['qwen35'],
  'deepseek-llm': ['deepseek-llm'],
  'deepseek-coder': ['deepseek-coder'],
  'deepseek-v3': ['deepseek-v3', 'hunyuan-dense', 'joyai-llm', 'hy_v4'],
  'gpt-4o': ['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'],
  tekken: ['tekken'],
  bailingmoe: ['bailingmoe', 'bailingmoe2', 'llada-moe'],
  gemma4: ['gemma4'],
};

const CONTRACTIONS = String.raw`'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]`;
const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const LLAMA3 =
  String.raw`(?:${CONTRACTIONS})|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2 =
  String.raw`(?:${CONTRACTIONS})|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN35 =
  String.raw`(?:${CONTRACTIONS})|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
// "Upper" and "lower" case runs as llama.cpp sees them: a letter that is not a-z, a letter that is not A-Z.
const UPPER = String.raw`(?:(?=\p{L})[^a-z])`;
const LOWER = String.raw`(?:(?=\p{L})[^A-Z])`;
const GPT4O =
  String.raw`[^\r\n\p{L}\p{N}]?${UPPER}*${LOWER}+(?:${CONTRACTIONS})?|[^\r\n\p{L}\p{N}]?${UPPER}+${LOWER}*(?:${CONTRACTIONS})?|` +
  String.raw`\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const TEKKEN =
  String.raw`[^\r\n\p{L}\p{N}]?${UPPER}*${LOWER}+|[^\r\n\p{L}\p{N}]?${UPPER}+${LOWER}*|` +
  String.raw`\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const BAILING =
  String.raw`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`;
const CJK_HANGUL = String.raw`[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+`;
// Latin, Greek, Cyrillic and other cased letters, as listed by DeepSeek's tokenizer.
const DEEPSEEK_LETTERS =
  String.raw`\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373` +
  String.raw`\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F` +
  String.raw`\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77` +
  String.raw`\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D` +
  String.raw`\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4` +
  String.raw`\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139` +
  String.raw`\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D` +
  String.raw`\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A` +
  String.raw`\uFF41-\uFF5A\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}` +
  String.raw`\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+`;

/** Pattern sources per rule set, in application order. */
const SPLITS: Readonly<Record<string, readonly string[]>> = {
  default: [String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, '[0-9][0-9][0-9]'],
  llama3: [LLAMA3],
  dbrx: [LLAMA3],
  chatglm: [LLAMA3],
  gpt2: [GPT2],
  starcoder: [String.raw`\p{N}`, GPT2],
  falcon: [String.raw`[\p{P}\$\+<=>\^~\|\x60]+`, GPT2, '[0-9][0-9][0-9]'],
  qwen2: [QWEN2],
  qwen35: [QWEN35],
  'deepseek-llm': [
    String.raw`[\r\n]`,
    DEEPSEEK_LETTERS,
    String.raw`\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+`,
    String.raw`\s+$`,
    CJK_HANGUL,
    String.raw`\p{N}+`,
  ],
  'deepseek-coder': [String.raw`[\r\n]`, String.raw`\s?\p{L}+`, String.raw`\s?\p{P}+`, CJK_HANGUL, String.raw`\p{N}`],
  'deepseek-v3': [
    String.raw`\p{N}{1,3}`,
    String.raw`[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+`,
    String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_\x60{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  ],
  'gpt-4o': [GPT4O],
  tekken: [TEKKEN],
  bailingmoe: [BAILING],
  // Only newlines are split off: the merges run over whole lines.
  gemma4: [String.raw`[^\n]+|\n+`],
};

const IGNORE_MERGES = new Set(['llama3', 'tekken']);
/** Aliases whose detokenizer keeps spaces as they are (every other BPE one cleans them). */
const KEEP_SPACES = new Set([
  'deepseek-llm', 'deepseek-coder', 'deepseek-v3', 'command-r', 'qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'qwen35',
  'tekken', 'smollm', 'gpt-4o', 'llama4', 'kanana2', 'talkie', 'trillion', 'granite-docling', 'bailingmoe', 'bailingmoe2',
  'llada-moe', 'hunyuan', 'hunyuan-dense', 'hy_v4', 'joyai-llm', 'grok-2', 'minimax-m2', 'solar-open',
]);
const ADD_BOS = new Set(['llama3', 'tekken', 'gemma4']);

/** llama.cpp's `\s` and `\S`, which JS spells differently (see the header). */
function toJsPattern(source: string): string {
  return source.replaceAll(String.raw`\s`, String.raw`\p{White_Space}`).replaceAll(String.raw`\S`, String.raw`\P{White_Space}`);
}

const byAlias = new Map<string, PreTokenizer>();
for (const [name, aliases] of Object.entries(ALIASES)) {
  const splits = SPLITS[name].map((source) => new RegExp(toJsPattern(source), 'gu'));
  for (const alias of aliases) {
    byAlias.set(alias, {
      name,
      splits,
      ignoreMerges: IGNORE_MERGES.has(name),
      addBosDefault: ADD_BOS.has(name),
      byteEncode: name !== 'gemma4',
      escapeSpaces: name === 'gemma4',
      noBos: name === 'chatglm',
      cleanSpaces: !KEEP_SPACES.has(alias),
    });
  }
}

/** Every `tokenizer.ggml.pre` value this module handles. */
export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = [...byAlias.keys()];

/**
 * The rule set for a `tokenizer.ggml.pre` value; a missing or empty value
 * means 'default' (llama.cpp warns that quality degrades).
 */
export function preTokenizerFor(pre: string | undefined): PreTokenizer {
  const entry = byAlias.get(pre || 'default');
  if (!entry) throw new UnsupportedTokenizerError('pre-tokenizer', pre ?? '', SUPPORTED_PRE_TOKENIZERS);
  return entry;
}

// Non-ASCII white space: llama.cpp matches a stand-in (U+000B) in its place.
const NON_ASCII_SPACE = /[\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]/g;

/**
 * Splits `text` into pieces by the rule set. Every character ends up in
 * exactly one piece, in order; pieces are never empty.
 */
export function preTokenize(text: string, pre: PreTokenizer): string[] {
  // The stand-ins keep UTF-16 lengths, so offsets in `view` are offsets in `text`.
  const view = text.replace(NON_ASCII_SPACE, '\u000B');
  let bounds: number[] = text.length > 0 ? [0, text.length] : [0];
  for (const regex of pre.splits) bounds = splitBounds(view, bounds, regex);
  const pieces: string[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) pieces.push(text.slice(bounds[i], bounds[i + 1]));
  return pieces;
}

/** Refines piece boundaries (ascending offsets) by one regex: matches and the gaps between them. */
function splitBounds(view: string, bounds: readonly number[], regex: RegExp): number[] {
  const out = [bounds[0]];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i];
    const end = bounds[i + 1];
    const piece = view.slice(start, end);
    for (const match of piece.matchAll(regex)) {
      if (match[0].length === 0) continue;
      const matchStart = start + match.index;
      if (matchStart > out[out.length - 1]) out.push(matchStart);
      out.push(matchStart + match[0].length);
    }
    if (end > out[out.length - 1]) out.push(end);
  }
  return out;
}
