/**
 * Compute pipeline cache. Each kernel names its variants with a typed key
 * (`{ op: 'rmsnorm', dtype: 'f32', wg: 64, weight: true }`); the key gives both
 * the cache entry and a readable label ('rmsnorm_f32_wg64_weight') that is set
 * as the pipeline's GPU label, so errors and profiles name the variant.
 */

import { compileShaderModule } from './shader';

export type PipelineKeyPart = string | number | boolean;

/** A kernel variant: the op name and the choices that make its pipeline differ. */
export interface PipelineKey {
  readonly op: string;
  readonly [part: string]: PipelineKeyPart;
}

/**
 * The label of a key: the op, then each other part in declaration order:
 * strings as their value ('f32'), numbers as name and value ('wg64'), true
 * booleans as their name ('weight'); false booleans are left out.
 */
export function pipelineLabel(key: PipelineKey): string {
  const parts = [key.op];
  for (const [name, value] of Object.entries(key)) {
    if (name === 'op') continue;
    if (typeof value === 'string') parts.push(value);
    else if (typeof value === 'number') parts.push(`${name}${value}`);
    else if (value) parts.push(name);
  }
  return parts.join('_');
}

/** An identity for the cache: every part named, in a fixed order. */
function cacheId(key: PipelineKey): string {
  return JSON.stringify(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export class PipelineCache {
  private readonly entries = new Map<string, Promise<GPUComputePipeline>>();

  /**
   * The pipeline for `key`, built once by `build(label)`. Concurrent callers
   * share one build; a failed build is forgotten so a later call can retry.
   */
  getOrCreate(key: PipelineKey, build: (label: string) => Promise<GPUComputePipeline>): Promise<GPUComputePipeline> {
    const id = cacheId(key);
    let entry = this.entries.get(id);
    if (!entry) {
      entry = build(pipelineLabel(key));
      this.entries.set(id, entry);
      entry.catch(() => this.entries.delete(id));
    }
    return entry;
  }

  get size(): number {
    return this.entries.size;
  }
}

const cachesByDevice = new WeakMap<GPUDevice, PipelineCache>();

/** The pipeline cache shared by every kernel on `device`. */
export function pipelineCacheFor(device: GPUDevice): PipelineCache {
  let cache = cachesByDevice.get(device);
  if (!cache) {
    cache = new PipelineCache();
    cachesByDevice.set(device, cache);
  }
  return cache;
}

/** How a binding is declared in WGSL: `var<uniform>`, `var<storage, read>`, `var<storage, read_write>`. */
export type BindingKind = 'uniform' | 'read-only-storage' | 'storage';

export interface ComputePipelineSource {
  /** The pipeline's label, also used for its shader module and layout. */
  label: string;
  /** WGSL, already preprocessed. */
  code: string;
  /** Binding i of group 0 has kind bindings[i]. */
  bindings: readonly BindingKind[];
  /** Values of WGSL `override` constants. */
  constants?: Record<string, number>;
  entryPoint?: string;
}

/**
 * Compiles `code` (throwing ShaderCompileError with line numbers on failure)
 * and builds a compute pipeline with an explicit one-group layout, so that
 * bindings a variant does not read still keep their slots.
 */
export async function createComputePipeline(device: GPUDevice, source: ComputePipelineSource): Promise<GPUComputePipeline> {
  const module = await compileShaderModule(device, source.label, source.code);
  const bindGroupLayout = device.createBindGroupLayout({
    label: source.label,
    entries: source.bindings.map((kind, binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: kind },
    })),
  });
  return device.createComputePipelineAsync({
    label: source.label,
    layout: device.createPipelineLayout({ label: source.label, bindGroupLayouts: [bindGroupLayout] }),
    compute: { module, entryPoint: source.entryPoint ?? 'main', constants: source.constants ?? {} },
  });
}
