/**
 * Dequantization kernel (shaders/dequant.wgsl): blocks of any weight format,
 * as raw bytes at any byte offset of a buffer, to f32 or (with shader-f16) to
 * f16. The format's decoder is included by the DECODER define; see the
 * shader's header for bindings and geometry.
 */

import { uniformBinding } from '../gpu/uniform-arena';
import { asBufferBinding, checkBindingSize, packUniformScalars } from '../gpu/buffers';
import type { BufferRef } from '../gpu/buffers';
import { countDispatch } from '../gpu/cost-counter';
import { ceilDiv, workgroupGrid } from '../gpu/dispatch';
import { createComputePipeline, pipelineCacheFor } from '../gpu/pipelines';
import { loadShader } from '../gpu/shader-files';
import type { GgmlType } from '../quant/formats';
import { decoderDefines, quantDecoder } from './quant-decoders';
import type { QuantDecoder } from './quant-decoders';

export type DequantOutput = 'f32' | 'f16';

export interface DequantOptions {
  /** Element type written to `dst` (default 'f32'); 'f16' needs the shader-f16 feature. */
  output?: DequantOutput;
  /** Threads per workgroup (default 64); one thread per 8 output elements. */
  workgroupSize?: number;
}

export interface DequantShape {
  /** Elements to decode: a whole number of decoder blocks (8 for float types). */
  nElements: number;
  /** Where the first block starts in `src` (any byte offset). Default 0. */
  srcOffsetBytes?: number;
  /** Index in `dst` of the first output element. Default 0. */
  dstOffsetElements?: number;
}

export interface DequantBuffers {
  /** The blocks' raw bytes. */
  src: BufferRef;
  /** f32 or f16 (per the kernel's output), written at [dstOffsetElements, dstOffsetElements + nElements). */
  dst: BufferRef;
}

const DEFAULT_WORKGROUP_SIZE = 64;
const U32_LIMIT = 2 ** 32;

export class DequantKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
    private readonly decoder: QuantDecoder,
    readonly output: DequantOutput,
    private readonly workgroupSize: number,
  ) {}

  /**
   * Builds (or takes from the device's cache) the pipeline for blocks of
   * `type`. Throws UnsupportedGpuTypeError for a type without a decoder, and
   * an Error when f16 output is asked of a device without shader-f16.
   */
  static async create(device: GPUDevice, type: GgmlType, options: DequantOptions = {}): Promise<DequantKernel> {
    const decoder = quantDecoder(type, 'dequant');
    const output = options.output ?? 'f32';
    if (output === 'f16' && !device.features.has('shader-f16')) {
      throw new Error('dequant to f16 needs the shader-f16 feature, which this device lacks; use output f32');
    }
    const workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    const maxInvocations = device.limits.maxComputeInvocationsPerWorkgroup;
    if (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > maxInvocations) {
      throw new RangeError(`dequant workgroup size ${workgroupSize} is outside 1..${maxInvocations}`);
    }
    const key = { op: 'dequant', type: decoder.name, out: output, wg: workgroupSize };
    const pipeline = await pipelineCacheFor(device).getOrCreate(key, (label) =>
      createComputePipeline(device, {
        label,
        code: loadShader('dequant.wgsl', { ...decoderDefines(type), OUTPUT_F16: output === 'f16' }),
        bindings: ['uniform', 'read-only-storage', 'storage'],
        constants: { WG: workgroupSize },
      }),
    );
    return new DequantKernel(device, pipeline, decoder, output, workgroupSize);
  }

  get label(): string {
    return this.pipeline.label;
  }

  get type(): GgmlType {
    return this.decoder.type;
  }

  /** Records the dequantization of `shape.nElements` elements into `pass`. */
  encode(pass: GPUComputePassEncoder, buffers: DequantBuffers, shape: DequantShape): void {
    const { nElements, srcOffsetBytes = 0, dstOffsetElements = 0 } = shape;
    checkCount(nElements, 'nElements');
    checkCount(srcOffsetBytes, 'srcOffsetBytes');
    checkCount(dstOffsetElements, 'dstOffsetElements');
    const { blockElements, blockBytes } = this.decoder;
    if (nElements % blockElements !== 0) {
      throw new RangeError(`${this.label}: ${nElements} elements are not a whole number of ${blockElements}-element blocks`);
    }
    const srcEndBytes = srcOffsetBytes + (nElements / blockElements) * blockBytes;
    const dstEndElements = dstOffsetElements + nElements;
    // Shader indices are u32, and a decoder may read the word holding the last byte.
    if (srcEndBytes + 4 > U32_LIMIT || dstEndElements >= U32_LIMIT) {
      throw new RangeError(`${this.label}: ${nElements} elements at these offsets overflow 32-bit indices`);
    }
    checkBindingSize(buffers.src, srcEndBytes, `${this.label} src`);
    checkBindingSize(buffers.dst, dstEndElements * (this.output === 'f16' ? 2 : 4), `${this.label} dst`);
    if (nElements === 0) return;

    const nGroups = nElements / 8;
    const params = packUniformScalars([
      ['u32', nGroups],
      ['u32', srcOffsetBytes],
      ['u32', dstOffsetElements],
    ]);
    const bindGroup = this.device.createBindGroup({
      label: this.label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: uniformBinding(this.device, pass, params, `${this.label} params`) },
        { binding: 1, resource: asBufferBinding(buffers.src) },
        { binding: 2, resource: asBufferBinding(buffers.dst) },
      ],
    });
    const workgroups = ceilDiv(nGroups, this.workgroupSize);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroupGrid(workgroups, this.device.limits.maxComputeWorkgroupsPerDimension));
    countDispatch(this.device, srcEndBytes - srcOffsetBytes);
  }
}

function checkCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`dequant ${name} must be an integer >= 0, got ${value}`);
}
