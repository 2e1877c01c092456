/**
 * The router kernels (logits, then top-k) match the CPU reference in every
 * scoring mode, with ties, k = 1 and 8, E = 8, 60, 64 and 128, T = 1 and 5.
 *
 * Most cases use "grid" data: router weights and inputs are small multiples
 * of 1/4, so every logit is a multiple of 1/16 computed exactly in f32 in any
 * order. The GPU's logits must then equal the reference's bit for bit, ties
 * between experts are frequent and exact, and the chosen ids must be the
 * reference's exactly. Weights involve exp and division, whose WGSL results
 * may differ from the f64 reference by a few ulps; see WEIGHT_TOLERANCE.
 *
 * With the routing knobs on (skip experts below a weight, top-p routing) the
 * kept pairs must be the reference's exactly; the test data are checked to
 * hold no decision that a weight's few ulps could flip (the reference gives
 * the same pairs with each knob nudged by KNOB_MARGIN either way).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { MASKED_EXPERT_ID, RouterKernel, routingBytes, unpackRouting } from '../../src/kernels/router';
import type { RouterShape, RouterVariant, RoutingKnobs, TopKRouting } from '../../src/kernels/router';
import { GgmlType } from '../../src/quant/formats';
import { f32ToF16Bits } from '../../src/quant/half';
import { mulberry32, randomNormal } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import { routerLogits, routeTokens, sharedExpertGate } from '../../src/ref/router';
import { worstRelativeError } from './support/compare';
import { acquireTestGpu } from './support/gpu';

/*
 * Weights: relative, per weight. WGSL's exp is accurate to 3 + 2|x| ulp
 * (|x| < 30 here: under 63 ulp, 4e-6), the softmax sums add up to 128 positive
 * f32 terms (at most 128 roundings of 2^-24 each, 8e-6 relative), and the
 * divisions add 2.5 ulp each. That bounds the error near 1.5e-5; 5e-5 leaves
 * headroom, while a wrong mode (softmax over the wrong set, a missing
 * normalisation or scale) is off by 1e-2 or more.
 */
const WEIGHT_TOLERANCE = 5e-5;
/*
 * Logits of random (non-grid) data: the reference sums in f64, the kernel in
 * f32 over at most 256 terms of mixed sign, so the error is a few 2^-24 of
 * the sum of |terms|; relative to the logit's magnitude that stays below 1e-4
 * for these sizes unless a logit is itself near zero, hence an absolute test
 * against the scale of the terms.
 */
const RANDOM_LOGIT_TOLERANCE = 1e-5;
/* sigmoid of an exact dot: exp's few ulps, then a division: 1e-6 absolute on a value in (0, 1). */
const SHARED_GATE_TOLERANCE = 1e-6;
/* How far (relative) a knob may move without changing the reference's choice: far above WEIGHT_TOLERANCE. */
const KNOB_MARGIN = 1e-3;

interface KnobCase {
  name: string;
  variant: RouterVariant;
  shape: RouterShape;
  knobs: RoutingKnobs;
}

const KNOB_CASES: readonly KnobCase[] = [
  {
    name: 'qwen2moe-like (un-normalised softmax), threshold 0.05',
    variant: { weightType: GgmlType.F32, scoring: 'softmax', normalize: false },
    shape: { tokens: 16, hidden: 32, nExperts: 60, topK: 4 },
    knobs: { minExpertWeight: 0.05 },
  },
  {
    name: 'qwen3moe-like (renormalised softmax), top-p 0.7',
    variant: { weightType: GgmlType.F32, scoring: 'softmax', normalize: true },
    shape: { tokens: 16, hidden: 64, nExperts: 64, topK: 8 },
    knobs: { topP: 0.7 },
  },
  {
    name: 'DeepSeek-like (sigmoid, selection bias, renormalised, scaled 2.5), top-p 0.6 and threshold 0.15',
    variant: { weightType: GgmlType.F32, scoring: 'sigmoid', normalize: true, hasSelectionBias: true },
    shape: { tokens: 16, hidden: 64, nExperts: 16, topK: 6, weightScale: 2.5 },
    knobs: { topP: 0.6, minExpertWeight: 0.15 },
  },
  {
    name: 'Mixtral-like (softmax over the selected), threshold 0.3',
    variant: { weightType: GgmlType.F32, scoring: 'softmax-selected', normalize: false },
    shape: { tokens: 16, hidden: 64, nExperts: 8, topK: 2 },
    knobs: { minExpertWeight: 0.3 },
  },
];

interface RouterCase {
  name: string;
  variant: RouterVariant;
  weightScale?: number;
}

