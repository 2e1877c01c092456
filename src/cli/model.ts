/** What the model-running commands share: the GPU device, the --model argument, progress on stderr. */
import { EngineError } from '../engine/errors';
import { defaultStoreDir, openModel } from '../engine/node';
import type { OpenedModel } from '../engine/node';
import { requestGpuDevice, USEFUL_FEATURES } from '../gpu/device';
import type { GpuContext } from '../gpu/device';
import { nodeGpu } from '../gpu/node';
import { CliError } from './args';
import { defaultModelPath } from '../default-model';

export const MODEL_HELP = `  --model      a GGUF file, or the id of a model imported into the store
               (default: the built-in model, models/default-moe-q8_0.gguf)
  --store      the store's directory (default $WEBMOE_STORE, else ~/.cache/webmoe/store)`;

/** Progress lines go to stderr, so stdout carries only the command's output. */
export function progress(message: string): void {
  process.stderr.write(`webmoe: ${message}\n`);
}

/**
 * Opens --model, or the built-in default model without one; a name that is
 * neither a file nor a stored model is a usage error.
 */
export async function openModelArg(model: string | undefined, store: string | undefined): Promise<OpenedModel> {
  try {
    return await openModel(model ?? defaultModelPath(), store ?? defaultStoreDir());
  } catch (error) {
    if (error instanceof EngineError && error.code === 'BAD_REQUEST') throw new CliError(`--model: ${error.message}`);
    throw error;
  }
}

/** A WebGPU device through Dawn, with the limits and features the kernels use. */
export async function nodeDevice(): Promise<GpuContext> {
  const gpu = await requestGpuDevice({ gpu: await nodeGpu(), wantFeatures: [...USEFUL_FEATURES], label: 'webmoe' });
  progress(`adapter: ${[gpu.adapterInfo.vendor, gpu.adapterInfo.architecture, gpu.adapterInfo.description].filter(Boolean).join(' ')}`);
  return gpu;
}

/** Comma-separated non-negative integers, e.g. "1,2,3". */
export function parseTokenList(value: string | undefined, name: string): number[] {
  if (value === undefined || value.trim() === '') throw new CliError(`--${name} is required: comma-separated token ids, e.g. 1,2,3`);
  return value.split(',').map((part) => {
    const text = part.trim();
    const id = Number(text);
    if (text === '' || !Number.isInteger(id) || id < 0) throw new CliError(`--${name}: '${part}' is not a token id (a non-negative integer)`);
    return id;
  });
}
