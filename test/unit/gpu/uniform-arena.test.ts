/**
 * The uniform arena stages each dispatch's parameters at the device's offset
 * alignment, writes them in one writeBuffer per buffer before a submission,
 * reuses its buffers after it, and opens another buffer only when one fills.
 * A fake device records buffer creations and writes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { attachArena, uniformBinding, UniformArena } from '../../../src/gpu/uniform-arena';

interface FakeBuffer {
  label: string;
  size: number;
  destroyed: boolean;
  destroy(): void;
  contents: Uint8Array;
}

function fakeDevice(alignment = 256) {
  const buffers: FakeBuffer[] = [];
  const writes: { buffer: FakeBuffer; bytes: number }[] = [];
  const device = {
    limits: { minUniformBufferOffsetAlignment: alignment },
    createBuffer(d: { label?: string; size: number; mappedAtCreation?: boolean }) {
      const contents = new Uint8Array(d.size);
      const buffer: FakeBuffer & { getMappedRange(): ArrayBuffer; unmap(): void } = {
        label: d.label ?? '',
        size: d.size,
        destroyed: false,
        contents,
        destroy() {
          this.destroyed = true;
        },
        getMappedRange: () => contents.buffer,
        unmap: () => {},
      };
      buffers.push(buffer);
      return buffer;
    },
    queue: {
      writeBuffer(buffer: FakeBuffer, offset: number, data: Uint8Array, dataOffset: number, size: number) {
        buffer.contents.set(data.subarray(dataOffset, dataOffset + size), offset);
        writes.push({ buffer, bytes: size });
      },
    },
  };
  return { device: device as unknown as GPUDevice, buffers, writes };
}

const words = (...values: number[]) => new Uint32Array(values).buffer;

beforeAll(() => {
  // In Node the flags exist only once Dawn is loaded; the arena only passes them through.
  (globalThis as { GPUBufferUsage?: unknown }).GPUBufferUsage ??= { UNIFORM: 64, COPY_DST: 8, MAP_WRITE: 2, COPY_SRC: 4 };
});

describe('UniformArena', () => {
  it('places each struct at the next aligned offset of one buffer and writes them in one call', () => {
    const { device, buffers, writes } = fakeDevice(256);
    const arena = new UniformArena(device);
    const a = arena.alloc(words(1, 2, 3));
    const b = arena.alloc(words(4));
    const c = arena.alloc(words(5, 6, 7, 8, 9));
    expect([a.offset, b.offset, c.offset]).toEqual([0, 256, 512]);
    expect([a.size, b.size, c.size]).toEqual([16, 16, 32]);
    expect(buffers).toHaveLength(1);
    expect(a.buffer).toBe(b.buffer);
    expect(arena.flush()).toBe(512 + 32);
    expect(writes).toHaveLength(1);
    const contents = new Uint32Array((a.buffer as unknown as FakeBuffer).contents.buffer);
    expect([...contents.subarray(0, 4)]).toEqual([1, 2, 3, 0]);
    expect(contents[64]).toBe(4);
    expect([...contents.subarray(128, 133)]).toEqual([5, 6, 7, 8, 9]);
  });

  it('reuses its buffers after a submission and opens another only when one is full', () => {
    const { device, buffers, writes } = fakeDevice(256);
    const arena = new UniformArena(device);
    for (let i = 0; i < 256; i++) arena.alloc(words(i));
    expect(buffers).toHaveLength(1);
    const spilled = arena.alloc(words(999));
    expect(buffers).toHaveLength(2);
    expect(spilled.offset).toBe(0);
    expect(arena.flush()).toBe(256 * 256 - 240 + 16);
    expect(writes).toHaveLength(2);
    arena.submitted();
    const again = arena.alloc(words(7));
    expect(again.buffer).toBe(buffers[0]);
    expect(again.offset).toBe(0);
    expect(buffers).toHaveLength(2);
    arena.destroy();
    expect(buffers.every((b) => b.destroyed)).toBe(true);
    expect(() => arena.alloc(words(1))).toThrow(/destroyed/);
  });

  it('serves passes it is attached to; other passes get a buffer of their own per dispatch', () => {
    const { device, buffers } = fakeDevice(256);
    const arena = new UniformArena(device);
    const attached = {} as GPUComputePassEncoder;
    const loose = {} as GPUComputePassEncoder;
    attachArena(attached, arena);
    const x = uniformBinding(device, attached, words(1));
    const y = uniformBinding(device, attached, words(2));
    expect(x.buffer).toBe(y.buffer);
    expect(buffers).toHaveLength(1);
    const z = uniformBinding(device, loose, words(3));
    expect(z.buffer).not.toBe(x.buffer);
    expect(z.offset).toBeUndefined();
    expect(buffers).toHaveLength(2);
  });
});
