/**
 * Routing traces: which experts a MoE model's routers chose, per generated
 * token and layer, with their weights. One RoutingTrace is one generation
 * (one request), replayed from a cold cache.
 *
 * File format ("webmoe routing trace", JSON Lines, UTF-8). A file holds one
 * or more traces; each is a header line followed by one line per token:
 *
 *   {"webmoe_trace":1,"name":"...","n_layers":24,"n_experts":32,"top_k":4,
 *    "expert_bytes":13236480,"layer_aligned":[true,...]}
 *   {"experts":[[31,21,22,6],...],"weights":[[0.48,0.18,0.17,0.16],...]}
 *
 * `experts[l]` lists layer l's selected ids, best first, and `weights[l]` their
 * routing weights. Optional: `expert_bytes` (bytes of one expert's weights),
 * `layer_aligned` (false for a layer whose rows may belong to other tokens, so
 * cross-layer statistics skip it) and, per token, `predicted` (`predicted[l]`:
 * the ids a pre-gate guessed for layer l before its router ran, or null).
 */

export interface TokenRouting {
  /** [layer][rank]: expert ids, best first. */
  experts: number[][];
  /** [layer][rank]: routing weights of those experts. */
  weights: number[][];
  /** [layer]: ids a pre-gate predicted for that layer, where the trace has them. */
  predicted?: (number[] | null)[];
}

export interface RoutingTrace {
  name: string;
  nLayers: number;
  nExperts: number;
  topK: number;
  /** Bytes of one expert's weights, when the trace knows its model file. */
  expertBytes?: number;
  /** Per layer: whether its token order is trustworthy across layers (default: all true). */
  layerAligned?: boolean[];
  tokens: TokenRouting[];
}

export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';
}

export const TRACE_FORMAT_VERSION = 1;

/** Throws TraceFormatError naming the first inconsistency of the trace. */
export function validateTrace(trace: RoutingTrace): void {
  const { nLayers, nExperts, topK } = trace;
  const where = `trace '${trace.name}'`;
  for (const [field, v] of [['nLayers', nLayers], ['nExperts', nExperts], ['topK', topK]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new TraceFormatError(`${where}: ${field} must be a positive integer, got ${v}`);
  }
  if (topK > nExperts) throw new TraceFormatError(`${where}: topK ${topK} exceeds nExperts ${nExperts}`);
  if (trace.layerAligned && trace.layerAligned.length !== nLayers) {
    throw new TraceFormatError(`${where}: layerAligned has ${trace.layerAligned.length} entries for ${nLayers} layers`);
  }
  trace.tokens.forEach((token, t) => validateToken(token, trace, `${where} token ${t}`));
}

function validateToken(token: TokenRouting, trace: RoutingTrace, where: string): void {
  if (!Array.isArray(token.experts) || token.experts.length !== trace.nLayers) {
    throw new TraceFormatError(`${where}: expected experts for ${trace.nLayers} layers`);
  }
  if (!Array.isArray(token.weights) || token.weights.length !== trace.nLayers) {
    throw new TraceFormatError(`${where}: expected weights for ${trace.nLayers} layers`);
  }
  for (let l = 0; l < trace.nLayers; l++) {
    checkIds(token.experts[l], trace, `${where} layer ${l}`, 1);
    const weights = token.weights[l];
    if (!Array.isArray(weights) || weights.length !== token.experts[l].length || !weights.every(Number.isFinite)) {
      throw new TraceFormatError(`${where} layer ${l}: weights must be ${token.experts[l].length} finite numbers`);
    }
    const predicted = token.predicted?.[l];
    if (predicted) checkIds(predicted, trace, `${where} layer ${l} predicted`, 0);
  }
}

function checkIds(ids: unknown, trace: RoutingTrace, where: string, minCount: number): void {
  if (!Array.isArray(ids) || ids.length < minCount || ids.length > trace.nExperts) {
    throw new TraceFormatError(`${where}: expected a list of expert ids`);
  }
  if (minCount > 0 && ids.length > trace.topK) throw new TraceFormatError(`${where}: ${ids.length} experts exceed top_k ${trace.topK}`);
  const seen = new Set<number>();
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= trace.nExperts) throw new TraceFormatError(`${where}: expert id ${String(id)} is not in 0..${trace.nExperts - 1}`);
    if (seen.has(id)) throw new TraceFormatError(`${where}: expert ${id} selected twice`);
    seen.add(id);
  }
}

