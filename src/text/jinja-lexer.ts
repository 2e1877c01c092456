/**
 * Jinja lexer: a template as text, `{{ }}` output and `{% %}` statement
 * pieces, each tag's expression as tokens. Whitespace is controlled the way
 * Hugging Face's and llama.cpp's runners configure Jinja: trim_blocks (the
 * newline after a `%}` or `#}` is dropped), lstrip_blocks (spaces before a
 * `{%` or `{#` on its own line are dropped), the template's final newline
 * dropped, `-` on a tag strips all whitespace on that side, `+` keeps it.
 */

import { JinjaError } from './jinja-values';

export type Token =
  | { kind: 'name'; value: string }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'op'; value: string };

export type Piece =
  | { kind: 'text'; text: string; line: number }
  | { kind: 'output' | 'statement'; tokens: Token[]; line: number };

const OPERATORS = ['**', '//', '==', '!=', '<=', '>=', '+', '-', '*', '/', '%', '~', '|', '.', ',', ':', '(', ')', '[', ']', '{', '}', '<', '>', '='];
const CLOSERS: Record<string, string> = { '{': '}}', '%': '%}', '#': '#}' };
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?/y;
const RAW_END = /\{%([-+]?)\s*endraw\s*([-+]?)%\}/g;

export function lex(template: string): Piece[] {
  let src = template.replace(/\r\n?/g, '\n');
  if (src.endsWith('\n')) src = src.slice(0, -1);
  const pieces: Piece[] = [];
  let pos = 0;
  // How the previous tag trims the text after it: not, one newline (trim_blocks), or all whitespace ('-').
  let trimAfter: 'none' | 'newline' | 'all' = 'none';
  const lineAt = lineCounter(src);

  while (pos <= src.length) {
    const open = nextTag(src, pos);
    const end = open < 0 ? src.length : open;
    let start = pos;
    if (trimAfter === 'all') while (start < end && /\s/.test(src[start])) start++;
    else if (trimAfter === 'newline' && src[start] === '\n' && start < end) start++;
    let text = src.slice(start, end);
    if (open < 0) {
      if (text) pieces.push({ kind: 'text', text, line: lineAt(start) });
      break;
    }
    const type = src[open + 1];
    const modifier = src[open + 2];
    if (modifier === '-') text = text.replace(/\s+$/, '');
    else if (type !== '{' && modifier !== '+') text = lstripBlock(text, start === 0 || src[start - 1] === '\n');
    if (text) pieces.push({ kind: 'text', text, line: lineAt(start) });

    const line = lineAt(open);
    const inner = open + 2 + (modifier === '-' || modifier === '+' ? 1 : 0);
    if (type === '#') {
      const close = src.indexOf('#}', inner);
      if (close < 0) throw new JinjaError('syntax', 'a comment is not closed with #}', line);
      trimAfter = src[close - 1] === '-' ? 'all' : src[close - 1] === '+' ? 'none' : 'newline';
      pos = close + 2;
      continue;
    }
    const { tokens, close, closeModifier } = lexTag(src, inner, CLOSERS[type], line);
    pos = close;
    trimAfter = closeModifier === '-' ? 'all' : type === '%' && closeModifier !== '+' ? 'newline' : 'none';
    if (type === '%' && tokens.length === 1 && tokens[0].kind === 'name' && tokens[0].value === 'raw') {
      RAW_END.lastIndex = pos;
      const rawEnd = RAW_END.exec(src);
      if (!rawEnd) throw new JinjaError('syntax', 'a raw block is not closed with {% endraw %}', line);
      let rawStart = pos;
      if (trimAfter === 'all') while (rawStart < rawEnd.index && /\s/.test(src[rawStart])) rawStart++;
      else if (trimAfter === 'newline' && src[rawStart] === '\n') rawStart++;
      let raw = src.slice(rawStart, rawEnd.index);
      if (rawEnd[1] === '-') raw = raw.replace(/\s+$/, '');
      if (raw) pieces.push({ kind: 'text', text: raw, line: lineAt(rawStart) });
      pos = rawEnd.index + rawEnd[0].length;
      trimAfter = rawEnd[2] === '-' ? 'all' : rawEnd[2] === '+' ? 'none' : 'newline';
      continue;
    }
    pieces.push({ kind: type === '{' ? 'output' : 'statement', tokens, line });
  }
  return pieces;
}

