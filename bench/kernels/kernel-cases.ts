/**
 * The kernel cases, at decode size (one token): a matvec per weight format,
 * the gated expert FFN over k experts in slab slots, and the router (logits
 * matvec plus top-k). Each cycles through a ring of weight copies (ring.ts)
 * so that consecutive calls read different memory, as decode does.
 */

import { createEmptyStorageBuffer, createStorageBuffer } from '../../src/gpu/buffers';
import { ExpertFfnKernel, MAX_SLAB_BINDINGS, expertFfnScratchBytes } from '../../src/kernels/expert-ffn';
import { expertSlotLayout, packExpertSlot, packSlotRefs } from '../../src/kernels/expert-slots';
import type { ExpertSlotRef } from '../../src/kernels/expert-slots';
import { MatvecKernel } from '../../src/kernels/matvec';
import { quantDecoder, rowBytes } from '../../src/kernels/quant-decoders';
import { RouterKernel, packRouting, routingBytes } from '../../src/kernels/router';
import { GgmlType } from '../../src/quant/formats';
import type { BenchCase, PreparedCase } from './measure';
import type { MoeShape } from './models';
import { benchVector, benchWeights, createWeightRing } from './ring';

/** Storage buffers of the FFN kernels besides the slabs (x, routing, slots, hidden/output). */
const FFN_OTHER_STORAGE_BUFFERS = 4;

/** The largest buffer a kernel can bind whole. */
function bindableBytes(device: GPUDevice): number {
  return Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
}

/** 'cycles 1 weight copy', 'cycles 64 weight copies'. */
function cyclesNote(count: number, singular: string, plural: string): string {
  return `cycles ${count} ${count === 1 ? singular : plural}`;
}

export interface MatvecCaseSpec {
  section: string;
  kernel: string;
  rows: number;
  cols: number;
  type: GgmlType;
  ringBytes: number;
}

/** y = W x with W [rows, cols] of `type`. */
export function matvecCase(spec: MatvecCaseSpec): BenchCase {
  const { rows, cols, type, ringBytes } = spec;
  const decoder = quantDecoder(type);
  const bytes = rows * rowBytes(decoder, cols);
  return {
    section: spec.section,
    kernel: spec.kernel,
    shape: `[${rows}, ${cols}]`,
    format: decoder.name,
    bytes,
    async prepare(device: GPUDevice): Promise<PreparedCase> {
      const kernel = await MatvecKernel.create(device, type);
      const ring = createWeightRing(device, {
        sizeBytes: bytes,
        ringBytes,
        maxBufferBytes: bindableBytes(device),
        content: benchWeights(type, rows * cols),
        label: kernel.label,
      });
      const x = createStorageBuffer(device, benchVector(cols, 1), `${kernel.label} x`);
      const y = createEmptyStorageBuffer(device, rows * 4, `${kernel.label} y`);
      const copies = ring.placements.length;
      return {
        recorder: {
          kind: 'pass',
          encode(pass, call) {
            const w = ring.placements[call % copies];
            kernel.encode(pass, { w: w.buffer, x, y }, { rows, cols, wOffsetBytes: w.offsetBytes });
          },
        },
        note: cyclesNote(copies, 'weight copy', 'weight copies'),
        destroy() {
          ring.destroy();
          x.destroy();
          y.destroy();
        },
      };
    },
  };
}

