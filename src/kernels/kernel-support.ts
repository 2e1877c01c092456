/**
 * What the kernel wrappers share: argument checks with readable errors, and
 * recording one dispatch whose bind group is a uniform block at binding 0
 * followed by storage buffers at bindings 1, 2, ...
 */

import { asBufferBinding } from '../gpu/buffers';
import { uniformBinding } from '../gpu/uniform-arena';
import type { BufferRef } from '../gpu/buffers';
import { countDispatch } from '../gpu/cost-counter';
import { workgroupGrid } from '../gpu/dispatch';

/** Throws a RangeError unless `value` is an integer >= `min`. */
export function checkInteger(value: number, name: string, min = 0): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
}

/** Throws a RangeError unless `size` is a power of two in [1, maxInvocations]. */
export function checkPowerOfTwoWorkgroup(size: number, maxInvocations: number, kernel: string): void {
  const isPowerOfTwo = Number.isInteger(size) && size > 0 && (size & (size - 1)) === 0;
  if (!isPowerOfTwo || size > maxInvocations) {
    throw new RangeError(`${kernel} workgroup size must be a power of two <= ${maxInvocations}, got ${size}`);
  }
}

/** Throws a RangeError unless `size` is an integer in [1, maxInvocations]. */
export function checkWorkgroupSize(size: number, maxInvocations: number, kernel: string): void {
  if (!Number.isInteger(size) || size < 1 || size > maxInvocations) {
    throw new RangeError(`${kernel} workgroup size must be an integer in [1, ${maxInvocations}], got ${size}`);
  }
}

/** Throws a RangeError when an index computed in the shader could pass 2^32 - 1. */
export function checkU32Index(largestIndex: number, what: string): void {
  if (largestIndex > 0xffffffff) throw new RangeError(`${what} overflows the shader's 32-bit indices`);
}

/**
 * Records `pipeline` over `workgroups` workgroups (a count laid out as a 2-D
 * grid by workgroupGrid, or an explicit [x, y]), binding `uniforms` at 0 and
 * `buffers` at 1, 2, ... in order; counted on the device's cost counter as
 * one dispatch reading `weightBytes` of weights.
 */
export function encodeDispatch(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  uniforms: ArrayBuffer,
  buffers: readonly BufferRef[],
  workgroups: number | readonly [number, number],
  weightBytes = 0,
): void {
  const label = pipeline.label;
  const entries: GPUBindGroupEntry[] = [
    { binding: 0, resource: uniformBinding(device, pass, uniforms, `${label} params`) },
    ...buffers.map((buffer, index) => ({ binding: index + 1, resource: asBufferBinding(buffer) })),
  ];
  const bindGroup = device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  const [x, y] = typeof workgroups === 'number' ? workgroupGrid(workgroups, device.limits.maxComputeWorkgroupsPerDimension) : workgroups;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y);
  countDispatch(device, weightBytes);
}
