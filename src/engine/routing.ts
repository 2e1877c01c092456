/**
 * Per-token expert routing as the engine reports it while generating: the
 * ids each token's routers chose and which experts sit in GPU memory. Plain
 * data (ids only, no weights) so it crosses the worker boundary cheaply;
 * shared by the engine, the service and the API client, which imports only
 * this small file at run time.
 */

/** One token run through the model, with its routed experts. */
export interface RoutedToken {
  /** Its position in the sequence (KV cache index). */
  position: number;
  /** [MoE layer][rank]: routed expert ids, best first. */
  experts: number[][];
}

/** Routing since the previous delta: the tokens run, in order, and the residency after them. */
export interface RoutingDelta {
  tokens: RoutedToken[];
  /** Routed experts resident in GPU memory: per MoE layer, ascending ids. */
  resident: number[][];
}

/** `next` added after `pending` (undefined: none yet): tokens in order, the newer residency. */
export function appendRouting(pending: RoutingDelta | undefined, next: RoutingDelta): RoutingDelta {
  if (!pending) return { tokens: [...next.tokens], resident: next.resident };
  for (const token of next.tokens) pending.tokens.push(token); // no spread: a long prompt's tokens would all be arguments
  pending.resident = next.resident;
  return pending;
}
