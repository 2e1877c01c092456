/**
 * The package as users get it (built, packed and installed into a fresh
 * project by support/global-setup.ts), used through its public API only:
 * (a) in Node, where plain 'webmoe' resolves to the same Node entry as
 * 'webmoe/node'; (b) the installed `webmoe` command; (c) in Chromium from a
 * plain HTML page whose module script imports only the installed package
 * (the worker found next to it), and (d) what a page is told when the worker
 * file is not there. Generation is greedy on a generated tiny model and must
 * stream what the in-repo engine streams for the same model and request. The
 * tarball holds the library and its types, no tests, demo or fixtures. A
 * Vite app using the tarball is vite-app.test.ts.
 */
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { chromium, type Browser } from 'playwright';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';
import { CHAT, COMPLETION, inRepoGreedy, STREAM_GREEDY_JS, type Streamed } from './support/greedy';
import { run } from './support/npm';
import { packed } from './support/packed';
import { pageModule, runPage } from './support/page';

const { files: tarballFiles, project } = packed();
const TINY = { arch: 'olmoe', seed: 5, layers: 2 } as const;
const scratch = mkdtempSync(join(tmpdir(), 'webmoe-pack-reference-'));
const tinyPath = join(scratch, 'tiny.gguf');
/** The in-repo engine's pieces on the tiny model, computed while the packed library runs (both are slow on CPU adapters, and independent). */
let reference: Promise<{ completion: Streamed; chat: Streamed }>;