const MODES: readonly RouterCase[] = [
  { name: 'Mixtral (softmax over the selected)', variant: { weightType: GgmlType.F32, scoring: 'softmax-selected', normalize: false } },
  {
    name: 'qwen2moe (softmax, no renormalisation, shared-expert gate)',
    variant: { weightType: GgmlType.F32, scoring: 'softmax', normalize: false, hasSharedGate: true },
  },
  { name: 'qwen3moe (softmax, renormalised)', variant: { weightType: GgmlType.F32, scoring: 'softmax', normalize: true } },
  {
    name: 'DeepSeek-V3 (sigmoid, selection bias, renormalised, scaled)',
    variant: { weightType: GgmlType.F32, scoring: 'sigmoid', normalize: true, hasSelectionBias: true },
    weightScale: 2.5,
  },
  {
    name: 'gpt-oss (logit bias, softmax over the selected)',
    variant: { weightType: GgmlType.F32, scoring: 'softmax-selected', normalize: false, hasLogitBias: true },
  },
];

const SHAPES: ReadonlyArray<Omit<RouterShape, 'weightScale'>> = [
  { tokens: 1, hidden: 64, nExperts: 8, topK: 1 },
  { tokens: 5, hidden: 64, nExperts: 8, topK: 8 },
  { tokens: 5, hidden: 32, nExperts: 60, topK: 4 },
  { tokens: 1, hidden: 64, nExperts: 64, topK: 8 },
  { tokens: 5, hidden: 128, nExperts: 128, topK: 8 },
  { tokens: 5, hidden: 16, nExperts: 128, topK: 1 },
];

/** Multiples of 1/4 in [-0.75, 0.75]: products are multiples of 1/16, and sums of them are exact in f32. */
/** The gates of a shared expert's routing pairs [tokens, 2], checking that every pair names expert 0. */
async function readSharedRouting(device: GPUDevice, buffer: GPUBuffer, tokens: number): Promise<Float32Array> {
  const words = new Uint32Array(await readBuffer(device, buffer, { sizeBytes: tokens * 8 }));
  const gates = new Float32Array(words.buffer);
  for (let t = 0; t < tokens; t++) expect(words[2 * t], `shared routing id of token ${t}`).toBe(0);
  return Float32Array.from({ length: tokens }, (_, t) => gates[2 * t + 1]);
}

function gridValues(length: number, rng: Rng): Float32Array {
  return Float32Array.from({ length }, () => (Math.floor(rng() * 7) - 3) / 4);
}

function normalValues(length: number, rng: Rng, std: number): Float32Array {
  return Float32Array.from({ length }, () => randomNormal(rng) * std);
}

interface RouterData {
  x: Float32Array;
  weight: Float32Array;
  logitBias?: Float32Array;
  selectionBias?: Float32Array;
  sharedGateWeight?: Float32Array;
}

interface RouterResult {
  logits: Float32Array;
  routing: TopKRouting;
  sharedGate?: Float32Array;
}

function gridData(variant: RouterVariant, shape: RouterShape, rng: Rng): RouterData {
  const { tokens, hidden, nExperts } = shape;
  return {
    x: gridValues(tokens * hidden, rng),
    weight: gridValues(nExperts * hidden, rng),
    logitBias: variant.hasLogitBias ? gridValues(nExperts, rng) : undefined,
    // Three values only, so equal logits with equal biases still tie exactly.
    selectionBias: variant.hasSelectionBias ? Float32Array.from({ length: nExperts }, () => Math.floor(rng() * 3) / 4) : undefined,
    sharedGateWeight: variant.hasSharedGate ? gridValues(hidden, rng) : undefined,
  };
}

function f16Bytes(values: Float32Array): Uint16Array {
  return Uint16Array.from(values, (v) => f32ToF16Bits(v));
}

