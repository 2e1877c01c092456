/**
 * Dispatch geometry: turning a count of workgroups into a grid that respects
 * maxComputeWorkgroupsPerDimension (65,535 by default).
 */

import { attachArena, UniformArena } from './uniform-arena';

export function ceilDiv(numerator: number, denominator: number): number {
  return Math.floor((numerator + denominator - 1) / denominator);
}

/**
 * A 2-D grid [x, y] holding at least `workgroups` workgroups, with x at most
 * `maxPerDimension`. Shaders recover the linear workgroup index as
 * `wid.y * num_workgroups.x + wid.x` and must ignore indices past the count,
 * since x * y may exceed it.
 */
export function workgroupGrid(workgroups: number, maxPerDimension = 65535): [number, number] {
  if (!Number.isInteger(workgroups) || workgroups < 0) {
    throw new RangeError(`workgroup count must be a non-negative integer, got ${workgroups}`);
  }
  if (workgroups <= maxPerDimension) return [workgroups, 1];
  const y = ceilDiv(workgroups, maxPerDimension);
  if (y > maxPerDimension) {
    throw new RangeError(`${workgroups} workgroups exceed a ${maxPerDimension}^2 grid`);
  }
  return [ceilDiv(workgroups, y), y];
}

/**
 * Records one compute pass with `record` and submits it. Convenient for
 * one-off work and tests; a forward pass records many kernels into one pass.
 */
export function submitComputePass(device: GPUDevice, label: string, record: (pass: GPUComputePassEncoder) => void): void {
  const encoder = device.createCommandEncoder({ label });
  const pass = encoder.beginComputePass({ label });
  const arena = new UniformArena(device, `${label} params`);
  attachArena(pass, arena);
  try {
    record(pass);
    pass.end();
    arena.flush();
    device.queue.submit([encoder.finish()]);
  } finally {
    // Destroyed after submit: its buffer lives until the GPU is done with it.
    arena.destroy();
  }
}
