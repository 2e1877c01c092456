/**
 * What the worker offers the page. Kept free of worker globals so the same
 * object can run in-thread (Node, tests).
 */
import { readGguf } from '../gguf/reader';
import { sourceFromBlob, sourceFromUrl } from '../gguf/source';
import { requestGpuDevice, USEFUL_FEATURES } from '../gpu/device';
import { ggmlTypeName } from '../quant/formats';
import type { EngineServiceApi } from '../engine/service-types';

export interface GgufSummary {
  version: number;
  architecture: string | undefined;
  name: string | undefined;
  fileBytes: number;
  metadataKeys: number;
  tensorCount: number;
  /** Bytes of tensor data per GGML type name. */
  bytesByType: Record<string, number>;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  /** The features the engine uses (shader-f16, subgroups, timestamp-query) that this adapter grants. */
  features: string[];
}

export const workerApi = {
  /** Reads a GGUF file's header (never its whole body) from a File/Blob or URL. */
  async inspect(model: Blob | string): Promise<GgufSummary> {
    const source = typeof model === 'string' ? await sourceFromUrl(model) : sourceFromBlob(model);
    const file = await readGguf(source);
    const str = (key: string) => {
      const v = file.metadata.get(key)?.value;
      return typeof v === 'string' ? v : undefined;
    };
    const bytesByType: Record<string, number> = {};
    for (const t of file.tensors) bytesByType[ggmlTypeName(t.type)] = (bytesByType[ggmlTypeName(t.type)] ?? 0) + t.nBytes;
    return {
      version: file.version,
      architecture: str('general.architecture'),
      name: str('general.name'),
      fileBytes: file.fileBytes,
      metadataKeys: file.metadata.size,
      tensorCount: file.tensors.length,
      bytesByType,
    };
  },

  /** The WebGPU adapter this worker would run on. */
  async adapter(): Promise<AdapterSummary> {
    const gpu = await requestGpuDevice({ wantFeatures: [...USEFUL_FEATURES] });
    const summary = {
      vendor: gpu.adapterInfo.vendor,
      architecture: gpu.adapterInfo.architecture,
      description: gpu.adapterInfo.description,
      features: [...gpu.features].filter((f) => (USEFUL_FEATURES as readonly string[]).includes(f)).sort(),
    };
    gpu.device.destroy();
    return summary;
  },
};

/** What the worker exposes: the helpers above and the engine service (see src/engine/service-types.ts). */
export type WorkerApi = typeof workerApi & { service: EngineServiceApi };