beforeAll(() => {
  writeFileSync(tinyPath, makeTinyModel(TINY));
  reference = (async () => {
    const completion = await inRepoGreedy(tinyPath, COMPLETION);
    const chat = await inRepoGreedy(tinyPath, CHAT);
    // A reference that generated nothing would make every comparison below vacuous.
    if (completion.pieces.length === 0 || chat.pieces.length === 0) throw new Error('the in-repo engine generated nothing');
    return { completion, chat };
  })();
  // Settled here too, so a failing reference is reported by the tests awaiting it, not as an unhandled rejection.
  reference.catch(() => {});
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Concurrent: the checks share nothing but the installed project (each writes its own files there), and their time goes in child processes and Chromium, which overlap.
describe.concurrent('the packed package', () => {
  it('holds the library, its worker and types, and nothing of tests, demo or fixtures', ({ expect }) => {
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

  it("(a) in Node, plain 'webmoe' is the Node entry ('webmoe/node') and streams the in-repo engine's greedy pieces; stdout holds only the script's line", async ({ expect }) => {
    const script = `
      import { writeFileSync } from 'node:fs';
      import * as plain from 'webmoe';
      import * as node from 'webmoe/node';
      ${STREAM_GREEDY_JS}
      writeFileSync('tiny.gguf', plain.makeTinyModel(${JSON.stringify(TINY)}));
      const engine = await plain.createEngine({ model: './tiny.gguf', storeDir: './store', contextLength: 64 });
      const streamed = await streamGreedy(engine, ${JSON.stringify(COMPLETION)});
      await engine.unload();
      console.log(JSON.stringify({ same: plain.createEngine === node.createEngine, nodeGpu: typeof plain.nodeGpu, streamed }));
      process.exit(0);
    `;
    writeFileSync(join(project, 'generate.mjs'), script);
    const { stdout } = await run('node', ['generate.mjs'], { cwd: project, timeout: 120_000 });
    // The whole of stdout must be the one line: anything else there (Dawn's start-up warnings, say) would break a user's pipe.
    expect(stdout).toMatch(/^[^\n]+\n$/);
    const out = JSON.parse(stdout) as { same: boolean; nodeGpu: string; streamed: Streamed };
    expect([out.same, out.nodeGpu]).toEqual([true, 'function']);
    // The packed generator writes the in-repo generator's model byte for byte, so the two engines saw the same file.
    expect(readFileSync(join(project, 'tiny.gguf')).equals(readFileSync(tinyPath))).toBe(true);
    expect(out.streamed).toEqual((await reference).completion);
  }, 180_000);

  it("(b) installs a working webmoe command (the built CLI, no sources, no tsx): stdout is only its JSON, the in-repo engine's greedy text", async ({ expect }) => {
    expect(tarballFiles).toContain('dist/cli/main.js');
    const bin = join(project, 'node_modules', '.bin', 'webmoe');
    await run(bin, ['make-tiny', '--arch', 'qwen3moe', '--type', 'q4_0', '--layers', '2', '--out', 'cli-tiny.gguf'], { cwd: project });
    const { stdout } = await run(bin, ['run', '--model', 'cli-tiny.gguf', '--prompt', 'The river', '--max-tokens', '5', '--json'], { cwd: project, timeout: 120_000 });
    const out = JSON.parse(stdout) as { tokens: number[]; text: string; stats: { expertHits: number } };
    expect(out.tokens).toHaveLength(5);
    expect(out.stats.expertHits).toBeGreaterThan(0);
    const expected = await inRepoGreedy(join(project, 'cli-tiny.gguf'), { prompt: 'The river', max_tokens: 5, temperature: 0 });
    expect([out.text, out.tokens.length]).toEqual([expected.pieces.join(''), expected.completionTokens]);
  }, 180_000);

  describe('in Chromium, from plain pages served as files', () => {
    let server: Server;
    let browser: Browser;
    let origin: string;
    beforeAll(async () => {
      server = await staticServer(project);
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    });
    afterAll(async () => {
      await browser?.close();
      server?.close();
    });

    it("(c) a page importing only the package streams the in-repo engine's greedy pieces, its worker found beside the library", async ({ expect }) => {
      const script = pageModule(
        `import { createEngine, makeTinyModel } from 'webmoe';`,
        `    const model = new Blob([makeTinyModel(${JSON.stringify(TINY)})]);
    const engine = await createEngine({ model, modelId: 'tiny', contextLength: 64 });
    const streamed = await streamGreedy(engine, ${JSON.stringify(CHAT)});
    await engine.unload();
    return streamed;`,
      );
      writeFileSync(join(project, 'index.html'), plainPage('./node_modules/webmoe/dist/lib/webmoe.js', script));
      const page = await runPage(browser, `${origin}/index.html`);
      expect(page.result.error).toBeUndefined();
      expect(page.result).toEqual((await reference).chat);
      expect(page.workers.map((url) => new URL(url).pathname)).toEqual(['/node_modules/webmoe/dist/lib/worker.js']);
      expect(page.problems).toEqual([]);
    }, 180_000);

    it('(d) without the worker file beside the library, createEngine fails with a message that says what to fix', async ({ expect }) => {
      // The library's files without worker.js, as a server or bundler that dropped it would serve them.
      const lib = join(project, 'node_modules', 'webmoe', 'dist', 'lib');
      const copy = join(project, 'no-worker');
      mkdirSync(copy, { recursive: true });
      for (const file of readdirSync(lib)) if (file.endsWith('.js') && file !== 'worker.js') copyFileSync(join(lib, file), join(copy, file));
      const script = pageModule(
        `import { createEngine } from 'webmoe';`,
        `    await createEngine({ model: new Blob([new Uint8Array(64)]), modelId: 'none' });
    return { pieces: [] };`,
      );
      writeFileSync(join(project, 'no-worker.html'), plainPage('./no-worker/webmoe.js', script));
      const page = await runPage(browser, `${origin}/no-worker.html`, 60_000);
      expect(page.result.code).toBe('INTERNAL');
      expect(page.result.error).toMatch(/the engine worker failed to start: its script \(worker\.js, beside the library's own file\) did not load.*optimizeDeps/);
      expect(page.problems).toContain(`HTTP 404: ${origin}/no-worker/worker.js`);
    }, 90_000);
  });
});

/** An HTML page whose module script `script` imports 'webmoe' from `library` (through an import map, as no bundler is involved). */
function plainPage(library: string, script: string): string {
  return `<!doctype html><meta charset="utf-8"><title>webmoe</title><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports: { webmoe: library } })}</script>
<script type="module">${script}</script>`;
}

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
