/**
 * Buffer helpers: storage and uniform buffers created from typed arrays, and
 * reading a buffer back to the CPU. WebGPU wants buffer sizes and copy sizes
 * in multiples of 4 bytes, so sizes are rounded up here and data is padded
 * with zeros. Buffers made with data count as uploads on the device's cost
 * counter (cost-counter.ts).
 */

import { costCounterOf } from './cost-counter';

/**
 * Usage of every storage buffer made here. A function, not a constant: in Node,
 * GPUBufferUsage exists only once nodeGpu() has installed it.
 */
function storageUsage(): GPUBufferUsageFlags {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

export function alignTo(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

type BufferSource = ArrayBuffer | ArrayBufferView;

function bytesOf(data: BufferSource): Uint8Array {
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A buffer whose contents are `data`, zero-padded to a multiple of `alignmentBytes`. */
function createBufferWithData(
  device: GPUDevice,
  data: BufferSource,
  usage: GPUBufferUsageFlags,
  alignmentBytes: number,
  label?: string,
): GPUBuffer {
  const bytes = bytesOf(data);
  const buffer = device.createBuffer({
    label,
    size: Math.max(alignmentBytes, alignTo(bytes.byteLength, alignmentBytes)),
    usage,
    mappedAtCreation: true,
  });
  new Uint8Array(buffer.getMappedRange()).set(bytes);
  buffer.unmap();
  costCounterOf(device).upload(bytes.byteLength);
  return buffer;
}

/** Storage buffer (also a copy source and destination) holding `data`. */
export function createStorageBuffer(device: GPUDevice, data: BufferSource, label?: string): GPUBuffer {
  return createBufferWithData(device, data, storageUsage(), 4, label);
}

/** Zero-filled storage buffer (also a copy source and destination) of at least `sizeBytes`. */
export function createEmptyStorageBuffer(device: GPUDevice, sizeBytes: number, label?: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, alignTo(sizeBytes, 4)), usage: storageUsage() });
}

/** Uniform buffer holding `data`, padded to 16 bytes as uniform structs are. */
export function createUniformBuffer(device: GPUDevice, data: BufferSource, label?: string): GPUBuffer {
  return createBufferWithData(device, data, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 16, label);
}

export type UniformScalar = readonly ['u32' | 'i32' | 'f32', number];

/**
 * Packs scalars, 4 bytes each in order, into the bytes of a WGSL uniform
 * struct made of u32/i32/f32 fields only (so no field needs padding).
 */
export function packUniformScalars(fields: readonly UniformScalar[]): ArrayBuffer {
  const bytes = new ArrayBuffer(alignTo(Math.max(1, fields.length) * 4, 16));
  const view = new DataView(bytes);
  fields.forEach(([type, value], index) => {
    const offset = index * 4;
    if (type === 'f32') view.setFloat32(offset, value, true);
    else if (type === 'i32') view.setInt32(offset, checkedInteger(value, -(2 ** 31), 2 ** 31 - 1), true);
    else view.setUint32(offset, checkedInteger(value, 0, 2 ** 32 - 1), true);
  });
  return bytes;
}

function checkedInteger(value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`uniform value ${value} is not an integer in [${min}, ${max}]`);
  }
  return value;
}

export interface ReadRange {
  offsetBytes?: number;
  /** Defaults to the rest of the buffer after offsetBytes. */
  sizeBytes?: number;
}

/**
 * Copies part of `buffer` (which needs COPY_SRC usage) into a new ArrayBuffer.
 * Work already submitted to the queue is finished first, as the copy is
 * ordered after it. Offsets and sizes must be multiples of 4.
 */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, range: ReadRange = {}): Promise<ArrayBuffer> {
  const offsetBytes = range.offsetBytes ?? 0;
  const sizeBytes = range.sizeBytes ?? buffer.size - offsetBytes;
  if (offsetBytes % 4 !== 0 || sizeBytes % 4 !== 0) {
    throw new RangeError(`readBuffer needs 4-byte multiples, got offset ${offsetBytes} and size ${sizeBytes}`);
  }
  const staging = device.createBuffer({
    label: `${buffer.label || 'buffer'} readback`,
    size: Math.max(4, sizeBytes),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const encoder = device.createCommandEncoder({ label: 'readBuffer' });
    encoder.copyBufferToBuffer(buffer, offsetBytes, staging, 0, sizeBytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, sizeBytes);
    // slice() copies: the mapped range is detached by unmap().
    return staging.getMappedRange(0, sizeBytes).slice(0);
  } finally {
    staging.destroy();
  }
}

/** The first `count` f32 values of `buffer`. */
export async function readFloat32(device: GPUDevice, buffer: GPUBuffer, count: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, { sizeBytes: count * 4 }));
}

/** A whole buffer, or a byte range of one, to bind or check. */
export type BufferRef = GPUBuffer | GPUBufferBinding;

export function asBufferBinding(ref: BufferRef): GPUBufferBinding {
  return 'buffer' in ref ? ref : { buffer: ref };
}

/** Bytes a binding of `ref` can see: its explicit size or the rest of the buffer. */
export function bindingSizeBytes(ref: BufferRef): number {
  const binding = asBufferBinding(ref);
  return binding.size ?? binding.buffer.size - (binding.offset ?? 0);
}

/** Throws a RangeError naming `what` when `ref` holds fewer than `neededBytes`. */
export function checkBindingSize(ref: BufferRef, neededBytes: number, what: string): void {
  const available = bindingSizeBytes(ref);
  if (available < neededBytes) {
    throw new RangeError(`${what} needs ${neededBytes} bytes but its binding holds ${available}`);
  }
}
