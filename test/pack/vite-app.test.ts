/**
 * A fresh Vite app with no Vite configuration at all installs the packed
 * tarball, imports `createEngine` from 'webmoe' and loads the package's
 * built-in model (copied into public/, served as a static asset) in
 * Chromium: once under the dev server, which pre-bundles webmoe into
 * node_modules/.vite/deps (where a worker URL relative to the library file
 * would point at nothing), and once as a production build served by
 * `vite preview`. Both must find the worker and stream the in-repo engine's
 * greedy pieces for the same model and request. Vite is this repository's
 * own (linked into the app), the version the package is developed against.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';
import { COMPLETION, inRepoGreedy, type Streamed } from './support/greedy';
import { npm, run, userEnv } from './support/npm';
import { packed } from './support/packed';
import { pageModule, runPage } from './support/page';

const root = resolve(import.meta.dirname, '../..');
const app = mkdtempSync(join(tmpdir(), 'webmoe-vite-app-'));
const viteBin = join(app, 'node_modules', 'vite', 'bin', 'vite.js');
/** The in-repo engine's pieces, computed while the pages run (both are slow on CPU adapters, and independent). */
let reference: Promise<Streamed>;
let browser: Browser;

beforeAll(async () => {
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'webmoe-vite-app', private: true, type: 'module' }));
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', packed().tarball], app);
  symlinkSync(join(root, 'node_modules', 'vite'), join(app, 'node_modules', 'vite'), 'dir');
  mkdirSync(join(app, 'public'));
  copyFileSync(join(app, 'node_modules', 'webmoe', 'models', 'default-moe-q8_0.gguf'), join(app, 'public', 'model.gguf'));
  writeFileSync(join(app, 'index.html'), '<!doctype html><meta charset="utf-8"><title>webmoe in Vite</title><link rel="icon" href="data:,">\n<script type="module" src="/main.js"></script>\n');
  writeFileSync(join(app, 'main.js'), pageModule(
    `import { createEngine } from 'webmoe';`,
    `    const engine = await createEngine({ model: new URL('/model.gguf', location.href).href, modelId: 'default', contextLength: 64 });
    const streamed = await streamGreedy(engine, ${JSON.stringify(COMPLETION)});
    await engine.unload();
    return streamed;`,
  ));
  // Built before the dev server starts, so that no file changes under a running dev server.
  await run(process.execPath, [viteBin, 'build'], { cwd: app, env: userEnv(), timeout: 120_000 });
  reference = inRepoGreedy(join(root, 'models', 'default-moe-q8_0.gguf'), COMPLETION).then((streamed) => {
    // A reference that generated nothing would make the comparisons vacuous.
    if (streamed.pieces.length === 0) throw new Error('the in-repo engine generated nothing');
    return streamed;
  });
  // Settled here too, so a failing reference is reported by the tests awaiting it, not as an unhandled rejection.
  reference.catch(() => {});
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  rmSync(app, { recursive: true, force: true });
});

// Concurrent: the two servers and pages are independent, and side by side they take clearly less time than one after the other on CPU adapters.
describe.concurrent('a Vite app using the packed package, without configuration', () => {
  it('under the dev server (webmoe pre-bundled) finds the worker and streams the in-repo greedy pieces', async ({ expect }) => {
    const server = await startVite(['--host', '127.0.0.1']);
    try {
      const page = await runPage(browser, server.url);
      expect(page.result.error).toBeUndefined();
      expect(page.result).toEqual(await reference);
      // The optimizer rebased the library's relative worker URL onto the installed file.
      expect(page.workers.map((url) => new URL(url).pathname)).toEqual(['/node_modules/webmoe/dist/lib/worker.js']);
      expect(page.problems).toEqual([]);
      // webmoe did go through dependency pre-bundling, the case this test is about, and Vite had nothing to advise.
      const metadata = JSON.parse(readFileSync(join(app, 'node_modules', '.vite', 'deps', '_metadata.json'), 'utf8')) as { optimized: Record<string, unknown> };
      expect(Object.keys(metadata.optimized)).toContain('webmoe');
      expect(server.output()).not.toMatch(/optimizeDeps|does not exist/);
    } finally {
      await server.stop();
    }
  }, 180_000);

  it('as a production build (vite build, vite preview) emits the worker and streams the same pieces', async ({ expect }) => {
    const workerAssets = readdirSync(join(app, 'dist', 'assets')).filter((name) => /^worker-[\w-]+\.js$/.test(name));
    expect(workerAssets).toHaveLength(1);
    const server = await startVite(['preview', '--host', '127.0.0.1']);
    try {
      const page = await runPage(browser, server.url);
      expect(page.result.error).toBeUndefined();
      expect(page.result).toEqual(await reference);
      expect(page.workers.map((url) => new URL(url).pathname)).toEqual([`/assets/${workerAssets[0]}`]);
      expect(page.problems).toEqual([]);
    } finally {
      await server.stop();
    }
  }, 180_000);
});

interface ViteServer {
  /** The "Local:" URL Vite printed (it moves to the next free port when its default is taken). */
  url: string;
  /** Everything the server printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `vite <args>` in the app as a user would and waits until it serves. */
async function startVite(args: string[], timeoutMs = 60_000): Promise<ViteServer> {
  const child = spawn(process.execPath, [viteBin, ...args], { cwd: app, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await exited;
  };
  try {
    const url = await new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`vite ${args.join(' ')} did not serve within ${timeoutMs} ms:\n${output}`)), timeoutMs);
      const read = (data: Buffer) => {
        // Colours are off (NO_COLOR), but strip escapes anyway so a styled URL still matches.
        output += data.toString().replace(/\x1b\[[0-9;]*m/g, '');
        const local = /Local:\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
        if (local) {
          clearTimeout(timer);
          done(local[1]);
        }
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      void exited.then(() => fail(new Error(`vite ${args.join(' ')} exited before serving:\n${output}`)));
    });
    return { url, output: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
