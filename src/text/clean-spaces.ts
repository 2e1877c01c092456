/**
 * llama.cpp's optional clean-up of detokenized text (its `clean_spaces`,
 * on for GPT-2-era vocabularies), in three passes over the bytes:
 *   1. drop a space before ? ! . ,           ("a ." → "a.")
 *   2. drop the spaces around a lone quote    ("a ' b" → "a'b")
 *   3. drop a space before 's 'm 're 've      ("it 's" → "it's"; 't 'd 'll keep it)
 * Each pass looks at the text as that pass received it.
 */

const SPACE = 0x20;
const QUOTE = 0x27;
const code = (char: string) => char.charCodeAt(0);
const PUNCTUATION = new Set(['?', '!', '.', ','].map(code));

function dropSpaceBeforePunctuation(text: Uint8Array): number[] {
  const out: number[] = [];
  text.forEach((byte, i) => {
    if (i > 0 && text[i - 1] === SPACE && PUNCTUATION.has(byte)) out.pop();
    out.push(byte);
  });
  return out;
}

function dropSpacesAroundLoneQuote(text: readonly number[]): number[] {
  const out: number[] = [];
  let skippedSpaceAt = -1;
  for (let i = 0; i < text.length; i++) {
    const before = i - 1 === skippedSpaceAt ? undefined : text[i - 1];
    if (i > 0 && text[i] === QUOTE && i + 1 < text.length && before === SPACE && text[i + 1] === SPACE) {
      out.pop();
      out.push(QUOTE);
      skippedSpaceAt = ++i;
      continue;
    }
    out.push(text[i]);
  }
  return out;
}

function dropSpaceBeforeContraction(text: readonly number[]): number[] {
  const out: number[] = [];
  text.forEach((byte, i) => {
    if (i > 0 && text[i - 1] === SPACE && byte === QUOTE && i + 1 < text.length) {
      const next = text[i + 1];
      const after = i + 2 < text.length ? text[i + 2] : undefined;
      const sOrM = next === code('s') || next === code('m');
      const reOrVe = (next === code('r') || next === code('v')) && after === code('e');
      if (sOrM || reOrVe) out.pop();
    }
    out.push(byte);
  });
  return out;
}

export function cleanUpSpaces(text: Uint8Array): Uint8Array {
  return Uint8Array.from(dropSpaceBeforeContraction(dropSpacesAroundLoneQuote(dropSpaceBeforePunctuation(text))));
}
