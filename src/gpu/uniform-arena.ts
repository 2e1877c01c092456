/**
 * One parameter arena for a forward pass: every dispatch's uniform struct is
 * copied into a CPU-side staging block at the device's uniform offset
 * alignment and bound as a range of a few long-lived uniform buffers, and
 * the staged bytes go to the GPU in one queue.writeBuffer per buffer just
 * before each submission. Without it each dispatch created (and left to the
 * garbage collector) a small mapped buffer of its own: a hundred buffer
 * creations per decode token.
 *
 * Reuse is safe across submissions: writeBuffer and submit are ordered on the
 * queue, so the write for the next submission lands after the previous one
 * has read the old bytes. Within one submission nothing is overwritten: the
 * arena only appends until `submitted()` resets it.
 *
 * Kernels find the arena through the pass they encode into (`attachArena`);
 * a pass without one (a one-off test dispatch) gets a buffer per dispatch.
 */

import { createUniformBuffer } from './buffers';

/** Bytes of one arena buffer: 256 dispatches at the usual 256-byte alignment. */
const CHUNK_BYTES = 64 * 1024;

interface Chunk {
  buffer: GPUBuffer;
  staging: Uint8Array;
  usedBytes: number;
}

export class UniformArena {
  private readonly chunks: Chunk[] = [];
  private current = 0;
  private destroyed = false;

  constructor(private readonly device: GPUDevice, private readonly label = 'uniform arena') {}

  /** Buffers this arena holds (for accounting). */
  get bufferCount(): number {
    return this.chunks.length;
  }

  /** Stages `data` and returns the range it will occupy once flushed. */
  alloc(data: BufferSource): GPUBufferBinding {
    if (this.destroyed) throw new Error(`${this.label} was destroyed`);
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
    if (size > CHUNK_BYTES) throw new RangeError(`a uniform struct of ${bytes.byteLength} bytes exceeds the arena's ${CHUNK_BYTES}-byte buffers`);
    let chunk = this.chunks[this.current];
    let offset = chunk ? alignUp(chunk.usedBytes, this.device.limits.minUniformBufferOffsetAlignment) : 0;
    if (!chunk || offset + size > CHUNK_BYTES) {
      if (chunk) this.current++;
      chunk = this.chunks[this.current] ??= this.newChunk();
      offset = 0;
    }
    chunk.staging.set(bytes, offset);
    chunk.staging.fill(0, offset + bytes.byteLength, offset + size);
    chunk.usedBytes = offset + size;
    return { buffer: chunk.buffer, offset, size };
  }

  /** Writes what was staged since the last submission; call right before queue.submit. Returns the bytes written. */
  flush(): number {
    let written = 0;
    for (const chunk of this.chunks) {
      if (chunk.usedBytes === 0) continue;
      this.device.queue.writeBuffer(chunk.buffer, 0, chunk.staging, 0, chunk.usedBytes);
      written += chunk.usedBytes;
    }
    return written;
  }

  /** After queue.submit: the next submission's parameters start over in the same buffers. */
  submitted(): void {
    for (const chunk of this.chunks) chunk.usedBytes = 0;
    this.current = 0;
  }

  destroy(): void {
    this.destroyed = true;
    for (const chunk of this.chunks) chunk.buffer.destroy();
    this.chunks.length = 0;
  }

  private newChunk(): Chunk {
    const buffer = this.device.createBuffer({ label: `${this.label} ${this.chunks.length}`, size: CHUNK_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    return { buffer, staging: new Uint8Array(CHUNK_BYTES), usedBytes: 0 };
  }
}

const arenas = new WeakMap<GPUComputePassEncoder, UniformArena>();

/** Kernels encoding into `pass` stage their parameters in `arena`. */
export function attachArena(pass: GPUComputePassEncoder, arena: UniformArena): void {
  arenas.set(pass, arena);
}

/** The binding of one dispatch's uniform struct: a range of the pass's arena, or a buffer of its own. */
export function uniformBinding(device: GPUDevice, pass: GPUComputePassEncoder, data: BufferSource, label?: string): GPUBufferBinding {
  const arena = arenas.get(pass);
  return arena ? arena.alloc(data) : { buffer: createUniformBuffer(device, data, label) };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
