/**
 * The expert FFN kernels match the CPU reference (dequantized experts, f64
 * sums) in every mode: per-pair slot lists and the GPU-side expert table
 * for decode, group lists for prefill; for k = 1, 2 and 8; experts spread
 * over several slabs at various slots; f32, Q8_0, Q4_0, Q4_K (with a
 * Q6_K down, as Q4_K_M files have) and MXFP4 weights; SiLU, GELU and
 * gpt-oss's SwiGLU with biases; null experts and non-resident slots. Prefill
 * must also give the very bits of running decode token by token.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { withGpuErrorScope } from '../../src/gpu/device';
import type { GpuContext } from '../../src/gpu/device';
import { submitComputePass } from '../../src/gpu/dispatch';
import { ExpertFfnKernel, expertFfnScratchBytes } from '../../src/kernels/expert-ffn';
import type { ExpertFfnMode, ExpertFfnVariant, FfnActivation } from '../../src/kernels/expert-ffn';
import {
  expertSlotLayout,
  groupListWords,
  groupPairsByExpert,
  packExpertSlot,
  packGroupList,
  packSlotRefs,
} from '../../src/kernels/expert-slots';
import type { ExpertSlotLayout, ExpertSlotRef, ExpertTensors } from '../../src/kernels/expert-slots';
import { packRouting, RouterKernel, routingBytes } from '../../src/kernels/router';
import { dequantize } from '../../src/quant/dequant';
import { GgmlType, ggmlTypeName } from '../../src/quant/formats';
import { mulberry32, randomBlocks, randomNormal } from '../../src/quant/random';
import type { Rng } from '../../src/quant/random';
import { moeFfn } from '../../src/ref/expert-ffn';
import type { DenseExpert } from '../../src/ref/expert-ffn';
import { routerLogits, routeTokens } from '../../src/ref/router';
import type { Routing } from '../../src/ref/router';
import { firstMismatch } from './support/compare';
import { acquireTestGpu } from './support/gpu';

/*
 * Tolerance: the largest absolute error over the output, divided by the
 * largest |MoE contribution|. Weights are decoded exactly (the decoders are
 * bit-exact), so the only differences are f32 rounding: dot products of at
 * most 256 terms in the kernel's lane-then-tree order (the reference sums in
 * f64), exp in the activation (a few ulps), and the weighted sum of <= 8
 * experts. With random signs the accumulated error is about
 * sqrt(256) * 2^-24 ~ 1e-6 of the terms' scale, and the worst case
 * (256 + 8) * 2^-24 ~ 1.6e-5; 1e-4 leaves headroom, while reading a wrong
 * row, slot, slab, weight or token is off by the output's own size.
 */
const TOLERANCE = 1e-4;
const WEIGHT_STD = 0.05;
const SLOTS_PER_SLAB = 8;

interface ExpertSet {
  layout: ExpertSlotLayout;
  tensors: ExpertTensors[];
  dense: DenseExpert[];
}

function randomVector(length: number, rng: Rng, std: number): Float32Array {
  return Float32Array.from({ length }, () => randomNormal(rng) * std);
}

function makeExperts(layout: ExpertSlotLayout, count: number, rng: Rng): ExpertSet {
  const { hidden, ffn, gateUpType, downType } = layout;
  const tensors: ExpertTensors[] = [];
  const dense: DenseExpert[] = [];
  for (let e = 0; e < count; e++) {
    const t: ExpertTensors = {
      gate: randomBlocks(gateUpType, ffn * hidden, rng, WEIGHT_STD),
      up: randomBlocks(gateUpType, ffn * hidden, rng, WEIGHT_STD),
      down: randomBlocks(downType, hidden * ffn, rng, WEIGHT_STD),
    };
    if (layout.biases) {
      t.gateBias = randomVector(ffn, rng, 0.5);
      t.upBias = randomVector(ffn, rng, 0.5);
      t.downBias = randomVector(hidden, rng, 0.1);
    }
    tensors.push(t);
    dense.push({
      gate: dequantize(gateUpType, t.gate, ffn * hidden),
      up: dequantize(gateUpType, t.up, ffn * hidden),
      down: dequantize(downType, t.down, hidden * ffn),
      gateBias: t.gateBias,
      upBias: t.upBias,
      downBias: t.downBias,
    });
  }
  return { layout, tensors, dense };
}

