import { it } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { submitComputePass } from '../../src/gpu/dispatch';
import { ExpertFfnKernel, expertFfnScratchBytes } from '../../src/kernels/expert-ffn';
import { expertSlotLayout, packSlotRefs } from '../../src/kernels/expert-slots';
import { packRouting } from '../../src/kernels/router';
import { GgmlType } from '../../src/quant/formats';
import { acquireTestGpu } from './support/gpu';

it('profile', async () => {
  const { device } = await acquireTestGpu();
  for (const [t, tpr, k, slabs] of [[GgmlType.Q4_K, 8, 8, 2], [GgmlType.F32, 8, 8, 2]] as const) {
    const layout = expertSlotLayout({ hidden: 256, ffn: 256, gateUpType: t, downType: t });
    const variant = { layout, topK: k, mode: 'pair-list' as const, activation: 'silu' as const, slabCount: slabs, threadsPerRow: tpr };
    let t0 = performance.now();
    const kernel = await ExpertFfnKernel.create(device, variant);
    const compileMs = performance.now() - t0;
    const slab = createEmptyStorageBuffer(device, layout.slotBytes * 8);
    const routing = packRouting({ ids: Uint32Array.from({ length: k }, (_, i) => i), weights: new Float32Array(k).fill(0.1) }, 1, k);
    const binding = kernel.bind({
      x: createEmptyStorageBuffer(device, 256 * 4), y: createEmptyStorageBuffer(device, 256 * 4),
      routing: createStorageBuffer(device, routing), slots: createStorageBuffer(device, packSlotRefs(Array.from({ length: k }, (_, i) => ({ slab: i % 2, offsetBytes: 0 })))),
      hidden: createEmptyStorageBuffer(device, expertFfnScratchBytes(variant, 1).hidden), slabs: Array.from({length: slabs}, () => slab),
    }, { tokens: 1, nRealExperts: 8 });
    const y = binding;
    const times: number[] = [];
    const kk = kernel as any;
    for (const [pipe, group, n] of [[kk.gateUpPipeline, binding.gateUpGroup, k * 64], [kk.downPipeline, binding.downGroup, 32], [kk.gateUpPipeline, binding.gateUpGroup, k * 64], [kk.downPipeline, binding.downGroup, 32]]) {
      t0 = performance.now();
      submitComputePass(device, 'p', (pass) => { pass.setPipeline(pipe); pass.setBindGroup(0, group); pass.dispatchWorkgroups(n); });
      await device.queue.onSubmittedWorkDone();
      times.push(performance.now() - t0);
    }
    console.log(`slabs ${slabs} type ${t} k ${k} tpr ${tpr}: compile ${compileMs.toFixed(0)} ms, run ${times.map((x) => x.toFixed(1)).join(' ')} ms`);
    void y; void readFloat32;
  }
});
