/** Predictors of coming experts: affinity, popularity, oracle and the pre-gating hook. */
import { describe, expect, it } from 'vitest';
import {
  AffinityPredictor, createPredictor, OraclePredictor, PopularityPredictor, positionDistance,
  PreGatePredictor, TracePreGate, type ExpertPredictor,
} from '../../../src/experts/predictors';
import { TraceFormatError, type RoutingTrace } from '../../../src/experts/trace';

/**
 * 3 layers, 4 experts, top-1. Even tokens route 0 → 2 → 0, odd tokens 1 → 3 → 1,
 * so layer 1 follows layer 0 (e → e + 2) and the next token's layer 0 flips.
 */
function patternTrace(nTokens: number): RoutingTrace {
  return {
    name: 'pattern', nLayers: 3, nExperts: 4, topK: 1,
    tokens: Array.from({ length: nTokens }, (_, t) => {
      const e = t % 2;
      return { experts: [[e], [e + 2], [e]], weights: [[1], [1], [1]] };
    }),
  };
}

/** Feeds the predictor every routing of the trace up to and including (token, layer). */
function replayUpTo(p: ExpertPredictor, trace: RoutingTrace, token: number, layer: number): void {
  p.begin(trace);
  for (let t = 0; t <= token; t++) {
    for (let l = 0; l < trace.nLayers && (t < token || l <= layer); l++) p.observe(t, l, trace.tokens[t].experts[l]);
  }
}

describe('positionDistance', () => {
  it('counts positions in replay order across tokens', () => {
    expect(positionDistance({ token: 2, layer: 1 }, { token: 2, layer: 3 }, 4)).toBe(2);
    expect(positionDistance({ token: 2, layer: 3 }, { token: 3, layer: 0 }, 4)).toBe(1);
  });
});

describe('AffinityPredictor', () => {
  const trace = patternTrace(8);

  it('predicts nothing before it has seen anything', () => {
    const p = new AffinityPredictor(trace, 2);
    p.begin(trace);
    expect(p.predict({ token: 0, layer: 0 }, { token: 0, layer: 1 }, 2)).toEqual([]);
  });

  it('learns P(next layer | this layer) online and predicts the most likely first', () => {
    const p = new AffinityPredictor(trace, 2);
    replayUpTo(p, trace, 4, 0); // token 4 routed 0 at layer 0
    expect(p.predict({ token: 4, layer: 0 }, { token: 4, layer: 1 }, 1)).toEqual([2]);
    // two layers ahead: layer 2 repeats layer 0's expert
    expect(p.predict({ token: 4, layer: 0 }, { token: 4, layer: 2 }, 1)).toEqual([0]);
  });

  it('learns across the token boundary: the last layer predicts the next token\'s first', () => {
    const p = new AffinityPredictor(trace, 1);
    replayUpTo(p, trace, 5, 2); // token 5 (odd) ended with expert 1
    expect(p.predict({ token: 5, layer: 2 }, { token: 6, layer: 0 }, 1)).toEqual([0]);
  });

  it('falls back to the layer\'s popularity beyond its furthest distance, then fills with it', () => {
    const p = new AffinityPredictor(trace, 1);
    replayUpTo(p, trace, 4, 0);
    // layer 2 has seen 0 (tokens 0, 2) and 1 (tokens 1, 3) twice each: the tie goes to the smaller id
    expect(p.predict({ token: 4, layer: 0 }, { token: 4, layer: 2 }, 2)).toEqual([0, 1]);
    // after an affinity prediction of one id, popularity adds the rest with evidence
    expect(p.predict({ token: 4, layer: 0 }, { token: 4, layer: 1 }, 4)).toEqual([2, 3]);
  });

  it('can start from earlier traces (priors) and forgets only the recent history at begin()', () => {
    const p = createPredictor('affinity', trace, { lookahead: 1, prior: [patternTrace(6)] });
    p.begin(trace);
    p.observe(0, 0, [1]);
    expect(p.predict({ token: 0, layer: 0 }, { token: 0, layer: 1 }, 1)).toEqual([3]);
  });
});

describe('PopularityPredictor', () => {
  it('ranks a layer\'s experts by how often they were routed, ties to the smaller id', () => {
    const p = new PopularityPredictor({ nLayers: 2, nExperts: 4 });
    p.observe(0, 1, [3, 2]);
    p.observe(1, 1, [3, 1]);
    expect(p.predict({ token: 1, layer: 1 }, { token: 2, layer: 1 }, 3)).toEqual([3, 1, 2]);
    expect(p.predict({ token: 1, layer: 1 }, { token: 2, layer: 0 }, 3)).toEqual([]);
  });

  it('takes priors from earlier traces and may stop learning online', () => {
    const p = new PopularityPredictor({ nLayers: 3, nExperts: 4 }, false);
    p.learnFrom([patternTrace(3)]);
    p.observe(0, 1, [3]);
    p.observe(0, 1, [3]);
    expect(p.counts[1]).toEqual(Float64Array.from([0, 0, 2, 1]));
  });
});

describe('OraclePredictor', () => {
  it('returns exactly what the trace will route, and nothing past its end', () => {
    const trace = patternTrace(2);
    const p = new OraclePredictor();
    p.begin(trace);
    expect(p.predict({ token: 0, layer: 2 }, { token: 1, layer: 1 }, 1)).toEqual([3]);
    expect(p.predict({ token: 1, layer: 2 }, { token: 2, layer: 0 }, 1)).toEqual([]);
  });
});

describe('pre-gating hook', () => {
  const withGuesses = (): RoutingTrace => {
    const t = patternTrace(2);
    t.tokens[0].predicted = [null, [3], [1]];
    return t;
  };

  it('answers the next layer from the trace\'s recorded pre-gate guesses', () => {
    const trace = withGuesses();
    const p = new PreGatePredictor((t) => new TracePreGate(t));
    p.begin(trace);
    expect(p.predict({ token: 0, layer: 0 }, { token: 0, layer: 1 }, 2)).toEqual([3]);
    expect(p.predict({ token: 0, layer: 1 }, { token: 0, layer: 2 }, 2)).toEqual([1]);
  });

  it('asks its fallback beyond the next layer', () => {
    const trace = withGuesses();
    const p = new PreGatePredictor((t) => new TracePreGate(t), new OraclePredictor());
    p.begin(trace);
    expect(p.predict({ token: 0, layer: 0 }, { token: 0, layer: 2 }, 1)).toEqual([0]);
  });

  it('is unavailable for traces without guesses', () => {
    const p = createPredictor('pregate', patternTrace(1), { lookahead: 1 });
    expect(() => p.begin(patternTrace(2))).toThrow(TraceFormatError);
    expect(() => p.begin(patternTrace(2))).toThrow(/carries no pre-gating predictions/);
  });
});
