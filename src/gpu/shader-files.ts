/**
 * Every file of shaders/ as text, bundled at build time (Vite's glob import,
 * which also works under Vitest), so kernels and `#include` find WGSL by name.
 */
import { preprocessWgsl, type ShaderDefines } from './shader';

const FILES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>).map(
    ([path, text]) => [path.slice(path.lastIndexOf('/') + 1), text],
  ),
);

/** The text of shaders/<fileName>, or undefined. */
export function shaderFile(fileName: string): string | undefined {
  return FILES[fileName];
}

/** Names of all shader files. */
export function shaderFileNames(): string[] {
  return Object.keys(FILES).sort();
}

/** shaders/<fileName>, preprocessed with `defines`, its includes resolved from shaders/. */
export function loadShader(fileName: string, defines: ShaderDefines = {}): string {
  const text = shaderFile(fileName);
  if (text === undefined) throw new Error(`no shader file shaders/${fileName}`);
  return preprocessWgsl(text, defines, fileName, shaderFile);
}