/** Serialises traces in the webmoe JSON Lines format (ends with a newline). */
export function writeTraces(traces: readonly RoutingTrace[]): string {
  const lines: string[] = [];
  for (const trace of traces) {
    validateTrace(trace);
    const header: Record<string, unknown> = {
      webmoe_trace: TRACE_FORMAT_VERSION, name: trace.name,
      n_layers: trace.nLayers, n_experts: trace.nExperts, top_k: trace.topK,
    };
    if (trace.expertBytes !== undefined) header.expert_bytes = trace.expertBytes;
    if (trace.layerAligned) header.layer_aligned = trace.layerAligned;
    lines.push(JSON.stringify(header));
    for (const token of trace.tokens) {
      const row: Record<string, unknown> = { experts: token.experts, weights: token.weights };
      if (token.predicted) row.predicted = token.predicted;
      lines.push(JSON.stringify(row));
    }
  }
  return lines.map((l) => l + '\n').join('');
}

/** True when the text starts like a webmoe trace file. */
export function isWebmoeTraceText(text: string): boolean {
  return /^\s*\{\s*"webmoe_trace"\s*:/.test(text);
}

/** Parses a webmoe JSON Lines trace file; errors name the line. */
export function readTraces(text: string): RoutingTrace[] {
  const traces: RoutingTrace[] = [];
  let current: RoutingTrace | undefined;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch (cause) {
      throw new TraceFormatError(`line ${i + 1}: not JSON: ${(cause as Error).message}`);
    }
    if ('webmoe_trace' in row) {
      current = traceFromHeader(row, i + 1);
      traces.push(current);
    } else {
      if (!current) throw new TraceFormatError(`line ${i + 1}: token row before any trace header`);
      const token: TokenRouting = { experts: row.experts as number[][], weights: row.weights as number[][] };
      if (row.predicted !== undefined) token.predicted = row.predicted as (number[] | null)[];
      validateToken(token, current, `line ${i + 1}`);
      current.tokens.push(token);
    }
  });
  return traces;
}

function traceFromHeader(row: Record<string, unknown>, lineNo: number): RoutingTrace {
  if (row.webmoe_trace !== TRACE_FORMAT_VERSION) {
    throw new TraceFormatError(`line ${lineNo}: trace format version ${String(row.webmoe_trace)} is not supported (expected ${TRACE_FORMAT_VERSION})`);
  }
  const trace: RoutingTrace = {
    name: typeof row.name === 'string' ? row.name : `trace@${lineNo}`,
    nLayers: row.n_layers as number, nExperts: row.n_experts as number, topK: row.top_k as number,
    tokens: [],
  };
  if (row.expert_bytes !== undefined) {
    if (!Number.isInteger(row.expert_bytes) || (row.expert_bytes as number) <= 0) {
      throw new TraceFormatError(`line ${lineNo}: expert_bytes must be a positive integer`);
    }
    trace.expertBytes = row.expert_bytes as number;
  }
  if (row.layer_aligned !== undefined) trace.layerAligned = row.layer_aligned as boolean[];
  try {
    validateTrace(trace);
  } catch (err) {
    throw new TraceFormatError(`line ${lineNo}: ${(err as Error).message}`);
  }
  return trace;
}

/** Every demand access of the trace in replay order (token by token, layer by layer), as keys. */
export function accessSequence(trace: RoutingTrace): Int32Array {
  const keys = new Int32Array(countAccesses(trace));
  let i = 0;
  for (const token of trace.tokens) {
    for (let l = 0; l < trace.nLayers; l++) {
      for (const e of token.experts[l]) keys[i++] = l * trace.nExperts + e;
    }
  }
  return keys;
}

export function countAccesses(trace: RoutingTrace): number {
  let n = 0;
  for (const token of trace.tokens) for (const ids of token.experts) n += ids.length;
  return n;
}

/** Traces of one model can be pooled; throws when their shapes differ. */
export function commonShape(traces: readonly RoutingTrace[]): { nLayers: number; nExperts: number; topK: number } {
  if (traces.length === 0) throw new TraceFormatError('no traces');
  const [first] = traces;
  for (const t of traces) {
    if (t.nLayers !== first.nLayers || t.nExperts !== first.nExperts || t.topK !== first.topK) {
      throw new TraceFormatError(`traces '${first.name}' and '${t.name}' come from different model shapes`);
    }
  }
  return { nLayers: first.nLayers, nExperts: first.nExperts, topK: first.topK };
}