/** lstrip_blocks: spaces and tabs between the start of the line and a block tag go. */
function lstripBlock(text: string, startsLine: boolean): string {
  const lineStart = text.lastIndexOf('\n') + 1;
  if ((lineStart > 0 || startsLine) && /^[ \t]*$/.test(text.slice(lineStart))) return text.slice(0, lineStart);
  return text;
}

function nextTag(src: string, from: number): number {
  for (let i = src.indexOf('{', from); i >= 0; i = src.indexOf('{', i + 1)) {
    const next = src[i + 1];
    if (next === '{' || next === '%' || next === '#') return i;
  }
  return -1;
}

/** The tokens of one tag from `pos` to its closer (`}}` or `%}`, outside brackets and strings). */
function lexTag(src: string, pos: number, closer: string, line: number): { tokens: Token[]; close: number; closeModifier: string } {
  const tokens: Token[] = [];
  let depth = 0;
  for (;;) {
    while (pos < src.length && /\s/.test(src[pos])) pos++;
    if (pos >= src.length) throw new JinjaError('syntax', `a tag is not closed with ${closer}`, line);
    if (depth <= 0) {
      if (src.startsWith(closer, pos)) return { tokens, close: pos + 2, closeModifier: '' };
      if ((src[pos] === '-' || src[pos] === '+') && src.startsWith(closer, pos + 1)) return { tokens, close: pos + 3, closeModifier: src[pos] };
    }
    const ch = src[pos];
    NAME.lastIndex = pos;
    const name = NAME.exec(src);
    if (name) {
      tokens.push({ kind: 'name', value: name[0] });
      pos += name[0].length;
      continue;
    }
    NUMBER.lastIndex = pos;
    const number = NUMBER.exec(src);
    if (number) {
      tokens.push({ kind: 'number', value: Number(number[0].replace(/_/g, '')) });
      pos += number[0].length;
      continue;
    }
    if (ch === "'" || ch === '"') {
      const { value, end } = lexString(src, pos, line);
      tokens.push({ kind: 'string', value });
      pos = end;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, pos));
    if (!op) throw new JinjaError('syntax', `unexpected character '${ch}'`, line);
    if (op === '(' || op === '[' || op === '{') depth++;
    else if (op === ')' || op === ']' || op === '}') depth--;
    tokens.push({ kind: 'op', value: op });
    pos += op.length;
  }
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };

/** A quoted string with Python's escapes (\n, \xNN, \uNNNN, octal...; unknown ones are kept). */
function lexString(src: string, pos: number, line: number): { value: string; end: number } {
  const quote = src[pos];
  let value = '';
  for (let i = pos + 1; i < src.length; i++) {
    const ch = src[i];
    if (ch === quote) return { value, end: i + 1 };
    if (ch !== '\\') {
      value += ch;
      continue;
    }
    const next = src[++i];
    const hexLength = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0;
    const octal = /^[0-7]{1,3}/.exec(src.slice(i, i + 3));
    if (hexLength > 0 && /^[0-9a-fA-F]+$/.test(src.slice(i + 1, i + 1 + hexLength)) && i + hexLength < src.length) {
      value += String.fromCodePoint(parseInt(src.slice(i + 1, i + 1 + hexLength), 16));
      i += hexLength;
    } else if (octal) {
      value += String.fromCharCode(parseInt(octal[0], 8));
      i += octal[0].length - 1;
    } else if (next in ESCAPES) {
      value += ESCAPES[next];
    } else {
      value += `\\${next ?? ''}`;
    }
  }
  throw new JinjaError('syntax', 'a string is not closed', line);
}

/** Line numbers of offsets, for error messages. */
function lineCounter(src: string): (offset: number) => number {
  const starts = [0];
  for (let i = src.indexOf('\n'); i >= 0; i = src.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}
