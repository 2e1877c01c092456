/**
 * The package as users get it: `npm run build`, `npm pack`, the tarball
 * installed into a fresh temporary project (with `webgpu`, the optional peer
 * Node needs; from the npm cache when it has them), then tokens generated
 * from a generated tiny model through the public API only: (a) in Node from
 * 'webmoe/node', (b) in Chromium from a plain HTML page whose module script
 * imports only the installed package (the worker found next to it). The
 * tarball holds the library and its types, no tests, demo or fixtures.
 */
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const project = mkdtempSync(join(tmpdir(), 'webmoe-pack-'));
let tarballFiles: string[] = [];

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, maxBuffer: 64 * 2 ** 20, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return stdout;
}

beforeAll(async () => {
  await npm(['run', 'build'], root);
  const [packed] = JSON.parse(await npm(['pack', '--json', '--pack-destination', project], root)) as { filename: string; files: { path: string }[] }[];
  tarballFiles = packed.files.map((f) => f.path);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'webmoe-pack-check', private: true, type: 'module' }));
  const webgpu = JSON.parse((await run('node', ['-p', 'JSON.stringify(require("./node_modules/webgpu/package.json").version)'], { cwd: root })).stdout);
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(project, packed.filename), `webgpu@${webgpu}`], project);
}, 300_000);

afterAll(() => rmSync(project, { recursive: true, force: true }));

describe('the packed package', () => {
  it('holds the library, its worker and types, and nothing of tests, demo or fixtures', () => {
    expect(tarballFiles).toContain('dist/lib/webmoe.js');
    expect(tarballFiles).toContain('dist/lib/node.js');
    expect(tarballFiles).toContain('dist/lib/worker.js');
    expect(tarballFiles).toContain('dist/types/index.d.ts');
    expect(tarballFiles).toContain('dist/types/node.d.ts');
    const stray = tarballFiles.filter((f) => /(^|\/)(test|tests|demo|fixtures|test-pages|src)\//.test(f) || /\.test\./.test(f));
    expect(stray).toEqual([]);
    // Only the library, its types, the command line, shipped models and the package's own files.
    expect(tarballFiles.filter((f) => !/^(dist\/(lib|cli|types)\/|bin\/|models\/[^/]+\.gguf$|package\.json$|README\.md$|LICENSE)/.test(f))).toEqual([]);
  });

  it('(a) generates tokens in Node through webmoe/node', async () => {
    const script = `
      import { writeFileSync } from 'node:fs';
      import { createEngine, makeTinyModel } from 'webmoe/node';
      writeFileSync('tiny.gguf', makeTinyModel({ arch: 'olmoe', seed: 5, layers: 2 }));
      const engine = await createEngine({ model: './tiny.gguf', storeDir: './store', contextLength: 64 });
      const out = await engine.completions.create({ prompt: 'The river', max_tokens: 6, temperature: 0 });
      console.log(JSON.stringify({ text: out.choices[0].text, usage: out.usage }));
      await engine.unload();
      process.exit(0);
    `;
    writeFileSync(join(project, 'generate.mjs'), script);
    const { stdout } = await run('node', ['generate.mjs'], { cwd: project, timeout: 120_000 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(out.usage.completion_tokens).toBeGreaterThan(0);
    expect(out.text.length).toBeGreaterThan(0);
  }, 180_000);

  it("in Node, plain 'webmoe' resolves to the Node entry (the exports map's node condition)", async () => {
    const script = `
      import * as plain from 'webmoe';
      import * as node from 'webmoe/node';
      console.log(JSON.stringify({ same: plain.createEngine === node.createEngine, nodeGpu: typeof plain.nodeGpu }));
    `;
    writeFileSync(join(project, 'resolve.mjs'), script);
    const { stdout } = await run('node', ['resolve.mjs'], { cwd: project, timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ same: true, nodeGpu: 'function' });
  }, 90_000);

  it('installs a working webmoe command (the built CLI, no sources, no tsx)', async () => {
    expect(tarballFiles).toContain('dist/cli/main.js');
    const bin = join(project, 'node_modules', '.bin', 'webmoe');
    await run(bin, ['make-tiny', '--arch', 'qwen3moe', '--type', 'q4_0', '--layers', '2', '--out', 'cli-tiny.gguf'], { cwd: project });
    const { stdout } = await run(bin, ['run', '--model', 'cli-tiny.gguf', '--prompt', 'The river', '--max-tokens', '5', '--json'], { cwd: project, timeout: 120_000 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { tokens: number[]; stats: { expertHits: number } };
    expect(out.tokens).toHaveLength(5);
    expect(out.stats.expertHits).toBeGreaterThan(0);
  }, 180_000);

  it('(b) generates tokens in Chromium from a plain page importing only the package', async () => {
    writeFileSync(join(project, 'index.html'), `<!doctype html><meta charset="utf-8"><title>webmoe</title>
<script type="importmap">{ "imports": { "webmoe": "./node_modules/webmoe/dist/lib/webmoe.js" } }</script>
<script type="module">
  import { createEngine, makeTinyModel } from 'webmoe';
  try {
    const model = new Blob([makeTinyModel({ arch: 'olmoe', seed: 5, layers: 2 })]);
    const engine = await createEngine({ model, modelId: 'tiny', contextLength: 64 });
    let text = '';
    for await (const chunk of await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0, stream: true })) {
      text += chunk.choices[0]?.delta.content ?? '';
    }
    await engine.unload();
    window.result = { text };
  } catch (error) {
    window.result = { error: String(error), code: error.code };
  }
</script>`);
    const server = await staticServer(project);
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`);
      await page.waitForFunction(() => (window as { result?: unknown }).result !== undefined, undefined, { timeout: 150_000 });
      const result = await page.evaluate(() => (window as unknown as { result: { text?: string; error?: string } }).result);
      expect(result.error).toBeUndefined();
      expect(result.text!.length).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      server.close();
    }
  }, 180_000);
});

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.map': 'application/json' };

/** Serves `dir` read-only on 127.0.0.1 (a secure context, so WebGPU is offered). */
async function staticServer(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!path.startsWith(dir) || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
