/**
 * Where expert weights live on the GPU, as data the expert FFN kernels read:
 *
 * - A SLOT holds one expert of one layer: its gate, up and down matrices
 *   back to back in their GGUF block formats (and gpt-oss's f32 biases after
 *   them), described by an ExpertSlotLayout. Slots have a fixed size
 *   (`slotBytes`), so a slab of N bytes holds floor(N / slotBytes) of them.
 * - A SLAB is one GPUBuffer (at most maxStorageBufferBindingSize) of slots.
 *   The FFN binds several slabs at once and is told per expert which slab and
 *   byte offset to read: an ExpertSlotRef.
 * - Slot refs reach the kernel as 2 words {slab, offsetBytes} each, either
 *   per routed (token, rank) pair ("pair list", written after reading the
 *   routing back) or per (layer, expert) ("expert table", read on the GPU
 *   with the router's ids: no readback when every expert is resident).
 *   slab = NO_SLAB marks an expert that contributes nothing.
 * - For prefill, a GROUP LIST gathers the routed pairs by expert, in tiles,
 *   so that each expert's weights are read once per tile of tokens.
 */

import { alignTo } from '../gpu/buffers';
import { ggmlTypeName } from '../quant/formats';
import type { GgmlType } from '../quant/formats';
import { quantDecoder, rowBytes } from './quant-decoders';

/** Slab index meaning "no expert here": the pair contributes nothing. */
export const NO_SLAB = 0xffffffff;

/** Slot sizes and offsets are multiples of this (writeBuffer and f32 reads need 4; 256 is the binding offset alignment). */
export const SLOT_ALIGNMENT_BYTES = 256;

export interface ByteRange {
  offsetBytes: number;
  sizeBytes: number;
}

export interface ExpertSlotSpec {
  /** Model width H: row length of gate and up, row count of down. */
  hidden: number;
  /** Expert FFN width F: row count of gate and up, row length of down. */
  ffn: number;
  /** Block format of the gate and up matrices (the kernel reads both with one decoder). */
  gateUpType: GgmlType;
  /** Block format of the down matrix. */
  downType: GgmlType;
  /** Whether the expert has f32 biases for gate [F], up [F] and down [H] (gpt-oss). */
  hasBiases?: boolean;
}

/**
 * Byte layout of one expert slot, offsets from the slot's start:
 *   gate  [F rows of H]  gateUpType
 *   up    [F rows of H]  gateUpType
 *   down  [H rows of F]  downType
 *   biases (optional)    f32 gate [F], up [F], down [H], each 4-byte aligned
 * then zero padding to slotBytes, a multiple of SLOT_ALIGNMENT_BYTES.
 */
export interface ExpertSlotLayout {
  readonly hidden: number;
  readonly ffn: number;
  readonly gateUpType: GgmlType;
  readonly downType: GgmlType;
  readonly gate: ByteRange;
  readonly up: ByteRange;
  readonly down: ByteRange;
  readonly biases?: { readonly gate: ByteRange; readonly up: ByteRange; readonly down: ByteRange };
  /** Stride between consecutive slots of a slab. */
  readonly slotBytes: number;
}

/** The layout of a slot for `spec`; throws when a matrix row is not a whole number of blocks. */
export function expertSlotLayout(spec: ExpertSlotSpec): ExpertSlotLayout {
  const { hidden, ffn, gateUpType, downType } = spec;
  const gateUpBytes = ffn * rowBytes(quantDecoder(gateUpType, 'expert gate/up'), hidden);
  const downBytes = hidden * rowBytes(quantDecoder(downType, 'expert down'), ffn);
  const gate = { offsetBytes: 0, sizeBytes: gateUpBytes };
  const up = { offsetBytes: gateUpBytes, sizeBytes: gateUpBytes };
  const down = { offsetBytes: 2 * gateUpBytes, sizeBytes: downBytes };
  let end = down.offsetBytes + downBytes;
  let biases: ExpertSlotLayout['biases'];
  if (spec.hasBiases) {
    const gateBias = { offsetBytes: alignTo(end, 4), sizeBytes: ffn * 4 };
    const upBias = { offsetBytes: gateBias.offsetBytes + ffn * 4, sizeBytes: ffn * 4 };
    const downBias = { offsetBytes: upBias.offsetBytes + ffn * 4, sizeBytes: hidden * 4 };
    biases = { gate: gateBias, up: upBias, down: downBias };
    end = downBias.offsetBytes + hidden * 4;
  }
  return { hidden, ffn, gateUpType, downType, gate, up, down, biases, slotBytes: alignTo(end, SLOT_ALIGNMENT_BYTES) };
}

