/** Routing statistics on hand-made traces: first-choice repeats per layer and the shuffled (popularity-only) baseline. */
import { describe, expect, it } from 'vitest';
import { firstChoiceRepeat, layerCounts, reuseRate, shuffledBaselineStats, shuffledRoutingTrace } from '../../../src/experts/analysis/stats';
import type { RoutingTrace } from '../../../src/experts/trace';

function trace(experts: number[][][], nExperts = 4): RoutingTrace {
  return { name: 't', nLayers: experts[0].length, nExperts, topK: experts[0][0].length, tokens: experts.map((e) => ({ experts: e, weights: e.map((ids) => ids.map(() => 1 / ids.length)) })) };
}

describe('routing statistics', () => {
  it('firstChoiceRepeat counts equal first choices of consecutive tokens, per layer', () => {
    const t = trace([
      [[0, 1], [2, 3]],
      [[0, 2], [3, 2]],
      [[1, 0], [3, 0]],
    ]);
    // layer 0: 0->0 same, 0->1 not; layer 1: 2->3 not, 3->3 same
    expect(firstChoiceRepeat([t])).toEqual([0.5, 0.5]);
  });

  it('shuffling per layer keeps every layer\'s counts and destroys runs', () => {
    const runs = trace(Array.from({ length: 40 }, (_, t) => [[Math.floor(t / 10), (Math.floor(t / 10) + 1) % 4]]));
    expect(reuseRate([runs])).toBeGreaterThan(0.9);
    const shuffled = shuffledRoutingTrace(runs, 3);
    expect(layerCounts([shuffled])).toEqual(layerCounts([runs]));
    expect(shuffledBaselineStats([runs], 4).reuse).toBeLessThan(0.6);
  });
});