/**
 * Expert e goes to slab e % slabCount, at a slot counted from the slab's end,
 * so that neither slab 0 nor slot 0 is what a wrong index would hit anyway.
 * Holds up to SLOTS_PER_SLAB * slabCount experts.
 */
function placement(expert: number, slabCount: number, layout: ExpertSlotLayout): ExpertSlotRef {
  const slot = SLOTS_PER_SLAB - 1 - Math.floor(expert / slabCount);
  return { slab: expert % slabCount, offsetBytes: slot * layout.slotBytes };
}

/** Slab contents: random bytes (so a wrong slot reads garbage) with each placed expert's slot. */
function slabImages(set: ExpertSet, slabCount: number, refOf: (e: number) => ExpertSlotRef | undefined, rng: Rng): Uint8Array[] {
  const images = Array.from({ length: slabCount }, () => Uint8Array.from({ length: SLOTS_PER_SLAB * set.layout.slotBytes }, () => Math.floor(rng() * 256)));
  set.tensors.forEach((t, e) => {
    const ref = refOf(e);
    if (ref) images[ref.slab].set(packExpertSlot(set.layout, t), ref.offsetBytes);
  });
  return images;
}

/** Distinct top-k ids per token with normalised softmax weights, from random logits. */
function randomRouting(tokens: number, nExperts: number, topK: number, rng: Rng): Routing {
  const logits = randomVector(tokens * nExperts, rng, 1);
  return routeTokens(logits, tokens, nExperts, { topK, scoring: 'softmax', normalize: true });
}

function relativeError(actual: Float32Array, expected: Float32Array, baseline: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i] - baseline[i]));
  }
  return worst / scale;
}

interface FfnRun {
  variant: ExpertFfnVariant;
  set: ExpertSet;
  tokens: number;
  x: Float32Array;
  y0: Float32Array;
  routing: Routing;
  nRealExperts: number;
  /** Slot of each expert, or undefined when it is not resident. */
  refOf: (expert: number) => ExpertSlotRef | undefined;
}

function referenceOutput(run: FfnRun): Float32Array {
  const { set, tokens, routing } = run;
  const delta = moeFfn({
    x: run.x,
    tokens,
    hidden: set.layout.hidden,
    ffn: set.layout.ffn,
    topK: run.variant.topK,
    ids: routing.ids,
    weights: routing.weights,
    expert: (id) => (id < run.nRealExperts && run.refOf(id) ? set.dense[id] : undefined),
    activation: run.variant.activation,
  });
  return run.y0.map((v, i) => v + delta[i]);
}

