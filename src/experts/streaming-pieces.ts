/**
 * Cutting a batch whose experts do not fit the cache at once into pieces of
 * consecutive tokens, and routing masked to one piece: the FFN runs once per
 * piece with every other token routed nowhere, so each token's weighted sum
 * is computed exactly as when all experts are resident.
 */

import { MASKED_EXPERT_ID } from '../kernels/router';

/** Tokens of one piece of a batch and every routed id of theirs (with repeats, without masked pairs), token-major. */
export interface BatchPiece {
  tokens: number[];
  experts: number[];
}

/**
 * Cuts a batch into runs of consecutive tokens whose distinct experts number
 * at most `slots` (each token alone needs at most k, which always fits).
 * Pairs a routing knob skipped (MASKED_EXPERT_ID) need no expert.
 */
export function planPieces(ids: Uint32Array, tokens: number, topK: number, slots: number): BatchPiece[] {
  const pieces: BatchPiece[] = [];
  let current: BatchPiece = { tokens: [], experts: [] };
  let distinct = new Set<number>();
  for (let t = 0; t < tokens; t++) {
    const mine = Array.from(ids.subarray(t * topK, (t + 1) * topK)).filter((id) => id !== MASKED_EXPERT_ID);
    const union = new Set([...distinct, ...mine]);
    if (union.size > slots && current.tokens.length > 0) {
      pieces.push(current);
      current = { tokens: [], experts: [] };
      distinct = new Set(mine);
    } else {
      distinct = union;
    }
    current.tokens.push(t);
    current.experts.push(...mine);
  }
  if (current.tokens.length > 0) pieces.push(current);
  return pieces;
}

/** Routing words ([tokens, 2k]: ids then f32 weights) with every token outside `keep` routed nowhere. */
export function maskRouting(words: Uint32Array, tokens: number, topK: number, keep: readonly number[]): Uint32Array {
  const masked = new Uint32Array(words.subarray(0, tokens * 2 * topK));
  const kept = new Set(keep);
  for (let t = 0; t < tokens; t++) {
    if (kept.has(t)) continue;
    masked.fill(MASKED_EXPERT_ID, 2 * topK * t, 2 * topK * t + topK);
    masked.fill(0, 2 * topK * t + topK, 2 * topK * (t + 1));
  }
  return masked;
}
