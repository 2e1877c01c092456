import { it, expect } from 'vitest';
import { createEmptyStorageBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import { submitComputePass } from '../../src/gpu/dispatch';
import { createComputePipeline } from '../../src/gpu/pipelines';
import { acquireTestGpu } from './support/gpu';

it('scratch trig accuracy', async () => {
  const { device } = await acquireTestGpu();
  const code = `
override HD: u32 = 4u;
var<workgroup> tmp: array<f32, HD * 2u>;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = gid.x;
  tmp[lid % (HD*2u)] = 1.0;
  workgroupBarrier();
  if (i < arrayLength(&x)) { y[2u*i] = cos(x[i]) * tmp[0]; y[2u*i+1u] = sin(x[i]); }
}`;
  const pipeline = await createComputePipeline(device, { label: 't', code, bindings: ['read-only-storage', 'storage'], constants: { HD: 8 } });
  const n = 4096;
  for (const range of [Math.PI, 100, 10000]) {
    const x = Float32Array.from({ length: n }, (_, i) => Math.fround(-range + (2 * range * i) / n));
    const xb = createStorageBuffer(device, x); const yb = createEmptyStorageBuffer(device, n * 8);
    submitComputePass(device, 't', (pass) => { pass.setPipeline(pipeline); pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: xb } }, { binding: 1, resource: { buffer: yb } }] })); pass.dispatchWorkgroups(n / 64); });
    const y = await readFloat32(device, yb, 2 * n);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[2 * i] - Math.cos(x[i])), Math.abs(y[2 * i + 1] - Math.sin(x[i])));
    console.log(`range ${range}: worst abs err ${worst}`);
  }
  expect(1).toBe(1);
});