/** The gated expert FFN for one token over topK experts of `model`, all matrices in `type`. */
export function expertFfnCase(section: string, model: MoeShape, type: GgmlType, ringBytes: number): BenchCase {
  const { hidden, expertFfn: ffn, topK } = model;
  const layout = expertSlotLayout({ hidden, ffn, gateUpType: type, downType: type });
  const expertBytes = layout.gate.sizeBytes + layout.up.sizeBytes + layout.down.sizeBytes;
  return {
    section,
    kernel: `expert FFN k=${topK}`,
    shape: `${topK} x [${ffn}, ${hidden}] x 3`,
    format: quantDecoder(type).name,
    bytes: topK * expertBytes,
    async prepare(device: GPUDevice): Promise<PreparedCase> {
      const maxSlabs = Math.min(MAX_SLAB_BINDINGS, device.limits.maxStorageBuffersPerShaderStage - FFN_OTHER_STORAGE_BUFFERS);
      const slot = packExpertSlot(layout, {
        gate: benchWeights(type, ffn * hidden),
        up: benchWeights(type, ffn * hidden),
        down: benchWeights(type, hidden * ffn),
      });
      const slabs = createWeightRing(device, {
        sizeBytes: layout.slotBytes,
        ringBytes,
        minCopies: topK,
        maxBufferBytes: bindableBytes(device),
        maxBuffers: maxSlabs,
        content: slot,
        label: 'expert slab',
      });
      const variant = { layout, activation: 'silu' as const, topK, mode: 'pair-list' as const, slabCount: slabs.buffers.length };
      const kernel = await ExpertFfnKernel.create(device, variant);
      const slots = slabs.placements.length;
      // Call i reads slots i*k .. i*k + k - 1 (wrapping), so consecutive calls read different experts.
      const calls = Math.max(1, Math.floor(slots / topK));
      const slotRef = (s: number): ExpertSlotRef => {
        const placement = slabs.placements[s % slots];
        return { slab: placement.bufferIndex, offsetBytes: placement.offsetBytes };
      };
      const routing = packRouting({ ids: Uint32Array.from({ length: topK }, (_, j) => j), weights: new Float32Array(topK).fill(1 / topK) }, 1, topK);
      const shared = {
        x: createStorageBuffer(device, benchVector(hidden, 2), 'ffn x'),
        y: createEmptyStorageBuffer(device, hidden * 4, 'ffn y'),
        routing: createStorageBuffer(device, routing, 'ffn routing'),
        hidden: createEmptyStorageBuffer(device, expertFfnScratchBytes(variant, 1).hidden, 'ffn hidden'),
      };
      const slotLists = Array.from({ length: calls }, (_, call) =>
        createStorageBuffer(device, packSlotRefs(Array.from({ length: topK }, (_, j) => slotRef(call * topK + j))), `ffn slots ${call}`),
      );
      const bindings = slotLists.map((slotList) =>
        kernel.bind({ ...shared, slots: slotList, slabs: slabs.buffers }, { tokens: 1, nRealExperts: model.experts }),
      );
      return {
        recorder: {
          kind: 'pass',
          encode(pass, call) {
            kernel.encode(pass, bindings[call % calls]);
          },
        },
        note: `${cyclesNote(slots, 'expert slot', 'expert slots')} in ${slabs.buffers.length} slab${slabs.buffers.length === 1 ? '' : 's'}`,
        destroy() {
          slabs.destroy();
          slotLists.forEach((b) => b.destroy());
          Object.values(shared).forEach((b) => b.destroy());
        },
      };
    },
  };
}

/** The router of `model` for one token: f32 logits matvec [E, H], softmax, top-k. */
export function routerCase(section: string, model: MoeShape, ringBytes: number): BenchCase {
  const { hidden, experts, topK } = model;
  const bytes = experts * hidden * 4;
  return {
    section,
    kernel: `router + top-${topK}`,
    shape: `[${experts}, ${hidden}]`,
    format: 'f32',
    bytes,
    async prepare(device: GPUDevice): Promise<PreparedCase> {
      const kernel = await RouterKernel.create(device, { weightType: GgmlType.F32, scoring: 'softmax', normalize: model.normalizeRouting });
      const ring = createWeightRing(device, {
        sizeBytes: bytes,
        ringBytes,
        maxBufferBytes: bindableBytes(device),
        content: benchWeights(GgmlType.F32, experts * hidden),
        label: 'router weights',
      });
      const buffers = {
        x: createStorageBuffer(device, benchVector(hidden, 3), 'router x'),
        logits: createEmptyStorageBuffer(device, experts * 4, 'router logits'),
        routing: createEmptyStorageBuffer(device, routingBytes(1, topK), 'router routing'),
      };
      const bindings = ring.placements.map((w) =>
        kernel.bind(
          { ...buffers, weight: { buffer: w.buffer, offset: w.offsetBytes, size: w.sizeBytes } },
          { tokens: 1, hidden, nExperts: experts, topK },
        ),
      );
      return {
        recorder: {
          kind: 'pass',
          encode(pass, call) {
            kernel.encode(pass, bindings[call % bindings.length]);
          },
        },
        note: cyclesNote(bindings.length, 'weight copy', 'weight copies'),
        destroy() {
          ring.destroy();
          Object.values(buffers).forEach((b) => b.destroy());
        },
      };
    },
  };
}