describe('router kernels', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  async function runRouter(variant: RouterVariant, shape: RouterShape, data: RouterData): Promise<RouterResult> {
    const { device } = gpu;
    const kernel = await RouterKernel.create(device, variant);
    const weightBytes = variant.weightType === GgmlType.F16 ? f16Bytes(data.weight) : data.weight;
    const optional = (values: Float32Array | undefined, label: string): GPUBuffer | undefined =>
      values && createStorageBuffer(device, values, label);
    const logits = createEmptyStorageBuffer(device, shape.tokens * shape.nExperts * 4, 'logits');
    const routing = createEmptyStorageBuffer(device, routingBytes(shape.tokens, shape.topK), 'routing');
    const sharedGate = variant.hasSharedGate ? createEmptyStorageBuffer(device, shape.tokens * 8, 'shared gate') : undefined;
    const binding = kernel.bind(
      {
        x: createStorageBuffer(device, data.x, 'x'),
        weight: createStorageBuffer(device, weightBytes, 'router weight'),
        logits,
        routing,
        logitBias: optional(data.logitBias, 'logit bias'),
        selectionBias: optional(data.selectionBias, 'selection bias'),
        sharedGateWeight: optional(data.sharedGateWeight, 'shared gate weight'),
        sharedGate,
      },
      shape,
    );
    await withGpuErrorScope(device, kernel.labels.join(' + '), () =>
      submitComputePass(device, 'router', (pass) => kernel.encode(pass, binding)),
    );
    return {
      logits: await readFloat32(device, logits, shape.tokens * shape.nExperts),
      routing: unpackRouting(await readBuffer(device, routing), shape.tokens, shape.topK),
      sharedGate: sharedGate && (await readSharedRouting(device, sharedGate, shape.tokens)),
    };
  }

  function expectRouting(actual: TopKRouting, expected: TopKRouting): void {
    expect([...actual.ids]).toEqual([...expected.ids]);
    const worst = worstRelativeError(actual.weights, expected.weights);
    expect(worst.relativeError, JSON.stringify(worst)).toBeLessThanOrEqual(WEIGHT_TOLERANCE);
  }

  for (const mode of MODES) {
    describe(mode.name, () => {
      for (const baseShape of SHAPES) {
        const shape = { ...baseShape, weightScale: mode.weightScale };
        const { tokens, hidden, nExperts, topK } = shape;
        it(`T=${tokens} H=${hidden} E=${nExperts} k=${topK}: exact logits, the reference's ids and weights`, async () => {
          const data = gridData(mode.variant, shape, mulberry32(tokens * 1000 + nExperts * 10 + topK));
          const actual = await runRouter(mode.variant, shape, data);

          const logits = routerLogits(data.x, tokens, hidden, data.weight, nExperts, data.logitBias);
          expect([...actual.logits]).toEqual([...logits]);
          const expected = routeTokens(logits, tokens, nExperts, {
            topK,
            scoring: mode.variant.scoring,
            normalize: mode.variant.normalize,
            weightScale: mode.weightScale,
            selectionBias: data.selectionBias,
          });
          expectRouting(actual.routing, expected);
          if (data.sharedGateWeight) {
            const gates = sharedExpertGate(data.x, tokens, hidden, data.sharedGateWeight);
            actual.sharedGate!.forEach((g, t) => expect(Math.abs(g - gates[t])).toBeLessThanOrEqual(SHARED_GATE_TOLERANCE));
          }
        });
      }
    });
  }

  describe('with routing knobs', () => {
    for (const c of KNOB_CASES) {
      it(`${c.name}: the reference's kept pairs, masked pairs elsewhere`, async () => {
        const { tokens, hidden, nExperts, topK } = c.shape;
        const data = gridData(c.variant, c.shape, mulberry32(7 * nExperts + topK));
        const actual = await runRouter(c.variant, { ...c.shape, knobs: c.knobs }, data);
        const logits = routerLogits(data.x, tokens, hidden, data.weight, nExperts);
        const route = (knobs: RoutingKnobs) =>
          routeTokens(logits, tokens, nExperts, {
            topK, scoring: c.variant.scoring, normalize: c.variant.normalize, weightScale: c.shape.weightScale,
            selectionBias: data.selectionBias, knobs,
          });
        const expected = route(c.knobs);
        for (const nudge of [1 - KNOB_MARGIN, 1 + KNOB_MARGIN]) {
          const nudged = { minExpertWeight: c.knobs.minExpertWeight && c.knobs.minExpertWeight * nudge, topP: c.knobs.topP && c.knobs.topP * nudge };
          expect([...route(nudged).ids], `test data: a decision within ${KNOB_MARGIN} of a knob`).toEqual([...expected.ids]);
        }
        const masked = expected.ids.filter((id) => id === MASKED_EXPERT_ID).length;
        expect(masked, 'the knobs skip some pairs and keep others').toBeGreaterThan(0);
        expect(masked).toBeLessThan(tokens * (topK - 1));
        expectRouting(actual.routing, expected);
      });
    }

    it('at their off values (0 and 1) write the very words the router writes without them', async () => {
      const variant: RouterVariant = { weightType: GgmlType.F32, scoring: 'softmax', normalize: true };
      const shape = { tokens: 5, hidden: 64, nExperts: 64, topK: 8 };
      const data = gridData(variant, shape, mulberry32(3));
      const plain = await runRouter(variant, shape, data);
      const off = await runRouter(variant, { ...shape, knobs: { minExpertWeight: 0, topP: 1 } }, data);
      expect([...off.routing.ids]).toEqual([...plain.routing.ids]);
      expect([...off.routing.weights]).toEqual([...plain.routing.weights]);
    });
  });

  it('breaks ties by the lower expert id (all logits equal)', async () => {
    const shape = { tokens: 2, hidden: 8, nExperts: 60, topK: 8 };
    const data = { x: new Float32Array(16).fill(1), weight: new Float32Array(60 * 8) };
    const { routing } = await runRouter({ weightType: GgmlType.F32, scoring: 'softmax', normalize: true }, shape, data);
    expect([...routing.ids]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7]);
    routing.weights.forEach((w) => expect(w).toBeCloseTo(1 / 8, 6));
  });

  it('reads f16 router weights (decoded from their bits)', async () => {
    const variant: RouterVariant = { weightType: GgmlType.F16, scoring: 'softmax', normalize: true };
    const shape = { tokens: 5, hidden: 64, nExperts: 60, topK: 4 };
    const data = gridData(variant, shape, mulberry32(16));
    const actual = await runRouter(variant, shape, data);
    // Grid values are exact in f16, so the logits are again exact.
    const logits = routerLogits(data.x, 5, 64, data.weight, 60);
    expect([...actual.logits]).toEqual([...logits]);
    expectRouting(actual.routing, routeTokens(logits, 5, 60, { topK: 4, scoring: 'softmax', normalize: true }));
  });

  it('matches on random data: logits within f32 accuracy, routing as the reference routes those logits', async () => {
    const variant: RouterVariant = { weightType: GgmlType.F32, scoring: 'softmax', normalize: false, hasSharedGate: true };
    const shape = { tokens: 5, hidden: 256, nExperts: 128, topK: 8 };
    const rng = mulberry32(99);
    const data = { x: normalValues(5 * 256, rng, 1), weight: normalValues(128 * 256, rng, 0.05), sharedGateWeight: normalValues(256, rng, 0.05) };
    const actual = await runRouter(variant, shape, data);

    const logits = routerLogits(data.x, 5, 256, data.weight, 128);
    const termScale = 256 * 0.05; // an upper estimate of sum |w x| per logit
    actual.logits.forEach((l, i) => expect(Math.abs(l - logits[i])).toBeLessThanOrEqual(RANDOM_LOGIT_TOLERANCE * termScale));
    // Routing is a function of the logits: route the GPU's own logits on the CPU, so near-ties cannot differ.
    expectRouting(actual.routing, routeTokens(actual.logits, 5, 128, { topK: 8, scoring: 'softmax', normalize: false }));
    const gates = sharedExpertGate(data.x, 5, 256, data.sharedGateWeight);
    actual.sharedGate!.forEach((g, t) => expect(Math.abs(g - gates[t])).toBeLessThanOrEqual(1e-5));
  });

  it('gives the same result with other workgroup geometries', async () => {
    const shape = { tokens: 3, hidden: 40, nExperts: 60, topK: 4 };
    const base: RouterVariant = { weightType: GgmlType.F32, scoring: 'softmax', normalize: true, hasSharedGate: true };
    const data = gridData(base, shape, mulberry32(5));
    const reference = await runRouter(base, shape, data);
    for (const [workgroupSize, threadsPerRow] of [[1, 1], [32, 32], [256, 2]]) {
      const other = await runRouter({ ...base, workgroupSize, threadsPerRow }, shape, data);
      expect([...other.logits], `WG ${workgroupSize} TPR ${threadsPerRow}`).toEqual([...reference.logits]);
      expect([...other.routing.ids]).toEqual([...reference.routing.ids]);
      expect([...other.sharedGate!]).toEqual([...reference.sharedGate!]);
    }
  });

  it('refuses a k beyond the limit and buffers that do not match the variant', async () => {
    const { device } = gpu;
    const kernel = await RouterKernel.create(device, { weightType: GgmlType.F32, scoring: 'softmax', normalize: false });
    const buffer = (bytes: number): GPUBuffer => createEmptyStorageBuffer(device, bytes);
    const buffers = { x: buffer(64 * 4), weight: buffer(32 * 64 * 4), logits: buffer(32 * 4), routing: buffer(32 * 8) };
    expect(() => kernel.bind(buffers, { tokens: 1, hidden: 64, nExperts: 32, topK: 17 })).toThrow(/topK/);
    expect(() => kernel.bind(buffers, { tokens: 2, hidden: 64, nExperts: 32, topK: 2 })).toThrow(/x needs/);
    expect(() => kernel.bind({ ...buffers, logitBias: buffer(32 * 4) }, { tokens: 1, hidden: 64, nExperts: 32, topK: 2 })).toThrow(
      /logitBias/,
    );
    expect(() => kernel.bind(buffers, { tokens: 1, hidden: 60, nExperts: 32, topK: 2 })).toThrow(/multiple of 8/);
    expect(() => kernel.bind(buffers, { tokens: 1, hidden: 64, nExperts: 32, topK: 2, knobs: { minExpertWeight: 1 } })).toThrow(/minExpertWeight/);
    expect(() => kernel.bind(buffers, { tokens: 1, hidden: 64, nExperts: 32, topK: 2, knobs: { topP: 0 } })).toThrow(/topP/);
  });
});
