/**
 * Global setup of the pack project: `npm run build`, `npm pack`, and the
 * tarball installed into a fresh temporary project (with `webgpu`, the
 * optional peer Node needs; from the npm cache when it has them). The test
 * files get the result through `packed()`; the directory goes at the end.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { npm, run } from './npm';
import type { PackedPackage } from './packed';

const root = resolve(import.meta.dirname, '../../..');

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), 'webmoe-pack-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    project.provide('packed', await buildPackInstall(dir));
    return remove;
  } catch (error) {
    remove();
    throw error;
  }
}

async function buildPackInstall(dir: string): Promise<PackedPackage> {
  await npm(['run', 'build'], root);
  const [pack] = JSON.parse(await npm(['pack', '--json', '--pack-destination', dir], root)) as { filename: string; files: { path: string }[] }[];
  const tarball = join(dir, pack.filename);
  const consumer = join(dir, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'webmoe-pack-check', private: true, type: 'module' }));
  // The webgpu version this repository tests with, so the consumer runs the same Dawn.
  const webgpu = JSON.parse((await run('node', ['-p', 'JSON.stringify(require("./node_modules/webgpu/package.json").version)'], { cwd: root })).stdout) as string;
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, `webgpu@${webgpu}`], consumer);
  return { tarball, files: pack.files.map((f) => f.path), project: consumer };
}
