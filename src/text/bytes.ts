/**
 * Byte-level helpers: UTF-8 conversion and the GPT-2 byte alphabet, in which
 * byte-level BPE vocabularies spell every byte as one printable character
 * (printable Latin-1 bytes stand for themselves, the other 68 bytes map to
 * U+0100 and up, in byte order).
 */

const encoder = new TextEncoder();

export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

function isPrintableLatin1(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

/** byte value → its stand-in character. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars: string[] = [];
  let next = 0x100;
  for (let byte = 0; byte < 256; byte++) chars.push(String.fromCodePoint(isPrintableLatin1(byte) ? byte : next++));
  return chars;
})();

/** stand-in code point → byte value. */
const CHAR_TO_BYTE: ReadonlyMap<number, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char.codePointAt(0)!, byte]));

/** The text's UTF-8 bytes written in the byte alphabet. */
export function toByteAlphabet(text: string): string {
  let out = '';
  for (const byte of utf8Bytes(text)) out += BYTE_TO_CHAR[byte];
  return out;
}

/**
 * The bytes a byte-level token stands for. A character outside the alphabet
 * (found in hand-added tokens) is written as llama.cpp does: a marker with its
 * UTF-8 bytes in hex followed by the whole token text.
 */
export function fromByteAlphabet(text: string): Uint8Array {
  const out: number[] = [];
  for (const char of text) {
    const byte = CHAR_TO_BYTE.get(char.codePointAt(0)!);
    if (byte !== undefined) {
      out.push(byte);
      continue;
    }
    const hex = Array.from(utf8Bytes(char), (b) => b.toString(16).padStart(2, '0')).join('');
    out.push(...utf8Bytes(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(out);
}

/** "<0x41>" → 0x41; undefined for any other text. */
export function parseByteToken(text: string): number | undefined {
  const match = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
  return match ? parseInt(match[1], 16) : undefined;
}

/** The <0xNN> spelling of a byte (upper-case hex, as vocabularies write it). */
export function byteTokenText(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
