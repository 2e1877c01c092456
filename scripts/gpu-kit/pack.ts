/**
 * `npm run gpu-kit -- [--out DIR] [--debs DIR]`: packs into DIR (default
 * gpu-kit/) what the benchmarks need on a Linux x86-64 machine with a GPU and
 * nothing installed: this Node binary and Dawn (xz-compressed), the
 * benchmarks and the CLI bundled with every shader, the Vulkan loader as
 * Debian packages, and run.sh. Prints the kit's size; fails past its limit.
 *
 * --debs DIR takes the loader's .deb files from DIR instead of `apt-get download`.
 */

import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { debDataMember } from './deb-data';
import { checkKitSize, formatMiB, KIT_BUNDLES, KIT_PACKAGE_JSON, kitCopies, LOADER_PACKAGES } from './kit-layout';

const root = resolve(import.meta.dirname, '../..');
const { values: opt } = parseArgs({ options: { out: { type: 'string', default: 'gpu-kit' }, debs: { type: 'string' } } });
const out = resolve(opt.out);
const log = (message: string) => process.stderr.write(`gpu-kit: ${message}\n`);

/** Only an empty folder or an earlier kit is replaced, so a mistyped --out cannot wipe anything else. */
function clearOut(): void {
  if (existsSync(out)) {
    const isKit = existsSync(join(out, 'run.sh')) && existsSync(join(out, 'MANIFEST.txt'));
    if (!isKit && readdirSync(out).length > 0) throw new Error(`${out} exists and is not a GPU kit; give another --out`);
    rmSync(out, { recursive: true, force: true });
  }
  mkdirSync(out, { recursive: true });
}

async function bundle(): Promise<void> {
  log(`bundling ${Object.keys(KIT_BUNDLES).join(', ')}`);
  const input = Object.fromEntries(Object.entries(KIT_BUNDLES).map(([name, source]) => [name, join(root, source)]));
  await build({
    configFile: false,
    root,
    logLevel: 'warn',
    // Everything inlined but Dawn, which the kit ships as node_modules/webgpu.
    ssr: { noExternal: true, external: ['webgpu'] },
    build: {
      ssr: true,
      outDir: join(out, 'app'),
      emptyOutDir: true,
      target: 'node20',
      rollupOptions: { input, output: { format: 'es', entryFileNames: '[name].mjs', chunkFileNames: 'chunks/[name]-[hash].mjs' } },
    },
  });
}

function run(command: string, args: string[], options: { cwd?: string; stdoutTo?: string } = {}): void {
  const stdout = options.stdoutTo === undefined ? 'inherit' : openSync(options.stdoutTo, 'w');
  try {
    const result = spawnSync(command, args, { cwd: options.cwd, stdio: ['ignore', stdout, 'inherit'] });
    if (result.error) throw new Error(`${command} could not start: ${result.error.message}`);
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}`);
  } finally {
    if (typeof stdout === 'number') closeSync(stdout);
  }
}

function copyFiles(): void {
  for (const copy of kitCopies(process.execPath, root)) {
    const target = join(out, copy.xz ? `${copy.to}.xz` : copy.to);
    mkdirSync(dirname(target), { recursive: true });
    if (copy.xz) {
      log(`xz ${copy.from} (${formatMiB(statSync(copy.from).size)})`);
      run('xz', ['-T2', '-9', '-c', copy.from], { stdoutTo: target });
    } else {
      copyFileSync(copy.from, target);
    }
  }
}

function loaderPackages(): void {
  const debs = join(out, 'debs');
  mkdirSync(debs);
  if (opt.debs !== undefined) {
    const files = readdirSync(opt.debs).filter((name) => LOADER_PACKAGES.some((p) => name.startsWith(`${p}_`)) && name.endsWith('.deb'));
    if (files.length !== LOADER_PACKAGES.length) throw new Error(`--debs ${opt.debs} must hold one .deb of each of ${LOADER_PACKAGES.join(', ')}`);
    for (const name of files) copyFileSync(join(opt.debs, name), join(debs, name));
  } else {
    log(`apt-get download ${LOADER_PACKAGES.join(' ')} (amd64)`);
    run('apt-get', ['-o', 'APT::Architecture=amd64', 'download', ...LOADER_PACKAGES.map((p) => `${p}:amd64`)], { cwd: debs });
  }
  // One line per package, 'file member offset bytes': run.sh's way in where there is no dpkg-deb.
  const index = readdirSync(debs).filter((name) => name.endsWith('.deb')).sort().map((name) => {
    const member = debDataMember(readFileSync(join(debs, name)));
    return `${name} ${member.name} ${member.offset} ${member.bytes}`;
  });
  writeFileSync(join(debs, 'INDEX'), index.join('\n') + '\n');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

function gitCommit(): string {
  const result = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'unknown';
}

function writeManifest(): number {
  const files = filesUnder(out).map((path) => ({ path: relative(out, path), bytes: statSync(path).size }));
  const lines = [
    `webmoe GPU kit, commit ${gitCommit()}, node ${process.version}, packed ${new Date().toISOString()}`,
    '',
    ...files.sort((a, b) => a.path.localeCompare(b.path)).map((f) => `${String(f.bytes).padStart(10)}  ${f.path}`),
  ];
  writeFileSync(join(out, 'MANIFEST.txt'), lines.join('\n') + '\n');
  return checkKitSize(filesUnder(out).map((path) => statSync(path).size));
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the kit ships this Node binary, so it must be packed on Linux x64 (this is ${process.platform}-${process.arch})`);
  clearOut();
  await bundle();
  copyFiles();
  loaderPackages();
  writeFileSync(join(out, 'package.json'), JSON.stringify(KIT_PACKAGE_JSON, null, 2) + '\n');
  copyFileSync(join(import.meta.dirname, 'run.sh'), join(out, 'run.sh'));
  chmodSync(join(out, 'run.sh'), 0o755);
  const bytes = writeManifest();
  log(`kit in ${out}: ${formatMiB(bytes)} (${bytes} bytes)`);
  console.log(`${formatMiB(bytes)} ${out}`);
}

await main();
