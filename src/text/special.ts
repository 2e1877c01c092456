/**
 * Finding special-token texts (e.g. "<|im_start|>") inside input text, before
 * any other tokenization, as llama.cpp does: tokens are tried longest text
 * first, each splitting every remaining text fragment at its occurrences.
 * User-defined tokens are always recognised; control and unknown tokens only
 * when the caller asks to parse special tokens.
 */

import { Attr } from './vocab';
import type { Vocab } from './vocab';

export type Fragment = { readonly text: string } | { readonly id: number };

/** C's isspace in the "C" locale, which llama.cpp strips around lstrip/rstrip tokens. */
function isAsciiSpace(char: string): boolean {
  return char === ' ' || (char >= '\t' && char <= '\r');
}

function trimEndAsciiSpace(text: string): string {
  let end = text.length;
  while (end > 0 && isAsciiSpace(text[end - 1])) end--;
  return text.slice(0, end);
}

function trimStartAsciiSpace(text: string): string {
  let start = 0;
  while (start < text.length && isAsciiSpace(text[start])) start++;
  return text.slice(start);
}

/** Splits one text fragment at every occurrence of a special token, left to right. */
function splitAt(text: string, id: number, tokenText: string, attr: number, out: Fragment[]): void {
  let rest = text;
  for (;;) {
    const at = rest.indexOf(tokenText);
    if (at < 0) {
      out.push({ text: rest });
      return;
    }
    if (at > 0) {
      const left = attr & Attr.LSTRIP ? trimEndAsciiSpace(rest.slice(0, at)) : rest.slice(0, at);
      if (left.length > 0) out.push({ text: left });
    }
    out.push({ id });
    const right = rest.slice(at + tokenText.length);
    rest = attr & Attr.RSTRIP ? trimStartAsciiSpace(right) : right;
    if (rest.length === 0) return;
  }
}

/** The input as text fragments and special-token ids, in order; no fragment is empty. */
export function splitSpecialTokens(text: string, vocab: Vocab, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text.length > 0 ? [{ text }] : [];
  for (const id of vocab.specialTokens) {
    const attr = vocab.attrs[id];
    if (!parseSpecial && attr & (Attr.CONTROL | Attr.UNKNOWN)) continue;
    const tokenText = vocab.texts[id];
    if (!text.includes(tokenText)) continue;
    const next: Fragment[] = [];
    for (const fragment of fragments) {
      if ('text' in fragment) splitAt(fragment.text, id, tokenText, attr, next);
      else next.push(fragment);
    }
    fragments = next;
  }
  return fragments;
}
