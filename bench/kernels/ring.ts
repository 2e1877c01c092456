/**
 * Weight rings: several copies of the same bytes at distinct addresses, which
 * a case cycles through call after call. Decode reads each weight once per
 * token, from memory rather than cache; timing the same small matrix again
 * and again would measure the cache instead (an 8 MB matrix fits in a large
 * GPU's L2). The ring's total size (`ringBytes`) is chosen well above any L2.
 *
 * Also the benchmark's weight bytes: random blocks of a format (valid scales,
 * no NaN or subnormal surprises), generated once per format as a tile and
 * repeated, since generating hundreds of MB in JavaScript would dominate a run.
 */

import { alignTo, createEmptyStorageBuffer } from '../../src/gpu/buffers';
import { quantDecoder } from '../../src/kernels/quant-decoders';
import type { GgmlType } from '../../src/quant/formats';
import { mulberry32, randomBlocks, randomNormal } from '../../src/quant/random';

/** Storage buffer binding offsets must be multiples of this (minStorageBufferOffsetAlignment's largest allowed value). */
export const PLACEMENT_ALIGNMENT_BYTES = 256;

/** One copy: a byte range of one of the ring's buffers. */
export interface RingPlacement {
  buffer: GPUBuffer;
  /** Index of `buffer` in the ring's buffers. */
  bufferIndex: number;
  offsetBytes: number;
  sizeBytes: number;
}

export interface WeightRing {
  readonly buffers: readonly GPUBuffer[];
  readonly placements: readonly RingPlacement[];
  destroy(): void;
}

export interface RingSpec {
  /** Bytes of one copy. */
  sizeBytes: number;
  /** Aim for this many bytes in all: floor(ringBytes / copy stride) copies... */
  ringBytes: number;
  /** ...but at least this many (default 1). */
  minCopies?: number;
  /** Largest buffer to create (the binding limit where copies are bound whole). */
  maxBufferBytes: number;
  /** Most buffers to create (fewer copies then); default unlimited. */
  maxBuffers?: number;
  /** Written into every copy when given (zero-padded to a multiple of 4 bytes). */
  content?: Uint8Array;
  label: string;
}

/** How many copies a spec asks for. */
export function ringCopies(spec: Pick<RingSpec, 'sizeBytes' | 'ringBytes' | 'minCopies'>): number {
  const stride = alignTo(spec.sizeBytes, PLACEMENT_ALIGNMENT_BYTES);
  return Math.max(spec.minCopies ?? 1, Math.floor(spec.ringBytes / stride));
}

/** Allocates the copies, packed into as few buffers of at most maxBufferBytes as they fit, and fills them. */
export function createWeightRing(device: GPUDevice, spec: RingSpec): WeightRing {
  const stride = alignTo(spec.sizeBytes, PLACEMENT_ALIGNMENT_BYTES);
  if (spec.sizeBytes > spec.maxBufferBytes) {
    throw new RangeError(`${spec.label}: one copy of ${spec.sizeBytes} bytes exceeds the ${spec.maxBufferBytes}-byte buffer limit`);
  }
  const perBuffer = Math.max(1, Math.floor(spec.maxBufferBytes / stride));
  const copies = Math.min(ringCopies(spec), perBuffer * (spec.maxBuffers ?? Infinity));
  const content = spec.content && padToWords(spec.content);
  const buffers: GPUBuffer[] = [];
  const placements: RingPlacement[] = [];
  for (let first = 0; first < copies; first += perBuffer) {
    const count = Math.min(perBuffer, copies - first);
    const buffer = createEmptyStorageBuffer(device, (count - 1) * stride + spec.sizeBytes, `${spec.label} ring ${buffers.length}`);
    buffers.push(buffer);
    for (let i = 0; i < count; i++) {
      const placement = { buffer, bufferIndex: buffers.length - 1, offsetBytes: i * stride, sizeBytes: spec.sizeBytes };
      if (content) device.queue.writeBuffer(buffer, placement.offsetBytes, content);
      placements.push(placement);
    }
  }
  return { buffers, placements, destroy: () => buffers.forEach((b) => b.destroy()) };
}

function padToWords(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength % 4 === 0) return bytes;
  const padded = new Uint8Array(alignTo(bytes.byteLength, 4));
  padded.set(bytes);
  return padded;
}

/** Elements of the random tile repeated to fill weights: a multiple of every block size (256). */
const TILE_ELEMENTS = 1 << 16;
const WEIGHT_STD = 0.02;
const tiles = new Map<GgmlType, Uint8Array>();

/** Bytes of `elements` weights of `type`: a tile of random blocks, repeated. */
export function benchWeights(type: GgmlType, elements: number): Uint8Array {
  const decoder = quantDecoder(type);
  if (elements % decoder.blockElements !== 0) throw new RangeError(`${decoder.name}: ${elements} elements are not whole blocks`);
  let tile = tiles.get(type);
  if (!tile) {
    tile = randomBlocks(type, TILE_ELEMENTS, mulberry32(type + 1), WEIGHT_STD);
    tiles.set(type, tile);
  }
  const bytes = new Uint8Array((elements / decoder.blockElements) * decoder.blockBytes);
  for (let offset = 0; offset < bytes.byteLength; offset += tile.byteLength) {
    bytes.set(tile.subarray(0, Math.min(tile.byteLength, bytes.byteLength - offset)), offset);
  }
  return bytes;
}

/** A random f32 activation vector (seeded). */
export function benchVector(length: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length }, () => randomNormal(rng));
}