describe('expert FFN kernels', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  /** The slot source for `run` in its mode: pair list, table (as layer 1 of 2) or group list. */
  function slotWords(run: FfnRun, kernel: ExpertFfnKernel): { words: Uint32Array; groupCount?: number; layer?: number } {
    const { variant, routing } = run;
    if (variant.mode === 'pair-list') return { words: packSlotRefs(Array.from(routing.ids, (id) => (id < run.nRealExperts ? run.refOf(id) : undefined))) };
    const nExperts = run.set.dense.length;
    if (variant.mode === 'expert-table') {
      // Layer 0's row points at nonsense; the binding must read layer 1's.
      const table = [...Array.from({ length: nExperts }, () => ({ slab: 0, offsetBytes: 0 })), ...Array.from({ length: nExperts }, (_, e) => run.refOf(e))];
      return { words: packSlotRefs(table), layer: 1 };
    }
    const groups = groupPairsByExpert(routing.ids, run.nRealExperts, kernel.pairTile);
    const words = new Uint32Array(groupListWords(run.tokens * variant.topK));
    words.set(packGroupList(groups, run.refOf));
    return { words, groupCount: groups.length };
  }

  async function runFfn(run: FfnRun, rng: Rng): Promise<Float32Array> {
    const { device } = gpu;
    const { variant, tokens, set } = run;
    const kernel = await ExpertFfnKernel.create(device, variant);
    const slabs = slabImages(set, variant.slabCount, run.refOf, rng).map((bytes, s) => createStorageBuffer(device, bytes, `slab ${s}`));
    const scratch = expertFfnScratchBytes(variant, tokens);
    const slots = slotWords(run, kernel);
    const y = createStorageBuffer(device, run.y0, 'y');
    const binding = kernel.bind(
      {
        x: createStorageBuffer(device, run.x, 'x'),
        y,
        routing: createStorageBuffer(device, packRouting(run.routing, tokens, variant.topK), 'routing'),
        slots: createStorageBuffer(device, slots.words, 'slots'),
        hidden: createEmptyStorageBuffer(device, scratch.hidden, 'h'),
        pairOutput: variant.mode === 'grouped' ? createEmptyStorageBuffer(device, scratch.pairOutput, 'pair output') : undefined,
        slabs,
      },
      { tokens, nRealExperts: run.nRealExperts, layer: slots.layer, nExperts: set.dense.length },
    );
    await withGpuErrorScope(device, kernel.labels.join(' + '), () =>
      submitComputePass(device, 'expert ffn', (pass) => kernel.encode(pass, binding, slots.groupCount)),
    );
    return readFloat32(device, y, tokens * set.layout.hidden);
  }

  function newRun(
    variant: Omit<ExpertFfnVariant, 'layout'>,
    set: ExpertSet,
    tokens: number,
    rng: Rng,
    options: { nRealExperts?: number; refOf?: (e: number) => ExpertSlotRef | undefined } = {},
  ): FfnRun {
    const nExperts = set.dense.length;
    const { hidden } = set.layout;
    return {
      variant: { ...variant, layout: set.layout },
      set,
      tokens,
      x: randomVector(tokens * hidden, rng, 1),
      y0: randomVector(tokens * hidden, rng, 0.01),
      routing: randomRouting(tokens, nExperts, variant.topK, rng),
      nRealExperts: options.nRealExperts ?? nExperts,
      refOf: options.refOf ?? ((e) => placement(e, variant.slabCount, set.layout)),
    };
  }

  async function expectMatchesReference(run: FfnRun, rng: Rng): Promise<Float32Array> {
    const actual = await runFfn(run, rng);
    const error = relativeError(actual, referenceOutput(run), run.y0);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
    return actual;
  }

  // Pipelines compile slowly on software adapters (seconds each), so the cases share them:
  // one pipeline pair per format and tile; modes, k, activations and biases are uniforms.
  const FORMATS: ReadonlyArray<{ gateUp: GgmlType; down: GgmlType; hidden: number; ffn: number; slabs: number }> = [
    { gateUp: GgmlType.F32, down: GgmlType.F32, hidden: 64, ffn: 40, slabs: 2 },
    { gateUp: GgmlType.Q8_0, down: GgmlType.Q8_0, hidden: 64, ffn: 96, slabs: 2 },
    { gateUp: GgmlType.Q4_0, down: GgmlType.Q4_0, hidden: 96, ffn: 64, slabs: 2 },
    { gateUp: GgmlType.Q4_K, down: GgmlType.Q6_K, hidden: 256, ffn: 256, slabs: 2 },
    { gateUp: GgmlType.MXFP4, down: GgmlType.MXFP4, hidden: 64, ffn: 96, slabs: 3 },
  ];
  /** Prefill cases: Q4_K gate/up with a Q6_K down (as in Q4_K_M files), tiles of 4 pairs. */
  const PREFILL_SPEC = { hidden: 256, ffn: 256, gateUpType: GgmlType.Q4_K, downType: GgmlType.Q6_K };
  const PREFILL_TILE = 4;

  for (const format of FORMATS) {
    const formatName = `${ggmlTypeName(format.gateUp)}/${ggmlTypeName(format.down)}`;
    describe(`${formatName} experts, H=${format.hidden} F=${format.ffn}, ${format.slabs} slabs`, () => {
      const cases: ReadonlyArray<{ topK: number; mode: ExpertFfnMode; activation: FfnActivation; biases: boolean }> = [
        { topK: 1, mode: 'pair-list', activation: 'silu', biases: false },
        { topK: 2, mode: 'expert-table', activation: 'silu', biases: false },
        { topK: 8, mode: 'pair-list', activation: 'swiglu-oai', biases: true },
      ];
      for (const { topK, mode, activation, biases } of cases) {
        it(`decode, k=${topK}, ${mode}, ${activation}${biases ? ' with biases' : ''}`, async () => {
          const rng = mulberry32(format.gateUp * 100 + topK);
          const layout = expertSlotLayout({ hidden: format.hidden, ffn: format.ffn, gateUpType: format.gateUp, downType: format.down, hasBiases: biases });
          const set = makeExperts(layout, 8, rng);
          await expectMatchesReference(newRun({ topK, mode, activation, slabCount: format.slabs }, set, 1, rng), rng);
        });
      }
    });
  }

  it('GELU (tanh approximation), 2 tokens', async () => {
    const rng = mulberry32(31);
    const set = makeExperts(expertSlotLayout({ hidden: 64, ffn: 96, gateUpType: GgmlType.Q8_0, downType: GgmlType.Q8_0 }), 9, rng);
    await expectMatchesReference(newRun({ topK: 4, mode: 'pair-list', activation: 'gelu', slabCount: 2 }, set, 2, rng), rng);
  });

  it('skips null experts (ids >= nRealExperts) and experts whose slot is NO_SLAB, in every mode', async () => {
    const rng = mulberry32(41);
    const set = makeExperts(expertSlotLayout(PREFILL_SPEC), 8, rng);
    // Experts 6 and 7 are null; expert 2 is not resident.
    const refOf = (e: number): ExpertSlotRef | undefined => (e === 2 ? undefined : placement(e, 2, set.layout));
    for (const mode of ['pair-list', 'expert-table', 'grouped'] as const) {
      const run = newRun({ topK: 4, mode, activation: 'silu', slabCount: 2, pairTile: PREFILL_TILE }, set, 3, rng, { nRealExperts: 6, refOf });
      expect([...run.routing.ids].some((id) => id >= 6 || id === 2), 'the routing exercises the skips').toBe(true);
      await expectMatchesReference(run, rng);
    }
  });

  for (const tokens of [5, 17]) {
    it(`prefill of ${tokens} tokens grouped by expert equals the reference and decode token by token, bit for bit`, async () => {
      const rng = mulberry32(tokens);
      const set = makeExperts(expertSlotLayout(PREFILL_SPEC), 8, rng);
      const prefillRun = newRun({ topK: 2, mode: 'grouped', activation: 'silu', slabCount: 2, pairTile: PREFILL_TILE }, set, tokens, rng);
      const prefill = await expectMatchesReference(prefillRun, rng);
      const hidden = set.layout.hidden;
      for (let t = 0; t < tokens; t++) {
        const decode = await runFfn(
          {
            ...prefillRun,
            variant: { ...prefillRun.variant, mode: 'pair-list' },
            tokens: 1,
            x: prefillRun.x.slice(t * hidden, (t + 1) * hidden),
            y0: prefillRun.y0.slice(t * hidden, (t + 1) * hidden),
            routing: { ids: prefillRun.routing.ids.slice(2 * t, 2 * t + 2), weights: prefillRun.routing.weights.slice(2 * t, 2 * t + 2) },
          },
          rng,
        );
        expect(firstMismatch(decode, prefill.slice(t * hidden, (t + 1) * hidden)), `token ${t}`).toBeUndefined();
      }
    });
  }

  it('prefill with the gpt-oss activation and biases, k=8 of 12 experts', async () => {
    const rng = mulberry32(77);
    const set = makeExperts(expertSlotLayout({ ...PREFILL_SPEC, hasBiases: true }), 12, rng);
    const variant = { topK: 8, mode: 'grouped' as const, activation: 'swiglu-oai' as const, slabCount: 2, pairTile: PREFILL_TILE };
    await expectMatchesReference(newRun(variant, set, 5, rng), rng);
  });

  it('gives the same result with another workgroup geometry, rows not a multiple of the workgroup', async () => {
    const rng = mulberry32(3);
    const set = makeExperts(expertSlotLayout({ hidden: 24, ffn: 40, gateUpType: GgmlType.F32, downType: GgmlType.F32 }), 4, rng);
    // 32 threads of one lane each (no lane reduction): 32 down rows and 16 gate/up rows per
    // workgroup, of 24 and 40; tiles of 3 pairs, so an expert with more pairs spans several.
    const variant = { topK: 2, mode: 'grouped' as const, activation: 'silu' as const, slabCount: 2, workgroupSize: 32, threadsPerRow: 1, pairTile: 3 };
    const run = newRun(variant, set, 6, rng);
    const groups = groupPairsByExpert(run.routing.ids, 4, 3);
    expect(groups.length, 'some expert spans two tiles').toBeGreaterThan(new Set(groups.map((g) => g.expert)).size);
    await expectMatchesReference(run, rng);
  });

  it('gives the same result with 8 threads per row (the default on GPUs; software adapters default to 1), decode and prefill', async () => {
    const rng = mulberry32(8);
    const set = makeExperts(expertSlotLayout({ hidden: 64, ffn: 96, gateUpType: GgmlType.Q8_0, downType: GgmlType.Q8_0 }), 6, rng);
    const geometry = { workgroupSize: 64, threadsPerRow: 8 };
    await expectMatchesReference(newRun({ topK: 2, mode: 'expert-table', activation: 'silu', slabCount: 2, ...geometry }, set, 1, rng), rng);
    await expectMatchesReference(newRun({ topK: 2, mode: 'grouped', activation: 'silu', slabCount: 2, pairTile: PREFILL_TILE, ...geometry }, set, 5, rng), rng);
  });

  it('follows new slot refs written between submits, with the same bind group', async () => {
    const { device } = gpu;
    const rng = mulberry32(12);
    const set = makeExperts(expertSlotLayout({ hidden: 64, ffn: 32, gateUpType: GgmlType.Q8_0, downType: GgmlType.Q8_0 }), 4, rng);
    const run = newRun({ topK: 2, mode: 'pair-list', activation: 'silu', slabCount: 2 }, set, 1, rng);
    const kernel = await ExpertFfnKernel.create(device, run.variant);
    // Every expert is stored twice: slab 0 holds copies at slots 0..3, slab 1 holds garbage at first.
    const slabBytes = SLOTS_PER_SLAB * set.layout.slotBytes;
    const slab0 = new Uint8Array(slabBytes);
    set.tensors.forEach((t, e) => slab0.set(packExpertSlot(set.layout, t), e * set.layout.slotBytes));
    const slabs = [createStorageBuffer(device, slab0, 'slab 0'), createStorageBuffer(device, Uint8Array.from({ length: slabBytes }, () => 0x7f), 'slab 1')];
    const slots = createEmptyStorageBuffer(device, 2 * 8, 'slots');
    const y = createStorageBuffer(device, run.y0, 'y');
    const binding = kernel.bind(
      {
        x: createStorageBuffer(device, run.x, 'x'),
        y,
        routing: createStorageBuffer(device, packRouting(run.routing, 1, 2), 'routing'),
        slots,
        hidden: createEmptyStorageBuffer(device, expertFfnScratchBytes(run.variant, 1).hidden),
        slabs,
      },
      { tokens: 1, nRealExperts: 4 },
    );
    const expected = referenceOutput(run);
    const runWith = async (refs: ExpertSlotRef[]): Promise<Float32Array> => {
      device.queue.writeBuffer(y, 0, run.y0);
      device.queue.writeBuffer(slots, 0, packSlotRefs(refs));
      await withGpuErrorScope(device, 'ffn', () => submitComputePass(device, 'ffn', (pass) => kernel.encode(pass, binding)));
      return readFloat32(device, y, 64);
    };
    const ids = [...run.routing.ids];
    const first = await runWith(ids.map((e) => ({ slab: 0, offsetBytes: e * set.layout.slotBytes })));
    expect(relativeError(first, expected, run.y0)).toBeLessThanOrEqual(TOLERANCE);
    // "Load" the second routed expert into slab 1, slot 3, and point its ref there.
    device.queue.writeBuffer(slabs[1], 3 * set.layout.slotBytes, packExpertSlot(set.layout, set.tensors[ids[1]]));
    const moved = await runWith([{ slab: 0, offsetBytes: ids[0] * set.layout.slotBytes }, { slab: 1, offsetBytes: 3 * set.layout.slotBytes }]);
    expect(firstMismatch(moved, first)).toBeUndefined();
  });

  it('runs router and expert table back to back with no readback', async () => {
    const { device } = gpu;
    const rng = mulberry32(8);
    const [tokens, hidden, nExperts, topK] = [1, 64, 16, 4];
    const set = makeExperts(expertSlotLayout({ hidden, ffn: 64, gateUpType: GgmlType.Q8_0, downType: GgmlType.Q8_0 }), nExperts, rng);
    const variant: ExpertFfnVariant = { layout: set.layout, topK, mode: 'expert-table', activation: 'silu', slabCount: 2 };
    const routerWeight = randomVector(nExperts * hidden, rng, 0.2);
    const x = randomVector(hidden, rng, 1);
    const y0 = randomVector(hidden, rng, 0.01);
    const router = await RouterKernel.create(device, { weightType: GgmlType.F32, scoring: 'softmax', normalize: true });
    const ffn = await ExpertFfnKernel.create(device, variant);
    const xBuffer = createStorageBuffer(device, x, 'x');
    const routing = createEmptyStorageBuffer(device, routingBytes(tokens, topK), 'routing');
    const y = createStorageBuffer(device, y0, 'y');
    const refOf = (e: number): ExpertSlotRef => placement(e, 2, set.layout);
    const routerBinding = router.bind(
      { x: xBuffer, weight: createStorageBuffer(device, routerWeight), logits: createEmptyStorageBuffer(device, nExperts * 4), routing },
      { tokens, hidden, nExperts, topK },
    );
    const ffnBinding = ffn.bind(
      {
        x: xBuffer,
        y,
        routing,
        slots: createStorageBuffer(device, packSlotRefs(Array.from({ length: nExperts }, (_, e) => refOf(e)))),
        hidden: createEmptyStorageBuffer(device, expertFfnScratchBytes(variant, tokens).hidden),
        slabs: slabImages(set, 2, refOf, rng).map((bytes) => createStorageBuffer(device, bytes)),
      },
      { tokens, nRealExperts: nExperts },
    );
    await withGpuErrorScope(device, 'router + ffn', () =>
      submitComputePass(device, 'moe', (pass) => {
        router.encode(pass, routerBinding);
        ffn.encode(pass, ffnBinding);
      }),
    );
    const actual = await readFloat32(device, y, hidden);
    // The GPU's logits are f32 sums in another order; route the reference's logits and check no near-tie made them differ.
    const logits = routerLogits(x, tokens, hidden, routerWeight, nExperts);
    const routingRef = routeTokens(logits, tokens, nExperts, { topK, scoring: 'softmax', normalize: true });
    const run: FfnRun = { variant, set, tokens, x, y0, routing: routingRef, nRealExperts: nExperts, refOf };
    expect(relativeError(actual, referenceOutput(run), y0)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('refuses variants and buffers it cannot run', async () => {
    const { device } = gpu;
    const layout = expertSlotLayout(PREFILL_SPEC);
    const base: ExpertFfnVariant = { layout, topK: 2, mode: 'grouped', activation: 'silu', slabCount: 2, pairTile: PREFILL_TILE };
    await expect(ExpertFfnKernel.create(device, { ...base, slabCount: 9 })).rejects.toThrow(/slabCount/);
    await expect(ExpertFfnKernel.create(device, { ...base, threadsPerRow: 3 })).rejects.toThrow(/threadsPerRow/);
    await expect(ExpertFfnKernel.create(device, { ...base, workgroupSize: 16, threadsPerRow: 16 })).rejects.toThrow(/threadsPerRow/);
    await expect(ExpertFfnKernel.create(device, { ...base, topK: 17 })).rejects.toThrow(/topK/);
    expect(() => expertSlotLayout({ hidden: 48, ffn: 32, gateUpType: GgmlType.Q4_K, downType: GgmlType.Q8_0 })).toThrow(/multiple of 256/);
    const kernel = await ExpertFfnKernel.create(device, base);
    const buffer = (bytes: number): GPUBuffer => createEmptyStorageBuffer(device, bytes);
    const buffers = {
      x: buffer(256 * 4),
      y: buffer(256 * 4),
      routing: buffer(routingBytes(1, 2)),
      slots: buffer(groupListWords(2) * 4),
      hidden: buffer(2 * 256 * 4),
      slabs: [buffer(layout.slotBytes), buffer(layout.slotBytes)],
    };
    expect(() => kernel.bind(buffers, { tokens: 1, nRealExperts: 4 })).toThrow(/pairOutput/);
    const full = { ...buffers, pairOutput: buffer(2 * 256 * 4) };
    expect(() => kernel.bind({ ...full, slabs: [full.slabs[0]] }, { tokens: 1, nRealExperts: 4 })).toThrow(/slab/);
    expect(() => kernel.bind(full, { tokens: 2, nRealExperts: 4 })).toThrow(/x needs/);
    const binding = kernel.bind(full, { tokens: 1, nRealExperts: 4 });
    expect(() => submitComputePass(device, 'no count', (pass) => kernel.encode(pass, binding))).toThrow(/group count/);
  });
});
