/**
 * Whether the GPU kernels can read every tensor a model uses, decided from
 * the GGUF header alone: run before anything is imported or uploaded, so a
 * file with a tensor type no decoder handles fails at once, with nothing
 * written to the store.
 */

import type { GgufFile } from '../gguf/types';
import { hasGpuDecoder, UnsupportedGpuTypeError } from '../kernels/quant-decoders';
import type { ModelConfig } from './config';

/** Every tensor name the model's tensor table refers to. */
function usedTensorNames(config: ModelConfig): Set<string> {
  const names = new Set<string>();
  const walk = (value: unknown): void => {
    if (typeof value === 'string') names.add(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(config.tensors);
  return names;
}

/**
 * Throws UnsupportedGpuTypeError naming the first tensor the model uses
 * whose type no GPU decoder reads (and how many others share the problem),
 * with the supported set in its message.
 */
export function checkGpuReadable(file: GgufFile, config: ModelConfig): void {
  const used = usedTensorNames(config);
  const unreadable = file.tensors.filter((t) => used.has(t.name) && !hasGpuDecoder(t.type));
  if (unreadable.length === 0) return;
  const first = unreadable[0]!;
  const others = unreadable.length > 1 ? ` (and ${unreadable.length - 1} more tensors)` : '';
  throw new UnsupportedGpuTypeError(first.type, `tensor ${first.name}${others}`);
}
