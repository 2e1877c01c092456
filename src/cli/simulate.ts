/**
 * `webmoe simulate`: replay routing traces through expert cache policies (and
 * a prefetch predictor) at a budget, and compare with Belady's optimum.
 */
import { BudgetError, budgetSlots, parseBudget } from '../experts/analysis/budget';
import { createPolicy, isPolicyName, POLICY_NAMES, type PolicyName } from '../experts/policies';
import { createPredictor, isPredictorName, PREDICTOR_NAMES, type PredictorName } from '../experts/predictors';
import { DEFAULT_EXPERT_POLICY, DEFAULT_HOST_WARM, DEFAULT_MIN_CONFIDENCE, DEFAULT_PREFETCH, MAX_HOST_WARM_LOOKAHEAD } from '../experts/scheduler';
import { simulate, type SimulationReport } from '../experts/analysis/simulator';
import { hottestKeys } from '../experts/analysis/stats';
import { commonShape, TraceFormatError, type RoutingTrace } from '../experts/trace';
import { readTracePaths } from '../experts/analysis/trace-node';
import { CliError, floatOption, intOption, parseCommand } from './args';

const HELP = `usage: webmoe simulate --trace <file|dir> --budget <fraction|size> [options]

  --trace <path>        routing trace file or directory (repeatable): webmoe
                        trace JSONL, gpt-oss router_data JSON or Mixtral rows
  --budget <b>          cache size: a fraction of all experts (0.25, 25%) or
                        bytes (512MB, 2GiB; needs the expert size)
  --policy <names>      ${POLICY_NAMES.join(', ')} (comma-separated to compare; default lru
                        when --prefetch is given)
  --prefetch <name>     ${PREDICTOR_NAMES.join(', ')}, none
                        (neither --policy nor --prefetch: the engine's default streaming,
                        ${DEFAULT_EXPERT_POLICY} with ${DEFAULT_PREFETCH.predictor} prefetch)
  --min-confidence <c>  load only guesses of at least this confidence, 0..1
                        (default ${DEFAULT_MIN_CONFIDENCE} with the engine's default, else 0)
  --lookahead <d>       positions (layers) ahead to prefetch (default 1)
  --width <m>           experts prefetched per position (default top_k)
  --half-life <n>       lfu-decay half-life in accesses
  --pin <n>             pin the n hottest experts (of --prior, else of the traces themselves)
  --prior <path>        earlier traces for priors: popularity, affinity, hot experts (repeatable)
  --expert-bytes <n>    bytes of one expert (default: the trace header's expert_bytes)
  --host-budget <b>     a host memory tier below the GPU cache, sized as --budget
                        (records held in least-recently-used order; every GPU load is a
                        host hit or a store read); --host-budget-mb N gives it in MiB
  --host-warm <d>       with a host tier and a predictor: warm guesses up to d positions
                        ahead into host memory (default ${DEFAULT_HOST_WARM.lookahead}, as the engine; 0: none)
  --json                print the full report as JSON`;

const OPTIONS = {
  trace: { type: 'string', multiple: true },
  budget: { type: 'string' },
  policy: { type: 'string' },
  prefetch: { type: 'string' },
  'min-confidence': { type: 'string' },
  lookahead: { type: 'string' },
  width: { type: 'string' },
  'half-life': { type: 'string' },
  pin: { type: 'string' },
  prior: { type: 'string', multiple: true },
  'expert-bytes': { type: 'string' },
  'host-budget': { type: 'string' },
  'host-budget-mb': { type: 'string' },
  'host-warm': { type: 'string' },
  json: { type: 'boolean' },
} as const;

interface SimulateRequest {
  policies: PolicyName[];
  predictor: PredictorName | undefined;
  lookahead: number;
  width: number | undefined;
  minConfidence: number;
  halfLife: number | undefined;
  pin: number;
  /** Host tier records (0: none) and warm lookahead. */
  hostCapacity: number;
  hostWarm: number;
}

function parsePolicies(value: unknown): PolicyName[] {
  const names = String(value ?? 'lru').split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!isPolicyName(n)) throw new CliError(`--policy must be among ${POLICY_NAMES.join(', ')}, got '${n}'`);
  return names as PolicyName[];
}

function parsePredictor(value: unknown): PredictorName | undefined {
  if (value === undefined || value === 'none') return undefined;
  const name = String(value);
  if (!isPredictorName(name)) throw new CliError(`--prefetch must be one of ${PREDICTOR_NAMES.join(', ')}, got '${name}'`);
  return name;
}

