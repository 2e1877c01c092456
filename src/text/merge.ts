/**
 * The two merge loops that turn one piece of text into vocabulary pieces.
 *
 * Both start from one symbol per code point and repeatedly merge the best
 * adjacent pair, as llama.cpp does:
 *   - BPE: the pair with the lowest merge rank (ties: leftmost);
 *   - SentencePiece (llama): the pair whose concatenation is the token with
 *     the highest score (ties: leftmost). No merge list is needed.
 * Pairs are queued when they become adjacent and dropped when popped stale.
 */

import { MinHeap } from './heap';

interface Piece {
  start: number;
  /** UTF-16 length; 0 once merged into its left neighbour. */
  length: number;
  prev: number;
  next: number;
}

function piecesOf(text: string): Piece[] {
  const pieces: Piece[] = [];
  for (let at = 0; at < text.length; ) {
    const length = text.codePointAt(at)! > 0xffff ? 2 : 1;
    pieces.push({ start: at, length, prev: pieces.length - 1, next: -1 });
    at += length;
  }
  for (let i = 0; i + 1 < pieces.length; i++) pieces[i].next = i + 1;
  return pieces;
}

function textOf(text: string, piece: Piece): string {
  return text.substr(piece.start, piece.length);
}

/** Merges the right piece into the left one and unlinks it. */
function mergeInto(pieces: Piece[], left: number, right: number): void {
  const l = pieces[left];
  const r = pieces[right];
  l.length += r.length;
  r.length = 0;
  l.next = r.next;
  if (r.next >= 0) pieces[r.next].prev = left;
}

function remaining(text: string, pieces: readonly Piece[]): string[] {
  const out: string[] = [];
  for (let i = pieces.length > 0 ? 0 : -1; i >= 0; i = pieces[i].next) out.push(textOf(text, pieces[i]));
  return out;
}

interface RankedPair {
  left: number;
  right: number;
  rank: number;
  text: string;
}

/** Byte-pair encoding of one word; `rankOf` gives a pair's merge rank or undefined. */
export function bpeMerge(word: string, rankOf: (left: string, right: string) => number | undefined): string[] {
  const pieces = piecesOf(word);
  const queue = new MinHeap<RankedPair>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
  const enqueue = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const leftText = textOf(word, pieces[left]);
    const rightText = textOf(word, pieces[right]);
    const rank = rankOf(leftText, rightText);
    if (rank !== undefined) queue.push({ left, right, rank, text: leftText + rightText });
  };
  for (let i = 1; i < pieces.length; i++) enqueue(i - 1, i);

  for (let pair = queue.pop(); pair; pair = queue.pop()) {
    const l = pieces[pair.left];
    const r = pieces[pair.right];
    // Stale: a side was merged away or has grown since the pair was queued.
    if (l.length === 0 || r.length === 0 || textOf(word, l) + textOf(word, r) !== pair.text) continue;
    mergeInto(pieces, pair.left, pair.right);
    enqueue(l.prev, pair.left);
    enqueue(pair.left, l.next);
  }
  return remaining(word, pieces);
}

interface ScoredPair {
  left: number;
  right: number;
  score: number;
  length: number;
}

/** SentencePiece-style merging of one text; `scoreOf` gives the score of a vocabulary token or undefined. */
export function spmMerge(text: string, scoreOf: (piece: string) => number | undefined): string[] {
  const pieces = piecesOf(text);
  const queue = new MinHeap<ScoredPair>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
  const enqueue = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const length = pieces[left].length + pieces[right].length;
    const score = scoreOf(text.substr(pieces[left].start, length));
    if (score !== undefined) queue.push({ left, right, score, length });
  };
  for (let i = 1; i < pieces.length; i++) enqueue(i - 1, i);

  for (let pair = queue.pop(); pair; pair = queue.pop()) {
    const l = pieces[pair.left];
    const r = pieces[pair.right];
    if (l.length === 0 || r.length === 0 || l.length + r.length !== pair.length) continue;
    mergeInto(pieces, pair.left, pair.right);
    enqueue(l.prev, pair.left);
    enqueue(pair.left, l.next);
  }
  return remaining(text, pieces);
}
