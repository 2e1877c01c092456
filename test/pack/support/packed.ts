/**
 * The package as the pack project's global setup (global-setup.ts) built,
 * packed and installed once per test run; every test file reads it here, so
 * two files do not build and pack twice.
 */
import { inject } from 'vitest';

export interface PackedPackage {
  /** The .tgz `npm pack` wrote. */
  tarball: string;
  /** The tarball's paths, relative to the package root. */
  files: string[];
  /** A temporary project with the tarball and `webgpu` (the optional peer Node needs) installed. */
  project: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    packed: PackedPackage;
  }
}

export function packed(): PackedPackage {
  return inject('packed');
}
