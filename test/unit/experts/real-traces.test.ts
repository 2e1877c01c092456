/**
 * The shared routing traces of Mixtral-8x7B and gpt-oss-20b (read from
 * ../shared/traces at run time): their loading, the statistics and the
 * measured facts their README states, and what prefetch adds.
 *
 * How the README's cache facts are set up, reproduced here exactly: one cache
 * over all (layer, expert) pairs, accessed token by token and layer by layer;
 * each generation (a gpt-oss file, a Mixtral problem) starts cold; hits are
 * pooled over generations; Mixtral keeps only tokens routed at all 32 layers.
 */
import { describe, expect, it } from 'vitest';
import { createPolicy, type PolicyName } from '../../../src/experts/policies';
import { createPredictor, type PredictorName } from '../../../src/experts/predictors';
import { simulate, type SimulationReport } from '../../../src/experts/analysis/simulator';
import { randomBaselineStats, traceStats, type TraceStats } from '../../../src/experts/analysis/stats';
import type { RoutingTrace } from '../../../src/experts/trace';
import { loadFamily } from './shared-traces';

// Loaded once, on first use inside a test: missing traces fail every test that needs them.
let loading: Promise<{ gptOss: RoutingTrace[]; mixtral: RoutingTrace[] }> | undefined;
function shared() {
  loading ??= Promise.all([loadFamily('gpt-oss-20b'), loadFamily('mixtral-8x7b')]).then(([gptOss, mixtral]) => ({ gptOss, mixtral }));
  return loading;
}

function run(traces: RoutingTrace[], budget: number, policy: PolicyName, predictor?: PredictorName, lookahead = 1): SimulationReport {
  const capacity = Math.floor(budget * traces[0].nLayers * traces[0].nExperts);
  return simulate(traces, {
    capacity, lookahead,
    policy: (c) => createPolicy(policy, c),
    predictor: predictor ? () => createPredictor(predictor, traces[0], { lookahead }) : undefined,
  });
}

const three = (x: number) => x.toFixed(3);
const rounded = (s: TraceStats) => ({ tokens: s.tokens, reuse: three(s.reuse), affinity: three(s.affinity), top10: three(s.top10) });

describe('loading the shared traces', () => {
  it('reads six gpt-oss generations with every layer of every routed token', async () => {
    const { gptOss } = await shared();
    expect(gptOss.map((t) => t.tokens.length)).toEqual([330, 336, 206, 355, 152, 208]);
    expect(gptOss[0]).toMatchObject({ name: 'gpt-oss-20b/gpqa_diamond_Genetics.json', nLayers: 24, nExperts: 32, topK: 4 });
    expect(gptOss[0].tokens[0].experts[0]).toEqual([31, 21, 22, 6]);
  }, 60_000);

  it('reads four Mixtral problems, keeping the tokens routed at all 32 layers', async () => {
    const { mixtral } = await shared();
    expect(mixtral.map((t) => t.name)).toEqual([
      'mixtral-8x7b/gsm8k_2_routing.jsonl#problem0', 'mixtral-8x7b/gsm8k_2_routing.jsonl#problem1',
      'mixtral-8x7b/humaneval_2_routing.jsonl#problem0', 'mixtral-8x7b/humaneval_2_routing.jsonl#problem1',
    ]);
    // of 168, 79, 83 and 255 tokens, the last 1 to 3 lack a layer whose tied rows were dropped
    expect(mixtral.map((t) => t.tokens.length)).toEqual([166, 78, 81, 252]);
    expect(mixtral[0]).toMatchObject({ nLayers: 32, nExperts: 8, topK: 2 });
    expect(mixtral[0].tokens[0].experts[0]).toEqual([7, 0]);
  });

  it('marks Mixtral layers with dropped rows unaligned: 60 of 124 adjacent pairs stay usable', async () => {
    const { mixtral } = await shared();
    const alignedPairs = mixtral.reduce((n, t) => n + t.layerAligned!.slice(1).filter((ok, l) => ok && t.layerAligned![l]).length, 0);
    expect(alignedPairs).toBe(60);
  });
});

