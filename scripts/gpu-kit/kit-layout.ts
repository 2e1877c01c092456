/**
 * What the GPU kit holds and where: the bundles built from this repository,
 * the files copied in (some xz-compressed), the Debian packages of the Vulkan
 * loader, and the size the kit must stay under. Data and pure checks only;
 * pack.ts does the building and copying.
 */

/**
 * The package.json the kit's bundles find above them: the CLI locates its
 * default model (models/) from the folder of the package named webmoe.
 */
export const KIT_PACKAGE_JSON = { name: 'webmoe', private: true, type: 'module' };

/** Bundled entries: kit file name (app/<name>.mjs) -> source module, relative to the repository root. */
export const KIT_BUNDLES: Readonly<Record<string, string>> = {
  adapter: 'scripts/gpu-kit/adapter.ts',
  kernels: 'scripts/gpu-kit/kernels.ts',
  decode: 'bench/decode/run.ts',
  prefill: 'bench/decode/prefill.ts',
  experts: 'bench/experts/run.ts',
  webmoe: 'src/cli/main.ts',
};

/** A file copied into the kit, from an absolute path, compressed with xz when `xz` is set (the kit then holds `<to>.xz`). */
export interface KitCopy {
  from: string;
  to: string;
  xz: boolean;
}

/**
 * The Node binary, the parts of the `webgpu` package that load Dawn on Linux
 * x64 (its index.js needs nothing but Node), and the CLI's default model.
 */
export function kitCopies(nodeExecPath: string, repositoryRoot: string): KitCopy[] {
  const webgpuDir = `${repositoryRoot}/node_modules/webgpu`;
  return [
    { from: nodeExecPath, to: 'bin/node', xz: true },
    // Quantized weights: xz would save little of them.
    { from: `${repositoryRoot}/models/default-moe-q8_0.gguf`, to: 'models/default-moe-q8_0.gguf', xz: false },
    { from: `${webgpuDir}/package.json`, to: 'node_modules/webgpu/package.json', xz: false },
    { from: `${webgpuDir}/index.js`, to: 'node_modules/webgpu/index.js', xz: false },
    { from: `${webgpuDir}/LICENSE.md`, to: 'node_modules/webgpu/LICENSE.md', xz: false },
    { from: `${webgpuDir}/dist/linux-x64/dawn.node`, to: 'node_modules/webgpu/dist/linux-x64/dawn.node', xz: true },
  ];
}

/**
 * Debian packages unpacked by run.sh where the host lacks their library: the
 * Vulkan loader Dawn opens, and glvnd's dispatch library, which NVIDIA's
 * Vulkan driver links against. Both depend only on libc6.
 */
export const LOADER_PACKAGES: readonly string[] = ['libvulkan1', 'libglvnd0'];

/** The kit must fit, with room to spare, in a 64 MiB transfer. */
export const KIT_LIMIT_BYTES = 60 * 2 ** 20;

export class KitTooLargeError extends Error {
  constructor(readonly kitBytes: number) {
    super(`the kit holds ${formatMiB(kitBytes)}, over its limit of ${formatMiB(KIT_LIMIT_BYTES)}`);
    this.name = 'KitTooLargeError';
  }
}

export function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Throws KitTooLargeError when files of these sizes would not fit. Returns their total. */
export function checkKitSize(fileBytes: readonly number[]): number {
  const total = fileBytes.reduce((sum, bytes) => sum + bytes, 0);
  if (total >= KIT_LIMIT_BYTES) throw new KitTooLargeError(total);
  return total;
}