/** One expert's tensors as stored in GGUF: raw block bytes, and f32 biases when the model has them. */
export interface ExpertTensors {
  gate: Uint8Array;
  up: Uint8Array;
  down: Uint8Array;
  gateBias?: Float32Array;
  upBias?: Float32Array;
  downBias?: Float32Array;
}

/** The bytes of one slot (slotBytes long) holding `tensors` per `layout`. */
export function packExpertSlot(layout: ExpertSlotLayout, tensors: ExpertTensors): Uint8Array {
  const slot = new Uint8Array(layout.slotBytes);
  const place = (bytes: Uint8Array, range: ByteRange, what: string): void => {
    if (bytes.byteLength !== range.sizeBytes) {
      throw new RangeError(`expert ${what} has ${bytes.byteLength} bytes, the slot layout expects ${range.sizeBytes}`);
    }
    slot.set(bytes, range.offsetBytes);
  };
  place(tensors.gate, layout.gate, `gate (${ggmlTypeName(layout.gateUpType)})`);
  place(tensors.up, layout.up, `up (${ggmlTypeName(layout.gateUpType)})`);
  place(tensors.down, layout.down, `down (${ggmlTypeName(layout.downType)})`);
  const given = [tensors.gateBias, tensors.upBias, tensors.downBias];
  if (!layout.biases) {
    if (given.some((b) => b !== undefined)) throw new Error('this slot layout has no biases, but biases were given');
    return slot;
  }
  const [gateBias, upBias, downBias] = given;
  if (!gateBias || !upBias || !downBias) throw new Error('this slot layout needs gate, up and down biases');
  const asBytes = (values: Float32Array): Uint8Array => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  place(asBytes(gateBias), layout.biases.gate, 'gate bias');
  place(asBytes(upBias), layout.biases.up, 'up bias');
  place(asBytes(downBias), layout.biases.down, 'down bias');
  return slot;
}

/** How many slots of `layout` fit in a slab of `slabBytes`. */
export function slotsPerSlab(layout: ExpertSlotLayout, slabBytes: number): number {
  return Math.floor(slabBytes / layout.slotBytes);
}

/** Bytes of one packed slot ref: {slab, offsetBytes} as two u32. */
export const SLOT_REF_BYTES = 8;

/** Where one expert's slot is: a slab (index into the kernel's slab bindings) and a byte offset in it. */
export interface ExpertSlotRef {
  slab: number;
  offsetBytes: number;
}

/**
 * Slot refs as the kernel reads them, 2 words each; `undefined` becomes
 * {NO_SLAB, 0}. Used for a pair list ([tokens * topK] refs, pair p = t * topK + j)
 * and for an expert table ([layers * nExperts] refs, layer-major).
 */
export function packSlotRefs(refs: ReadonlyArray<ExpertSlotRef | undefined>): Uint32Array {
  const words = new Uint32Array((Math.max(1, refs.length) * SLOT_REF_BYTES) / 4);
  refs.forEach((ref, i) => {
    if (!ref) {
      words[2 * i] = NO_SLAB;
      return;
    }
    checkSlotRef(ref);
    words[2 * i] = ref.slab;
    words[2 * i + 1] = ref.offsetBytes;
  });
  return words;
}

