/**
 * Converters from published routing-trace formats to RoutingTrace, and
 * detection of which format a text is in:
 *
 * - "gpt-oss": one JSON document per generation (GPT-OSS-MoE-ExpertFingerprinting)
 *   with `router_data: [{"token_<pos>": {"layer_<l>": {selected_experts,
 *   selected_probs}}}]`, one entry per generated token, in order.
 * - "mixtral-rows": JSON Lines (speculative-moe collector), one row per
 *   (problem, layer, token): `{problem_id, layer, token_idx, experts,
 *   gating_probs}`. The collector dropped rows of exact [0.5, 0.5] ties and
 *   then numbered each layer's rows 0, 1, 2, ..., so after a dropped row the
 *   rest of that layer is shifted by one token and the last tokens lack that
 *   layer. We keep only tokens present at every layer and mark a layer
 *   unaligned (layerAligned false) when its row count falls short of the
 *   problem's maximum, so cross-layer statistics can leave it out.
 */

import { TraceFormatError, isWebmoeTraceText, readTraces, validateTrace, type RoutingTrace, type TokenRouting } from '../trace';

export type TraceFormat = 'webmoe' | 'gpt-oss' | 'mixtral-rows';

export interface ImportOptions {
  /** Experts per layer; the files do not record it. Default: see each converter. */
  nExperts?: number;
}

/** Which format a trace text is in; throws TraceFormatError when none fits. */
export function detectTraceFormat(text: string): TraceFormat {
  if (isWebmoeTraceText(text)) return 'webmoe';
  const head = text.slice(0, 4096);
  const firstLine = head.split('\n', 1)[0];
  if (/"problem_id"/.test(firstLine) && /"gating_probs"/.test(firstLine)) return 'mixtral-rows';
  if (/"router_data"/.test(text)) return 'gpt-oss';
  throw new TraceFormatError('unrecognised trace format (expected a webmoe trace, a gpt-oss router_data JSON or Mixtral routing rows)');
}

/** Parses any supported format; `sourceName` (usually the file name) names the traces. */
export function parseTraceText(text: string, sourceName: string, options: ImportOptions = {}): RoutingTrace[] {
  switch (detectTraceFormat(text)) {
    case 'webmoe':
      return readTraces(text);
    case 'gpt-oss':
      return [parseGptOssTrace(text, sourceName, options)];
    case 'mixtral-rows':
      return parseMixtralRows(text, sourceName, options);
  }
}

/** gpt-oss-20b has 24 layers of 32 experts, gpt-oss-120b 36 layers of 128. */
const GPT_OSS_EXPERTS_BY_LAYERS: Record<number, number> = { 24: 32, 36: 128 };

interface GptOssLayer {
  selected_experts: number[];
  selected_probs: number[];
}

/** One gpt-oss generation. nExperts defaults from the layer count (20b or 120b). */
export function parseGptOssTrace(text: string, sourceName: string, options: ImportOptions = {}): RoutingTrace {
  const doc = JSON.parse(text) as { router_data?: unknown };
  if (!Array.isArray(doc.router_data) || doc.router_data.length === 0) {
    throw new TraceFormatError(`${sourceName}: router_data must be a non-empty array`);
  }
  const steps = doc.router_data.map((entry, t) => {
    const values = Object.values(entry as Record<string, Record<string, GptOssLayer>>);
    if (values.length !== 1) throw new TraceFormatError(`${sourceName}: router_data[${t}] must hold one token entry`);
    return values[0];
  });
  const nLayers = Object.keys(steps[0]).length;
  let maxId = 0;
  let topK = 0;
  const tokens: TokenRouting[] = steps.map((step, t) => {
    const token: TokenRouting = { experts: [], weights: [] };
    for (let l = 0; l < nLayers; l++) {
      const layer = step[`layer_${l}`];
      if (!layer) throw new TraceFormatError(`${sourceName}: router_data[${t}] has no layer_${l}`);
      token.experts.push(layer.selected_experts);
      token.weights.push(layer.selected_probs);
      maxId = Math.max(maxId, ...layer.selected_experts);
      topK = Math.max(topK, layer.selected_experts.length);
    }
    return token;
  });
  const nExperts = options.nExperts ?? GPT_OSS_EXPERTS_BY_LAYERS[nLayers] ?? maxId + 1;
  const trace: RoutingTrace = { name: sourceName, nLayers, nExperts, topK, tokens };
  validateTrace(trace);
  return trace;
}

interface MixtralRow {
  problem_id: number;
  layer: number;
  token_idx: number;
  experts: number[];
  gating_probs: number[];
}

/** Mixtral-8x7B has 8 experts per layer. */
const MIXTRAL_EXPERTS = 8;

/** One trace per problem, in order of first appearance; see the module note on dropped rows. */
export function parseMixtralRows(text: string, sourceName: string, options: ImportOptions = {}): RoutingTrace[] {
  const problems = new Map<number, MixtralRow[]>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: MixtralRow;
    try {
      row = JSON.parse(line) as MixtralRow;
    } catch (cause) {
      throw new TraceFormatError(`${sourceName} line ${i + 1}: not JSON: ${(cause as Error).message}`);
    }
    if (!Number.isInteger(row.layer) || !Number.isInteger(row.token_idx) || row.layer < 0 || row.token_idx < 0 || !Array.isArray(row.experts)) {
      throw new TraceFormatError(`${sourceName} line ${i + 1}: expected layer, token_idx and experts`);
    }
    let rows = problems.get(row.problem_id);
    if (!rows) problems.set(row.problem_id, (rows = []));
    rows.push(row);
  });
  if (problems.size === 0) throw new TraceFormatError(`${sourceName}: no routing rows`);
  let nLayers = 0;
  let topK = 0;
  let nExperts = MIXTRAL_EXPERTS;
  for (const row of [...problems.values()].flat()) {
    nLayers = Math.max(nLayers, row.layer + 1);
    topK = Math.max(topK, row.experts.length);
    for (const e of row.experts) nExperts = Math.max(nExperts, e + 1);
  }
  nExperts = options.nExperts ?? nExperts;
  return [...problems].map(([problemId, rows]) => mixtralProblemTrace(rows, `${sourceName}#problem${problemId}`, nLayers, nExperts, topK));
}

function mixtralProblemTrace(rows: MixtralRow[], name: string, nLayers: number, nExperts: number, topK: number): RoutingTrace {
  // grid[token][layer]: the row at that position, if the collector kept one
  const grid: (MixtralRow | undefined)[][] = [];
  const rowsPerLayer = new Array<number>(nLayers).fill(0);
  for (const row of rows) {
    const byLayer = (grid[row.token_idx] ??= new Array<MixtralRow | undefined>(nLayers));
    if (byLayer[row.layer]) throw new TraceFormatError(`${name}: two rows for token ${row.token_idx} layer ${row.layer}`);
    byLayer[row.layer] = row;
    rowsPerLayer[row.layer]++;
  }
  const maxRows = Math.max(...rowsPerLayer);
  const tokens: TokenRouting[] = [];
  for (const byLayer of grid) {
    if (!byLayer || byLayer.length < nLayers) continue;
    const complete = Array.from({ length: nLayers }, (_, l) => byLayer[l]);
    if (complete.some((r) => r === undefined)) continue;
    tokens.push({ experts: complete.map((r) => r!.experts), weights: complete.map((r) => r!.gating_probs) });
  }
  const trace: RoutingTrace = {
    name, nLayers, nExperts, topK, tokens,
    layerAligned: rowsPerLayer.map((n) => n === maxRows),
  };
  validateTrace(trace);
  return trace;
}
