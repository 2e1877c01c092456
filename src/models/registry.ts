/**
 * The supported architectures, keyed by GGUF `general.architecture`; each
 * one's hyper-parameters, tensors, graph choices and test-model recipe live
 * in its own file in archs/.
 */

import { ARCHITECTURE_KEY, getString } from '../gguf/metadata';
import type { GgufFile } from '../gguf/types';
import type { Architecture } from './architecture';
import { deepseek2 } from './archs/deepseek2';
import { gptOss } from './archs/gpt-oss';
import { granitemoe } from './archs/granitemoe';
import { llama } from './archs/llama';
import { olmoe } from './archs/olmoe';
import { qwen2moe } from './archs/qwen2moe';
import { qwen3moe } from './archs/qwen3moe';
import { ModelConfigError } from './config';
import type { ModelConfig } from './config';

export type ArchName = 'llama' | 'qwen2moe' | 'qwen3moe' | 'olmoe' | 'granitemoe' | 'gpt-oss' | 'deepseek2';

export const ARCHITECTURES: Readonly<Record<ArchName, Architecture>> = {
  llama, qwen2moe, qwen3moe, olmoe, granitemoe, 'gpt-oss': gptOss, deepseek2,
};

export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES) as readonly ArchName[];

/** Thrown for a GGUF whose `general.architecture` is not supported. */
export class UnsupportedArchitectureError extends ModelConfigError {
  override name = 'UnsupportedArchitectureError';
  declare readonly code: 'UNSUPPORTED_ARCH';

  constructor(readonly architecture: string) {
    super('UNSUPPORTED_ARCH', `architecture '${architecture}' is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
}

export function isSupportedArchitecture(arch: string): arch is ArchName {
  return Object.hasOwn(ARCHITECTURES, arch);
}

/** The architecture named `arch`; UnsupportedArchitectureError for an unknown one. */
export function architectureFor(arch: string): Architecture {
  if (!isSupportedArchitecture(arch)) throw new UnsupportedArchitectureError(arch);
  return ARCHITECTURES[arch];
}

/** The config of a parsed GGUF file; UnsupportedArchitectureError for an unknown architecture. */
export function modelConfigFromGguf(file: GgufFile): ModelConfig {
  return architectureFor(getString(file, ARCHITECTURE_KEY)).readConfig(file);
}