function checkSlotRef(ref: ExpertSlotRef): void {
  if (!Number.isInteger(ref.slab) || ref.slab < 0 || ref.slab >= NO_SLAB) throw new RangeError(`slab index ${ref.slab} is invalid`);
  if (!Number.isInteger(ref.offsetBytes) || ref.offsetBytes < 0 || ref.offsetBytes > 0xffffffff || ref.offsetBytes % 4 !== 0) {
    throw new RangeError(`slot offset ${ref.offsetBytes} must be a 4-byte aligned u32`);
  }
}

/** The routed pairs (p = t * topK + j) of one expert, at most one tile of them. */
export interface ExpertPairGroup {
  expert: number;
  /** Ascending pair indices. */
  pairs: number[];
}

/**
 * Gathers routed pairs by expert for prefill: experts in ascending id order,
 * each expert's pairs ascending and cut into groups of at most `tile`. Pairs
 * routed to ids >= nRealExperts (null experts) are left out.
 */
export function groupPairsByExpert(ids: Uint32Array, nRealExperts: number, tile: number): ExpertPairGroup[] {
  if (!Number.isInteger(tile) || tile < 1) throw new RangeError(`tile must be an integer >= 1, got ${tile}`);
  const byExpert = new Map<number, number[]>();
  ids.forEach((expert, pair) => {
    if (expert >= nRealExperts) return;
    let pairs = byExpert.get(expert);
    if (!pairs) byExpert.set(expert, (pairs = []));
    pairs.push(pair);
  });
  const groups: ExpertPairGroup[] = [];
  for (const expert of [...byExpert.keys()].sort((a, b) => a - b)) {
    const pairs = byExpert.get(expert)!;
    for (let start = 0; start < pairs.length; start += tile) groups.push({ expert, pairs: pairs.slice(start, start + tile) });
  }
  return groups;
}

/** Words of a group list with room for `maxPairs` routed pairs (each group holds at least one). */
export function groupListWords(maxPairs: number): number {
  return GROUP_HEADER_WORDS + maxPairs * (GROUP_RECORD_WORDS + 1);
}

const GROUP_HEADER_WORDS = 4;
const GROUP_RECORD_WORDS = 4;

/**
 * The group list as the kernels read it:
 *   words 0..3                header: group count, then 3 zero words
 *   4 + 4g .. 4 + 4g + 3      group g: slab, slot offset in bytes, index of
 *                             its first pair in the whole list, pair count
 *   then                      the pair indices of every group, in order
 * An expert `slotOf` does not know (undefined) gets slab NO_SLAB: its pairs
 * produce zeros.
 */
export function packGroupList(groups: readonly ExpertPairGroup[], slotOf: (expert: number) => ExpertSlotRef | undefined): Uint32Array {
  const pairCount = groups.reduce((n, g) => n + g.pairs.length, 0);
  const words = new Uint32Array(GROUP_HEADER_WORDS + groups.length * GROUP_RECORD_WORDS + pairCount);
  words[0] = groups.length;
  let next = GROUP_HEADER_WORDS + groups.length * GROUP_RECORD_WORDS;
  groups.forEach((group, g) => {
    if (group.pairs.length === 0) throw new RangeError(`group ${g} (expert ${group.expert}) has no pairs`);
    const ref = slotOf(group.expert);
    if (ref) checkSlotRef(ref);
    const record = GROUP_HEADER_WORDS + g * GROUP_RECORD_WORDS;
    words[record] = ref ? ref.slab : NO_SLAB;
    words[record + 1] = ref ? ref.offsetBytes : 0;
    words[record + 2] = next;
    words[record + 3] = group.pairs.length;
    words.set(group.pairs, next);
    next += group.pairs.length;
  });
  return words;
}

/** The most pairs in any group of `groups` (the kernel's tile must hold them). */
export function largestGroup(groups: readonly ExpertPairGroup[]): number {
  return groups.reduce((m, g) => Math.max(m, g.pairs.length), 0);
}

/** A key per slot layout: layers with equal keys share slab pools and FFN pipelines. */
export function layoutKey(layout: ExpertSlotLayout): string {
  return `${layout.hidden}x${layout.ffn}:${layout.gateUpType}/${layout.downType}:${layout.slotBytes}`;
}
