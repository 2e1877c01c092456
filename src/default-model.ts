/**
 * The built-in default model (Node only): a small qwen2moe-layout MoE trained
 * by scripts/train on the Python documentation, shipped in the package as
 * models/default-moe-q8_0.gguf. Used when no model is given.
 *
 * The file is found relative to this module: the nearest ancestor folder
 * whose package.json names this package (the repository root in a source
 * checkout, the installed package folder otherwise), whichever file layout
 * (src/ under tsx, dist/ when built) this module was loaded from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'webmoe';

/** Path of the default model inside the package. */
export const DEFAULT_MODEL_RELATIVE_PATH = 'models/default-moe-q8_0.gguf';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE_NAME) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no ${PACKAGE_NAME} package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Absolute path of the built-in default model file. */
export const DEFAULT_MODEL_FILE: string = join(packageRoot(), DEFAULT_MODEL_RELATIVE_PATH);

/** The default model's path; throws, saying how to rebuild it, when the file is missing. */
export function defaultModelPath(): string {
  if (!existsSync(DEFAULT_MODEL_FILE)) {
    throw new Error(`the default model ${DEFAULT_MODEL_FILE} is missing; rebuild it with scripts/train (see the README)`);
  }
  return DEFAULT_MODEL_FILE;
}