/** Runs every requested policy at one capacity. */
export function runSimulations(traces: RoutingTrace[], prior: RoutingTrace[] | undefined, capacity: number, expertBytes: number | undefined, req: SimulateRequest): SimulationReport[] {
  const shape = commonShape(traces);
  const pinned = req.pin > 0 ? hottestKeys(prior ?? traces, req.pin) : undefined;
  const predictorName = req.predictor;
  return req.policies.map((name, i) =>
    simulate(traces, {
      capacity,
      expertBytes,
      pinned,
      lookahead: req.lookahead,
      prefetchWidth: req.width,
      gate: { minConfidence: req.minConfidence },
      belady: i === 0,
      hostCapacity: req.hostCapacity,
      hostWarm: req.hostWarm > 0 ? { lookahead: req.hostWarm, minConfidence: req.minConfidence } : undefined,
      policy: (c) => createPolicy(name, c, { halfLifeAccesses: req.halfLife, shape }),
      predictor: predictorName ? () => createPredictor(predictorName, shape, { lookahead: Math.max(req.lookahead, req.hostCapacity > 0 ? req.hostWarm : 0), prior }) : undefined,
    }));
}

function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 2)} ${units[u]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

/** The human-readable report: traces, budget, one row per policy and Belady's. */
export function formatReports(traces: RoutingTrace[], reports: SimulationReport[], expertBytes: number | undefined, pinned: number, pinnedFromPrior: boolean): string {
  const shape = commonShape(traces);
  const first = reports[0];
  const tokens = first.tokens;
  const budget = `budget: ${first.capacity} of ${first.totalExperts} expert slots (${((100 * first.capacity) / first.totalExperts).toFixed(1)}%)` +
    (expertBytes ? `, ${formatBytes(first.capacity * expertBytes)} at ${expertBytes} bytes per expert` : '') +
    (pinned > 0 ? `, ${pinned} pinned (hottest of ${pinnedFromPrior ? 'the prior traces' : 'the replayed traces themselves: foreknowledge'})` : '');
  const host = first.hostCapacity > 0;
  const head = ['policy', 'prefetch', 'hit rate', 'stalls/token', 'loads/token', 'precision', 'recall', 'bytes moved'];
  if (host) head.push('host hit rate', 'store reads/token', 'store bytes/token');
  const rows = reports.map((r) => [
    r.policy,
    r.predictor ? `${r.predictor} d=${r.lookahead}` : '-',
    r.hitRate.toFixed(3),
    (r.misses / tokens).toFixed(1),
    ((r.misses + r.prefetchLoads + r.pinLoads) / tokens).toFixed(1),
    r.predictor ? r.precision.toFixed(3) : '-',
    r.predictor ? r.recall.toFixed(3) : '-',
    r.bytesMoved === undefined ? '-' : formatBytes(r.bytesMoved),
    ...(host ? [r.hostHitRate.toFixed(3), r.storeReadsPerToken.toFixed(1), r.storeBytesPerToken === undefined ? '-' : formatBytes(r.storeBytesPerToken)] : []),
  ]);
  if (first.belady) {
    const b = first.belady;
    rows.push(['belady', '(optimal, no prefetch)', b.hitRate.toFixed(3), (b.misses / tokens).toFixed(1), (b.misses / tokens).toFixed(1), '-', '-',
      expertBytes ? formatBytes(b.misses * expertBytes) : '-', ...(host ? ['-', '-', '-'] : [])]);
  }
  return [
    `traces: ${traces.length} (${tokens} tokens, ${shape.nLayers} layers x ${shape.nExperts} experts, top-${shape.topK}, ${first.accesses} accesses), each from a cold cache`,
    budget,
    ...(host ? [`host tier: ${first.hostCapacity} of ${first.totalExperts} expert records (${((100 * first.hostCapacity) / first.totalExperts).toFixed(1)}%)` +
      (expertBytes ? `, ${formatBytes(first.hostCapacity * expertBytes)}` : '') + `; host hit rate = GPU loads served from host memory / GPU loads`] : []),
    '',
    table([head, ...rows]),
  ].join('\n');
}

/**
 * The engine's default predictor for replay. A pre-gate needs the hidden
 * states, which real traces do not carry: affinity stands in for it.
 */
function defaultPredictor(): PredictorName | undefined {
  const name = DEFAULT_PREFETCH.predictor;
  if (name === 'none') return undefined;
  return name === 'pregate' ? 'affinity' : name;
}

export async function simulateCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, OPTIONS, HELP);
  if (!parsed) return;
  const v = parsed.values as Record<string, unknown>;
  const tracePaths = (v.trace as string[] | undefined) ?? [];
  if (tracePaths.length === 0) throw new CliError(`--trace is required\n\n${HELP}`);
  if (v.budget === undefined) throw new CliError(`--budget is required\n\n${HELP}`);
  // Neither chosen: replay what the engine does by default. Its predictor
  // needs no pre-gate guesses (real traces carry none), so it replays as is.
  const engineDefault = v.policy === undefined && v.prefetch === undefined;
  const req: SimulateRequest = {
    policies: engineDefault ? [DEFAULT_EXPERT_POLICY] : parsePolicies(v.policy),
    predictor: engineDefault ? defaultPredictor() : parsePredictor(v.prefetch),
    lookahead: intOption(v.lookahead, 'lookahead') ?? (engineDefault ? DEFAULT_PREFETCH.lookahead ?? 1 : 1),
    width: intOption(v.width, 'width'),
    minConfidence: floatOption(v['min-confidence'], 'min-confidence') ?? (engineDefault ? DEFAULT_PREFETCH.minConfidence ?? DEFAULT_MIN_CONFIDENCE : 0),
    halfLife: floatOption(v['half-life'], 'half-life'),
    pin: intOption(v.pin, 'pin') ?? 0,
    hostCapacity: 0,
    hostWarm: intOption(v['host-warm'], 'host-warm') ?? DEFAULT_HOST_WARM.lookahead,
  };
  if (req.hostWarm > MAX_HOST_WARM_LOOKAHEAD) throw new CliError(`--host-warm must be in 0..${MAX_HOST_WARM_LOOKAHEAD}`);
  if (v['host-budget'] !== undefined && v['host-budget-mb'] !== undefined) throw new CliError('give --host-budget or --host-budget-mb, not both');
  const hostMb = floatOption(v['host-budget-mb'], 'host-budget-mb');
  if (hostMb !== undefined && hostMb < 0) throw new CliError(`--host-budget-mb must be >= 0, got '${String(v['host-budget-mb'])}'`);
  if (req.lookahead < 1) throw new CliError('--lookahead must be at least 1');
  if (!(req.minConfidence >= 0 && req.minConfidence <= 1)) throw new CliError('--min-confidence must be in 0..1');
  if (req.halfLife !== undefined && !(req.halfLife > 0)) throw new CliError('--half-life must be positive');
  try {
    const traces = await readTracePaths(tracePaths);
    const priorPaths = v.prior as string[] | undefined;
    const prior = priorPaths?.length ? await readTracePaths(priorPaths) : undefined;
    const shape = commonShape(prior ? [...traces, ...prior] : traces);
    const expertBytes = intOption(v['expert-bytes'], 'expert-bytes') ?? traces[0].expertBytes;
    const capacity = budgetSlots(parseBudget(String(v.budget)), shape.nLayers * shape.nExperts, expertBytes);
    if (req.pin > capacity) throw new CliError(`--pin ${req.pin} exceeds the ${capacity} slots of the budget`);
    const hostBudget = hostMb !== undefined ? `${hostMb}MiB` : (v['host-budget'] as string | undefined);
    if (hostBudget !== undefined) req.hostCapacity = budgetSlots(parseBudget(hostBudget), shape.nLayers * shape.nExperts, expertBytes);
    const reports = runSimulations(traces, prior, capacity, expertBytes, req);
    if (v.json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
    else {
      if (engineDefault) {
        console.log(`the engine's default streaming: ${DEFAULT_EXPERT_POLICY} policy, ${req.predictor} prefetch ${req.lookahead} layer(s) ahead, ` +
          `guesses of confidence ${req.minConfidence} or more` +
          (DEFAULT_PREFETCH.predictor === 'pregate' ? ' (affinity in place of the pre-gate: traces carry no pre-gate guesses)' : '') +
          ' (choose with --policy, --prefetch, --min-confidence)');
      }
      console.log(formatReports(traces, reports, expertBytes, req.pin, prior !== undefined));
    }
  } catch (err) {
    if (err instanceof BudgetError || err instanceof TraceFormatError) throw new CliError(err.message);
    throw err;
  }
}