describe('the README statistics, recomputed', () => {
  it('match the gpt-oss rows', async () => {
    const { gptOss } = await shared();
    const rows = gptOss.map((t) => rounded(traceStats([t])));
    expect(rows).toEqual([
      { tokens: 330, reuse: '0.404', affinity: '0.751', top10: '0.315' },
      { tokens: 336, reuse: '0.417', affinity: '0.776', top10: '0.346' },
      { tokens: 206, reuse: '0.403', affinity: '0.765', top10: '0.318' },
      { tokens: 355, reuse: '0.414', affinity: '0.744', top10: '0.323' },
      { tokens: 152, reuse: '0.478', affinity: '0.830', top10: '0.404' },
      { tokens: 208, reuse: '0.460', affinity: '0.829', top10: '0.373' },
    ]);
    expect(rounded(traceStats(gptOss))).toEqual({ tokens: 1587, reuse: '0.423', affinity: '0.627', top10: '0.225' });
  });

  it('match the Mixtral rows (per file, both problems pooled)', async () => {
    const { mixtral } = await shared();
    expect(rounded(traceStats(mixtral.slice(0, 2)))).toEqual({ tokens: 244, reuse: '0.344', affinity: '0.570', top10: '0.152' });
    expect(rounded(traceStats(mixtral.slice(2)))).toEqual({ tokens: 333, reuse: '0.397', affinity: '0.553', top10: '0.147' });
    expect(rounded(traceStats(mixtral))).toEqual({ tokens: 577, reuse: '0.375', affinity: '0.525', top10: '0.134' });
  });

  it('random routing of the same shape gives the README baselines (within sampling noise)', async () => {
    const { gptOss, mixtral } = await shared();
    const g = randomBaselineStats(gptOss, 10);
    const m = randomBaselineStats(mixtral, 10);
    for (const [got, want] of [[g.reuse, 0.125], [g.affinity, 0.177], [g.top10, 0.112], [m.reuse, 0.25], [m.affinity, 0.353], [m.top10, 0.111]]) {
      expect(Math.abs(got - want)).toBeLessThan(0.006);
    }
  }, 30_000);
});

describe('the README cache facts, reproduced to 3 decimals', () => {
  it('at 25% of all experts: LRU 0.594 (gpt-oss) and 0.317 (Mixtral); Belady 0.810 and 0.600', async () => {
    const { gptOss, mixtral } = await shared();
    const g = run(gptOss, 0.25, 'lru');
    const m = run(mixtral, 0.25, 'lru');
    expect([g.capacity, m.capacity]).toEqual([192, 64]);
    expect([three(g.hitRate), three(g.belady!.hitRate)]).toEqual(['0.594', '0.810']);
    expect([three(m.hitRate), three(m.belady!.hitRate)]).toEqual(['0.317', '0.600']);
  });

  it('at 12.5%, a global LRU over Mixtral hits nothing while Belady hits 0.393', async () => {
    const { mixtral } = await shared();
    const m = run(mixtral, 0.125, 'lru');
    expect(m.capacity).toBe(32);
    expect(m.hits).toBe(0);
    expect(three(m.belady!.hitRate)).toBe('0.393');
  });
});

describe('prefetch on the real traces', () => {
  it('with the oracle predictor improves the hit rate at both budgets', async () => {
    const { gptOss, mixtral } = await shared();
    for (const [traces, budget] of [[gptOss, 0.25], [mixtral, 0.125]] as const) {
      const plain = run(traces, budget, 'lru');
      const oracle = run(traces, budget, 'lru', 'oracle');
      expect(oracle.hitRate).toBeGreaterThan(plain.hitRate + 0.2);
      expect(oracle.precision).toBe(1);
    }
  });

  it('with online inter-layer affinity beats LRU alone on gpt-oss', async () => {
    const { gptOss } = await shared();
    const lines: string[] = [];
    for (const budget of [0.25, 0.125]) {
      const plain = run(gptOss, budget, 'lru');
      const affinity = run(gptOss, budget, 'lru', 'affinity');
      lines.push(`gpt-oss ${budget * 100}%: LRU ${three(plain.hitRate)}, LRU + affinity (d=1) ${three(affinity.hitRate)} ` +
        `(precision ${three(affinity.precision)}, recall ${three(affinity.recall)}), Belady ${three(plain.belady!.hitRate)}`);
      expect(affinity.hitRate).toBeGreaterThan(plain.hitRate + 0.1);
      expect(affinity.precision).toBeGreaterThan(0.5);
    }
    console.log(lines.join('\n'));
  });
});
