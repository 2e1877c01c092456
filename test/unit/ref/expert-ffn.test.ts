/** The CPU reference of the gated expert FFN, on small hand-checked cases. */

import { describe, expect, it } from 'vitest';
import { activate, expertHidden, expertOutput, geluTanh, moeFfn } from '../../../src/ref/expert-ffn';
import type { DenseExpert } from '../../../src/ref/expert-ffn';

const silu = (g: number): number => g / (1 + Math.exp(-g));

/** hidden 2, ffn 2: gate and up pick one input each, down swaps. */
function simpleExpert(scale: number, biases = false): DenseExpert {
  const expert: DenseExpert = {
    gate: Float32Array.of(scale, 0, 0, scale),
    up: Float32Array.of(1, 0, 0, 1),
    down: Float32Array.of(0, 1, 1, 0),
  };
  if (biases) {
    expert.gateBias = Float32Array.of(0.5, 0);
    expert.upBias = Float32Array.of(0, -1);
    expert.downBias = Float32Array.of(10, 20);
  }
  return expert;
}

describe('activate', () => {
  it('silu multiplies silu(gate) by up', () => {
    expect(activate('silu', 0, 5)).toBe(0);
    expect(activate('silu', 2, 3)).toBeCloseTo(3 * silu(2), 12);
  });

  it('gelu uses the tanh approximation', () => {
    expect(geluTanh(0)).toBe(0);
    expect(geluTanh(1)).toBeCloseTo(0.841192, 6);
    expect(geluTanh(-1)).toBeCloseTo(-0.158808, 6);
    expect(activate('gelu', 1, 2)).toBeCloseTo(2 * 0.841192, 6);
  });

  it('swiglu-oai clamps gate from above and up on both sides, and adds 1 to up', () => {
    const glu = (g: number): number => g / (1 + Math.exp(-1.702 * g));
    expect(activate('swiglu-oai', 1, 0.5)).toBeCloseTo(glu(1) * 1.5, 12);
    expect(activate('swiglu-oai', 100, 0)).toBeCloseTo(glu(7), 12);
    expect(activate('swiglu-oai', -100, 0)).toBeCloseTo(glu(-100), 12);
    expect(activate('swiglu-oai', 1, 50)).toBeCloseTo(glu(1) * 8, 12);
    expect(activate('swiglu-oai', 1, -50)).toBeCloseTo(glu(1) * -6, 12);
  });
});

describe('expert FFN', () => {
  it('computes h = act(Gx + bg, Ux + bu) and D h + bd', () => {
    const x = Float32Array.of(1, -2);
    const plain = simpleExpert(2);
    const h = expertHidden(x, plain, 2, 2, 'silu');
    expect([...h]).toEqual([Math.fround(silu(2) * 1), Math.fround(silu(-4) * -2)]);
    expect([...expertOutput(h, plain, 2, 2)]).toEqual([h[1], h[0]]);

    const biased = simpleExpert(2, true);
    const hb = expertHidden(x, biased, 2, 2, 'silu');
    expect([...hb]).toEqual([Math.fround(silu(2.5) * 1), Math.fround(silu(-4) * -3)]);
    expect([...expertOutput(hb, biased, 2, 2)]).toEqual([hb[1] + 10, hb[0] + 20]);
  });

  it('sums the weighted outputs of the chosen experts and skips unknown (null) experts', () => {
    const experts = [simpleExpert(1), simpleExpert(3)];
    const x = Float32Array.of(1, 2, -1, 0.5); // two tokens
    const y = moeFfn({
      x,
      tokens: 2,
      hidden: 2,
      ffn: 2,
      topK: 2,
      ids: Uint32Array.of(0, 1, 1, 7),
      weights: Float32Array.of(0.25, 0.75, 0.5, 0.5),
      expert: (id) => experts[id],
      activation: 'silu',
    });
    const out = (e: DenseExpert, t: number): Float64Array =>
      expertOutput(expertHidden(x.subarray(2 * t, 2 * t + 2), e, 2, 2, 'silu'), e, 2, 2);
    const [a, b, c] = [out(experts[0], 0), out(experts[1], 0), out(experts[1], 1)];
    expect(y[0]).toBeCloseTo(0.25 * a[0] + 0.75 * b[0], 6);
    expect(y[1]).toBeCloseTo(0.25 * a[1] + 0.75 * b[1], 6);
    // Token 1's second expert (id 7) does not exist: only expert 1 counts.
    expect(y[2]).toBeCloseTo(0.5 * c[0], 6);
    expect(y[3]).toBeCloseTo(0.5 * c[1], 6);
  });

  it('rejects an expert with only some biases or of the wrong shape', () => {
    const partial = { ...simpleExpert(1), gateBias: Float32Array.of(0, 0) };
    expect(() => expertHidden(Float32Array.of(1, 1), partial, 2, 2, 'silu')).toThrow(RangeError);
    expect(() => expertHidden(Float32Array.of(1, 1), simpleExpert(1), 2, 3, 'silu')).toThrow(RangeError);
  });
});
