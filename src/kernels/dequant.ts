/**
 * Dequantization kernels (shaders/dequant_<type>.wgsl): quantized blocks, as
 * raw bytes at any byte offset of a buffer, to f32. One kernel per block
 * format; see each shader's header for the block layout and bindings.
 */

import dequantQ4_0Wgsl from '../../shaders/dequant_q4_0.wgsl?raw';
import dequantQ8_0Wgsl from '../../shaders/dequant_q8_0.wgsl?raw';
import { asBufferBinding, checkBindingSize, createUniformBuffer, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { ceilDiv, workgroupGrid } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { blockFormat, GgmlType, ggmlTypeName } from '../quant/formats';

interface DequantShader {
  fileName: string;
  code: string;
}

const SHADERS: ReadonlyMap<GgmlType, DequantShader> = new Map([
  [GgmlType.Q8_0, { fileName: 'dequant_q8_0.wgsl', code: dequantQ8_0Wgsl }],
  [GgmlType.Q4_0, { fileName: 'dequant_q4_0.wgsl', code: dequantQ4_0Wgsl }],
]);

/** The block types this kernel can dequantize on the GPU. */
export function gpuDequantTypes(): GgmlType[] {
  return [...SHADERS.keys()];
}

export interface DequantOptions {
  /** Threads per workgroup (default 64); one thread per output element. */
  workgroupSize?: number;
}

export interface DequantShape {
  nBlocks: number;
  /** Where the first block starts in `src` (any byte offset). Default 0. */
  srcOffsetBytes?: number;
  /** Index in `dst` of the first output element. Default 0. */
  dstOffsetElements?: number;
}

export interface DequantBuffers {
  /** The blocks' raw bytes. */
  src: BufferRef;
  /** f32, written at [dstOffsetElements, dstOffsetElements + nBlocks * blockSize). */
  dst: BufferRef;
}

const DEFAULT_WORKGROUP_SIZE = 64;

export class DequantKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    readonly type: GgmlType,
    private readonly workgroupSize: number,
  ) {}

  /** Builds (or takes from the device's cache) the pipeline for blocks of `type`. */
  static async create(device: GPUDevice, type: GgmlType, options: DequantOptions = {}): Promise<DequantKernel> {
    const shader = SHADERS.get(type);
    if (!shader) {
      const supported = gpuDequantTypes().map(ggmlTypeName).join(', ');
      throw new Error(`No GPU dequant kernel for ${ggmlTypeName(type)}; supported: ${supported}`);
    }
    const workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    if (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > device.limits.maxComputeInvocationsPerWorkgroup) {
      throw new RangeError(`dequant workgroup size ${workgroupSize} is outside 1..${device.limits.maxComputeInvocationsPerWorkgroup}`);
    }
    const key = { op: 'dequant', type: ggmlTypeName(type).toLowerCase(), wg: workgroupSize };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: shader.code,
        bindings: ['uniform', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize },
      }),
    );
    return new DequantKernel(device, pipeline, type, workgroupSize);
  }

  get label(): string {
    return this.pipeline.label;
  }

  /** Records the dequantization of `shape.nBlocks` blocks into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: DequantBuffers, shape: DequantShape): void {
    const { nBlocks, srcOffsetBytes = 0, dstOffsetElements = 0 } = shape;
    const { blockSize, blockBytes } = blockFormat(this.type)!;
    const nElements = nBlocks * blockSize;
    checkCount(nBlocks, 'nBlocks');
    checkCount(srcOffsetBytes, 'srcOffsetBytes');
    checkCount(dstOffsetElements, 'dstOffsetElements');
    // Shader indices are u32.
    if (srcOffsetBytes + nBlocks * blockBytes > 2 ** 32 - 1 || dstOffsetElements + nElements > 2 ** 32 - 1) {
      throw new RangeError(`${this.label}: ${nBlocks} blocks at these offsets overflow 32-bit indices`);
    }
    checkBindingSize(buffers.src, srcOffsetBytes + nBlocks * blockBytes, `${this.label} src`);
    checkBindingSize(buffers.dst, (dstOffsetElements + nElements) * 4, `${this.label} dst`);
    if (nBlocks === 0) return;

    const params = packUniformScalars([
      ['u32', nBlocks],
      ['u32', srcOffsetBytes],
      ['u32', dstOffsetElements],
    ]);
    const bindGroup = this.device.createBindGroup({
      label: this.label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: createUniformBuffer(this.device, params, `${this.label} params`) } },
        { binding: 1, resource: asBufferBinding(buffers.src) },
        { binding: 2, resource: asBufferBinding(buffers.dst) },
      ],
    });
    const workgroups = ceilDiv(nElements, this.workgroupSize);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroupGrid(workgroups, this.device.limits.maxComputeWorkgroupsPerDimension));
  }
}

function checkCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`dequant ${name} must be an integer >= 0, got ${value}`);
}
