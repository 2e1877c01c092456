/**
 * Slots of one expert layout in slab buffers: the one allocator behind both
 * the resident experts (every expert of every layer of that layout, placed
 * layer by layer) and the expert cache (its `capacity` slots). Slabs are of
 * equal size, as few as the slab limit allows; slot i lies in slab
 * `places[i].slab` at `places[i].offsetBytes`.
 */

import { slotsPerSlab } from '../kernels/expert-slots';
import type { ExpertSlotLayout, ExpertSlotRef } from '../kernels/expert-slots';

export class SlabPool {
  readonly slabs: GPUBuffer[] = [];
  readonly places: ExpertSlotRef[] = [];

  constructor(
    device: GPUDevice,
    readonly layout: ExpertSlotLayout,
    /** Slots to make. */
    readonly count: number,
    slabLimitBytes: number,
    label: string,
  ) {
    const perSlab = slotsPerSlab(layout, slabLimitBytes);
    // Callers check this first, with an error in their own terms.
    if (perSlab < 1) throw new RangeError(`an expert slot of ${layout.slotBytes} bytes exceeds the ${slabLimitBytes}-byte slab limit`);
    const slabCount = Math.max(1, Math.ceil(count / perSlab));
    const perEach = Math.ceil(count / slabCount);
    for (let s = 0, slot = 0; s < slabCount; s++) {
      const inThis = Math.min(perEach, count - slot);
      this.slabs.push(device.createBuffer({
        label: `${label} ${s}`,
        size: Math.max(1, inThis) * layout.slotBytes,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      }));
      for (let i = 0; i < inThis; i++, slot++) this.places.push({ slab: s, offsetBytes: i * layout.slotBytes });
    }
  }

  /** GPU bytes of the slabs. */
  get bytes(): number {
    return this.slabs.reduce((sum, b) => sum + b.size, 0);
  }

  destroy(): void {
    this.slabs.forEach((b) => b.destroy());
  }
}
