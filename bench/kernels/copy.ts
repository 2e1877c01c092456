/**
 * The roofline: copying as many bytes as a kernel reads, by the two plainest
 * means the adapter offers: copyBufferToBuffer, and a compute kernel that
 * copies u32 words (bench/kernels/copy_u32.wgsl). A kernel's GB/s is
 * compared with the faster of the two at the same byte count, so that the
 * fixed cost of a dispatch weighs on both alike.
 *
 * A copy's GB/s counts the bytes it reads, as a kernel's does; it also writes
 * as many, so a read-only kernel may pass 1.0x of it.
 */

import { createUniformBuffer, packUniformScalars } from '../../src/gpu/buffers';
import { ceilDiv, workgroupGrid } from '../../src/gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../../src/gpu/pipelines';
import copyWgsl from './copy_u32.wgsl?raw';
import { COPY_BUFFER_KERNEL, COPY_COMPUTE_KERNEL, ROOFLINE_SECTION } from './measure';
import type { BenchCase, PreparedCase } from './measure';
import { createWeightRing, PLACEMENT_ALIGNMENT_BYTES } from './ring';
import type { RingPlacement } from './ring';

const COPY_WORKGROUP_SIZE = 256;

/** Source and destination rings of `bytes`-sized copies, in buffers of at most `maxBufferBytes`. */
function copyRings(device: GPUDevice, bytes: number, ringBytes: number, maxBufferBytes: number) {
  const spec = { sizeBytes: bytes, ringBytes, maxBufferBytes };
  return {
    sources: createWeightRing(device, { ...spec, label: `copy ${bytes} source` }),
    targets: createWeightRing(device, { ...spec, label: `copy ${bytes} target` }),
  };
}

function ringNote(copies: number): string {
  return `${copies} src/dst pair${copies === 1 ? '' : 's'}`;
}

export function copyBufferCase(bytes: number, ringBytes: number): BenchCase {
  return {
    section: ROOFLINE_SECTION,
    kernel: COPY_BUFFER_KERNEL,
    shape: `${bytes} B`,
    format: '-',
    bytes,
    async prepare(device: GPUDevice): Promise<PreparedCase> {
      const { sources, targets } = copyRings(device, bytes, ringBytes, device.limits.maxBufferSize);
      const copies = sources.placements.length;
      return {
        recorder: {
          kind: 'commands',
          encode(encoder, call) {
            const from = sources.placements[call % copies];
            const to = targets.placements[call % copies];
            encoder.copyBufferToBuffer(from.buffer, from.offsetBytes, to.buffer, to.offsetBytes, bytes);
          },
        },
        note: ringNote(copies),
        destroy() {
          sources.destroy();
          targets.destroy();
        },
      };
    },
  };
}

/** The copy kernel's bind groups for one placement pair, in chunks the binding size limit allows. */
function chunkBindGroups(device: GPUDevice, pipeline: GPUComputePipeline, from: RingPlacement, to: RingPlacement, chunkBytes: number) {
  const groups: { group: GPUBindGroup; words: number }[] = [];
  for (let start = 0; start < from.sizeBytes; start += chunkBytes) {
    const size = Math.min(chunkBytes, from.sizeBytes - start);
    const words = ceilDiv(size, 4);
    const params = createUniformBuffer(device, packUniformScalars([['u32', words]]), `${pipeline.label} params`);
    groups.push({
      words,
      group: device.createBindGroup({
        label: pipeline.label,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: params } },
          { binding: 1, resource: { buffer: from.buffer, offset: from.offsetBytes + start, size: words * 4 } },
          { binding: 2, resource: { buffer: to.buffer, offset: to.offsetBytes + start, size: words * 4 } },
        ],
      }),
    });
  }
  return groups;
}

export function computeCopyCase(bytes: number, ringBytes: number): BenchCase {
  return {
    section: ROOFLINE_SECTION,
    kernel: COPY_COMPUTE_KERNEL,
    shape: `${bytes} B`,
    format: '-',
    bytes,
    async prepare(device: GPUDevice): Promise<PreparedCase> {
      const pipeline = await pipelineCacheFor(device).getOrCreate({ op: 'bench_copy_u32', wg: COPY_WORKGROUP_SIZE }, (label) =>
        createComputePipeline(device, {
          label,
          code: copyWgsl,
          bindings: ['uniform', 'read-only-storage', 'storage'],
          constants: { WG: COPY_WORKGROUP_SIZE },
        }),
      );
      const { sources, targets } = copyRings(device, bytes, ringBytes, device.limits.maxBufferSize);
      // Chunks start at aligned offsets within a placement, so every binding offset stays aligned.
      const chunkBytes = Math.floor(device.limits.maxStorageBufferBindingSize / PLACEMENT_ALIGNMENT_BYTES) * PLACEMENT_ALIGNMENT_BYTES;
      const perCopy = sources.placements.map((from, i) => chunkBindGroups(device, pipeline, from, targets.placements[i], chunkBytes));
      const maxPerDimension = device.limits.maxComputeWorkgroupsPerDimension;
      return {
        recorder: {
          kind: 'pass',
          encode(pass, call) {
            pass.setPipeline(pipeline);
            for (const { group, words } of perCopy[call % perCopy.length]) {
              pass.setBindGroup(0, group);
              pass.dispatchWorkgroups(...workgroupGrid(ceilDiv(words, COPY_WORKGROUP_SIZE), maxPerDimension));
            }
          },
        },
        note: ringNote(perCopy.length),
        destroy() {
          sources.destroy();
          targets.destroy();
        },
      };
    },
  };
}
