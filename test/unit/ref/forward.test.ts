/**
 * The CPU reference forward pass as a whole, on generated models: causal,
 * deterministic, routing as each architecture's policy says, and its
 * llama.cpp activation-rounding mode a no-op on F32 weights. (Its agreement
 * with llama.cpp itself is in test/unit/parity.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { firstNearTie, loadReferenceModel, type ReferenceModel } from '../../../src/ref/forward';
import { compareLogits } from '../../../src/ref/forward-compare';
import { TINY_ARCHS, type TinyArch } from '../../../src/tiny/archs';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const TOKENS = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33, 300, 256, 17, 400];
const models = new Map<TinyArch, ReferenceModel>();

beforeAll(async () => {
  for (const arch of TINY_ARCHS) models.set(arch, await loadReferenceModel(makeTinyModel({ arch, seed: 7 })));
});

const model = (arch: TinyArch): ReferenceModel => models.get(arch) as ReferenceModel;

describe('reference forward pass', () => {
  for (const arch of TINY_ARCHS) {
    describe(arch, () => {
      it('gives one finite, non-degenerate row of vocab logits per token', () => {
        const m = model(arch);
        const rows = m.logits(TOKENS);
        expect(rows).toHaveLength(TOKENS.length);
        for (const row of rows) {
          expect(row).toHaveLength(m.config.vocabSize);
          expect(row.every(Number.isFinite)).toBe(true);
          expect(Math.max(...row) - Math.min(...row)).toBeGreaterThan(1e-3);
        }
      });

      it('is causal: a prefix gives exactly the first rows of the whole sequence', () => {
        const whole = model(arch).logits(TOKENS);
        const prefix = model(arch).logits(TOKENS.slice(0, 5));
        prefix.forEach((row, p) => expect(row).toEqual(whole[p]));
      });

      it('is deterministic and starts every evaluation from an empty cache', () => {
        const a = model(arch).evaluate(TOKENS);
        const b = model(arch).evaluate(TOKENS);
        expect(b.logits).toEqual(a.logits);
        expect(b.routes).toEqual(a.routes);
      });

      it('depends on context: the same token after different prefixes gives different logits', () => {
        const a = model(arch).logits([5, 9, 42]);
        const b = model(arch).logits([6, 9, 42]);
        expect(a[2]).not.toEqual(b[2]);
      });

      it('traces k distinct experts per token in every layer, weighted by the routing policy', () => {
        const m = model(arch);
        const { routes } = m.evaluate(TOKENS);
        expect(routes).toHaveLength(m.config.nLayer);
        for (const [l, layer] of routes.entries()) {
          // Dense layers (deepseek2's leading ones) route nothing.
          if (m.config.tensors.layers[l].ffn.kind === 'dense') {
            expect(layer).toHaveLength(0);
            continue;
          }
          expect(layer).toHaveLength(TOKENS.length);
          for (const step of layer) {
            expect(new Set(step.experts).size).toBe(m.config.nExpertUsed);
            for (const e of step.experts) expect(e).toBeGreaterThanOrEqual(0);
            for (const e of step.experts) expect(e).toBeLessThan(m.config.nExpert);
            expect(step.weights[0]).toBeGreaterThanOrEqual(step.weights[1]);
            const sum = step.weights.reduce((a, b) => a + b, 0);
            // Renormalising policies and gpt-oss's softmax over the selected logits sum to one; the others keep the softmax mass of the chosen experts only.
            if (m.config.routing.normalize || m.config.routing.scoring === 'softmax-selected') expect(sum).toBeCloseTo(1, 6);
            else expect(sum).toBeLessThan(1);
            expect(step.margin).toBeGreaterThanOrEqual(0);
          }
        }
      });

      it("with llama.cpp's activation rounding on F32 weights, changes nothing (llama.cpp rounds only for other types)", () => {
        const exact = model(arch).logits(TOKENS);
        expect(model(arch).logits(TOKENS, { activations: 'llama.cpp' })).toEqual(exact);
      });
    });
  }

  it('routes differently in different layers and for different tokens (the router is not degenerate)', () => {
    const { routes } = model('qwen3moe').evaluate(TOKENS);
    const choices = new Set(routes.flat().map((s) => s.experts.join()));
    expect(choices.size).toBeGreaterThan(3);
  });

  it('finds no near tie in a trace whose margins are all wide, and the first one when there is one', () => {
    const { routes } = model('llama').evaluate(TOKENS);
    const smallest = Math.min(...routes.flat().map((s) => s.relativeMargin));
    expect(firstNearTie(routes, smallest)).toBeUndefined();
    const at = firstNearTie(routes, smallest * 1.0001);
    expect(routes.some((layer) => layer[at ?? -1]?.relativeMargin === smallest)).toBe(true);
  });

  it("with llama.cpp's rounding on Q8_0 weights, moves logits a little and keeps the top tokens", async () => {
    const m = await loadReferenceModel(makeTinyModel({ arch: 'olmoe', type: 'q8_0', seed: 7 }));
    const exact = m.logits(TOKENS);
    const rounded = m.logits(TOKENS, { activations: 'llama.cpp' });
    const agreement = compareLogits(rounded, exact);
    expect(agreement.maxRelativeDiff).toBeGreaterThan(1e-5);
    expect(agreement.maxRelativeDiff).toBeLessThan(0.2);
    expect(agreement.top1Agreement).toBeGreaterThanOrEqual(0.75);
  });

  it('refuses token ids outside the vocabulary', () => {
    const m = model('llama');
    expect(() => m.logits([1, m.config.vocabSize])).toThrow(RangeError);
    expect(() => m.logits([-1])).toThrow(RangeError);
    expect(() => m.logits([1.5])).toThrow(RangeError);
  });
});
