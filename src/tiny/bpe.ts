/**
 * A byte-level BPE vocabulary (the GGUF `gpt2` tokenizer model) learned from a
 * short text, for generated test models.
 *
 * Byte-level BPE stores each byte as a printable character (the GPT-2 byte
 * mapping: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100 and up), so every token and merge is a plain string and any input
 * can be tokenized. Token ids 0..255 are the single bytes, in byte order.
 */

/** The pre-tokenizer split used by `tokenizer.ggml.pre = "qwen2"` in llama.cpp. */
export const QWEN2_PRETOKENIZE =
  /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** byte value -> its printable stand-in character. */
export function byteToChar(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = new Array(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : next++);
  return chars;
}

export interface BpeVocab {
  /** Token strings in id order (byte tokens first, then one per merge). */
  tokens: string[];
  /** Merges in rank order, each "left right". */
  merges: string[];
}

/**
 * Learns `nMerges` merges from `text`: the classic greedy loop that merges the
 * most frequent adjacent pair (ties broken by the pair's string, so the
 * result is deterministic), within pre-tokenized words. Pair counts are kept
 * up to date incrementally: a merge recounts only the words that contain it.
 */
export function learnBpe(text: string, nMerges: number): BpeVocab {
  const chars = byteToChar();
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const m of text.matchAll(QWEN2_PRETOKENIZE)) {
    const w = Array.from(encoder.encode(m[0]), (b) => chars[b]).join('\u0000');
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([w, count]) => ({ parts: w.split('\u0000'), count }));
  const pairCounts = new Map<string, number>();
  const wordsWithPair = new Map<string, Set<number>>();
  const countWord = (i: number, sign: 1 | -1): void => {
    const { parts, count } = words[i];
    for (let j = 0; j + 1 < parts.length; j++) {
      const key = parts[j] + ' ' + parts[j + 1];
      const c = (pairCounts.get(key) ?? 0) + sign * count;
      if (c === 0) pairCounts.delete(key);
      else pairCounts.set(key, c);
      if (sign > 0) {
        let holders = wordsWithPair.get(key);
        if (!holders) wordsWithPair.set(key, (holders = new Set()));
        holders.add(i);
      }
    }
  };
  words.forEach((_, i) => countWord(i, 1));
  const tokens = [...chars];
  const merges: string[] = [];
  const known = new Set(tokens);
  while (merges.length < nMerges) {
    let best = '';
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (bestCount < 2) break;
    const [left, right] = best.split(' ');
    merges.push(best);
    // Two merge paths can spell the same string ("ab"+"c", "a"+"bc"): one token.
    if (!known.has(left + right)) {
      known.add(left + right);
      tokens.push(left + right);
    }
    const holders = [...(wordsWithPair.get(best) ?? [])];
    wordsWithPair.delete(best);
    for (const i of holders) {
      countWord(i, -1);
      words[i].parts = mergePair(words[i].parts, left, right);
      countWord(i, 1);
    }
  }
  return { tokens, merges };
}

function mergePair(parts: string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (i + 1 < parts.length && parts[i] === left && parts[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(parts[i]);
    }
  }
  return out;
}
