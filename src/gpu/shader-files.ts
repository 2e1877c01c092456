/**
 * Every file of shaders/ as text, so kernels and `#include` find WGSL by name.
 *
 * Under Vite (library and demo builds, Vitest) the files are bundled at build
 * time through Vite's glob import. Where no bundler ran (the CLI under tsx,
 * plain Node) `import.meta.glob` does not exist; the files are then read
 * synchronously from the `shaders/` folder at the package root, found by
 * walking up from this module, through `process.getBuiltinModule` (no static
 * `node:` import: this module is bundled for browsers).
 */
import { preprocessWgsl, type ShaderDefines } from './shader';

function bundledFiles(): Record<string, string> | undefined {
  try {
    // Must stay a literal call for Vite to transform it; it throws where Vite did not.
    return import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  } catch {
    return undefined;
  }
}

/** shaders/*.wgsl read from disk, from the nearest ancestor folder of this module holding package.json and shaders/. */
function filesOnDisk(): Record<string, string> {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs') as typeof import('node:fs') | undefined;
  if (!fs) return {};
  let dir = new URL('./', import.meta.url);
  for (;;) {
    const shaders = new URL('shaders/', dir);
    if (fs.existsSync(new URL('package.json', dir)) && fs.existsSync(shaders)) {
      const names = fs.readdirSync(shaders).filter((name) => name.endsWith('.wgsl'));
      return Object.fromEntries(names.map((name) => [`shaders/${name}`, fs.readFileSync(new URL(name, shaders), 'utf8')]));
    }
    const parent = new URL('../', dir);
    if (parent.href === dir.href) return {};
    dir = parent;
  }
}

const FILES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(bundledFiles() ?? filesOnDisk()).map(([path, text]) => [path.slice(path.lastIndexOf('/') + 1), text]),
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
