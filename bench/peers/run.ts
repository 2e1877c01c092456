/**
 * `npm run bench:peers`: webmoe beside the systems its users already know,
 * on the same GGUF files in the same run.
 *
 *   In Node:     webmoe (Dawn) against llama.cpp (node-llama-cpp's CPU build).
 *   In Chromium: webmoe (WebGPU, in its worker) against wllama, its
 *                WebAssembly path (multi-threaded: the page is cross-origin
 *                isolated) and its WebGPU path.
 *
 * Per system and file: load time from a warm store, prefill tok/s on the
 * prompt, decode tok/s over the generated tokens, peak memory. The systems
 * run in alternation (webmoe, peer, webmoe, peer, ...) for --rounds rounds;
 * webmoe also runs once at each smaller expert budget. Writes
 * bench/results/peers-<machine>.{json,md,svg}.
 *
 * Options: --rounds N (2), --layers N (layers of the generated models, 1),
 * --prompt N (256), --decode N (64), --files a,b (keys, default all),
 * --budgets 1,0.5,0.25 (webmoe's in Node), --browser-budgets 1 (in
 * Chromium, where one run on SwiftShader takes minutes), --systems
 * webmoe,llama.cpp,wllama-wasm,wllama-webgpu, --llama-threads N|auto,
 * --wllama-threads N (2), --skip-node, --skip-browser, --out DIR
 * (bench/results).
 */

import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright';
import type { BrowserContext } from 'playwright';
import { openModelStore } from '../../src/api/node';
import { readGguf } from '../../src/gguf/reader';
import type { GgufArray, GgufFile } from '../../src/gguf/types';
import { sourceFromPath } from '../../src/gguf/source-node';
import { fromByteAlphabet } from '../../src/text/bytes';
import { Tokenizer } from '../../src/text/tokenizer';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../test/setup/chromium';
import { startBenchPageServer } from '../page-server';
import { peersChart } from './chart';
import type { RunFigures, RunRecord, SystemKey } from './figures';
import { PEERS_CACHE, peerFiles } from './models';
import type { PeerFile } from './models';
import { descendants, sampleTreeMemory, treePssBytes } from './process-memory';
import { peersMarkdown } from './report';
import type { PeersReportInput } from './report';
import type { PeersPage } from './browser';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = join(ROOT, 'node_modules/.bin/tsx');

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    layers: { type: 'string', default: '1' },
    prompt: { type: 'string', default: '256' },
    decode: { type: 'string', default: '64' },
    files: { type: 'string' },
    budgets: { type: 'string', default: '1,0.5,0.25' },
    'browser-budgets': { type: 'string', default: '1' },
    systems: { type: 'string', default: 'webmoe,llama.cpp,wllama-wasm,wllama-webgpu' },
    'llama-threads': { type: 'string', default: 'auto' },
    'wllama-threads': { type: 'string', default: '2' },
    'skip-node': { type: 'boolean', default: false },
    'skip-browser': { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench/results') },
  },
});
const ROUNDS = Number(opt.rounds);
const LAYERS = Number(opt.layers);
const PROMPT_TOKENS = Number(opt.prompt);
const DECODE_TOKENS = Number(opt.decode);
const BUDGETS = opt.budgets.split(',').map(Number);
const BROWSER_BUDGETS = opt['browser-budgets'].split(',').map(Number);
const SYSTEMS = new Set(opt.systems.split(',') as SystemKey[]);
const WLLAMA_THREADS = Number(opt['wllama-threads']);
for (const [name, value] of Object.entries({ rounds: ROUNDS, layers: LAYERS, prompt: PROMPT_TOKENS, decode: DECODE_TOKENS, 'wllama-threads': WLLAMA_THREADS })) {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} must be an integer >= 1`);
}
for (const [name, list] of [['budgets', BUDGETS], ['browser-budgets', BROWSER_BUDGETS]] as const) {
  if (!list.includes(1) || list.some((b) => !(b > 0 && b <= 1))) throw new RangeError(`--${name} must be fractions in (0, 1] and include 1`);
}
for (const system of SYSTEMS) {
  if (!['webmoe', 'llama.cpp', 'wllama-wasm', 'wllama-webgpu'].includes(system)) throw new RangeError(`--systems: unknown system ${system}`);
}

const log = (message: string) => process.stderr.write(`bench:peers: ${message}\n`);
const records: RunRecord[] = [];
const notes: string[] = [];

/** Prose the prompts are cut from: varied enough that the byte-level vocabularies make many different tokens. */
const PROSE =
  'The river ran past the old mill, and the miller sang about the water and the wheel that turned all day long. ' +
  'A small boat drifted down to the sea with its sail folded, and the gulls followed it past the harbour wall. ' +
  'In the evening the children came to the bank to watch the fish jump in the golden light, counting each splash. ' +
  'The keeper of the lighthouse wrote the name of every ship in his book before the storm reached the coast. ';

/** What every system is given for one file: the prompt (its text, token count and a copy on disk) and wllama's banned tokens. */
interface FilePrompt {
  text: string;
  tokens: number;
  path: string;
  /** Token ids wllama must not generate (see nonAsciiTokens). */
  banned: number[];
}

/** A prompt of exactly `count` tokens in the file's own vocabulary (what every system's tokenizer reads back). */
function promptOf(tokenizer: Tokenizer, count: number): string {
  let text = PROSE;
  while (tokenizer.encode(text).length < count + 8) text += PROSE;
  const ids = tokenizer.encode(text);
  // Cutting at a token boundary can merge differently when read again: shorten until the text reads back as `count` tokens.
  for (let take = count; take > count - 16; take--) {
    const cut = tokenizer.decode(ids.slice(0, take));
    const readBack = tokenizer.encode(cut).length;
    if (readBack === count) return cut;
    if (readBack < count) break;
  }
  return tokenizer.decode(ids.slice(0, count));
}

/**
 * The tokens whose bytes are not ASCII. wllama's server throws while writing
 * the JSON of a completion whose text is not valid UTF-8, and random-weight
 * models emit lone high bytes: wllama gets these tokens banned (a logit bias,
 * a negligible cost per step) so that its runs finish.
 */
function nonAsciiTokens(gguf: GgufFile): number[] {
  const tokens = (gguf.metadata.get('tokenizer.ggml.tokens')?.value as GgufArray).items as readonly string[];
  return tokens.flatMap((text, id) => (fromByteAlphabet(text).some((b) => b >= 0x80) ? [id] : []));
}

/** The file's prompt, its length what the context holds with the decode tokens after it (the default model's is 256), written to `dir`. */
async function filePrompt(file: PeerFile, dir: string): Promise<FilePrompt> {
  const source = await sourceFromPath(file.path);
  try {
    const gguf = await readGguf(source);
    const arch = String(gguf.metadata.get('general.architecture')?.value);
    const context = Number(gguf.metadata.get(`${arch}.context_length`)?.value);
    const tokens = Math.min(PROMPT_TOKENS, context - DECODE_TOKENS);
    const text = promptOf(Tokenizer.fromGguf(gguf), tokens);
    const path = join(dir, `${file.key}.txt`);
    writeFileSync(path, text);
    return { text, tokens, path, banned: nonAsciiTokens(gguf) };
  } finally {
    await source.close();
  }
}

function runChild(args: string[]): Promise<RunFigures> {
  return new Promise((resolve, reject) => {
    execFile(TSX, [join(ROOT, 'bench/peers/node-run.ts'), ...args], { cwd: ROOT, maxBuffer: 64 << 20, timeout: 30 * 60_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${error.message.split('\n')[0]}\n${stderr.split('\n').slice(-12).join('\n')}`));
        return;
      }
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as RunFigures);
      } catch {
        reject(new Error(`no figures in the run's output: ${stdout.slice(-400)} ${stderr.slice(-400)}`));
      }
    });
  });
}

function describeRun(r: RunRecord): string {
  const f = r.figures;
  const what = `${r.env} ${r.system}${r.budget < 1 ? ` @${r.budget * 100}%` : ''} ${r.file} round ${r.round}`;
  if (!f) return `${what}: did not run: ${r.error?.split('\n')[0]}`;
  const mem = (f.peakRssBytes - f.baseRssBytes) / 2 ** 20;
  return `${what}: load ${f.loadMs.toFixed(0)} ms, prefill ${f.prefillTokPerS.toFixed(2)} tok/s (${f.promptTokens}), decode ${f.decodeTokPerS.toFixed(2)} tok/s (${f.completionTokens}), +${mem.toFixed(0)} MiB`;
}

async function record(base: Omit<RunRecord, 'figures' | 'error'>, run: () => Promise<RunFigures>, expectPrompt: number): Promise<RunRecord> {
  let r: RunRecord;
  try {
    const figures = await run();
    if (figures.completionTokens !== DECODE_TOKENS) throw new Error(`generated ${figures.completionTokens} tokens, not ${DECODE_TOKENS}`);
    if (figures.promptTokens !== expectPrompt) notes.push(`${base.env} ${base.system} read the ${base.file} prompt as ${figures.promptTokens} tokens (webmoe's tokenizer: ${expectPrompt}).`);
    r = { ...base, figures };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // The report keeps the reason; the stack and the child's stderr go to this command's stderr only.
    r = { ...base, error: message.split('\n')[0].replace(/^page\.evaluate: /, '') };
    if (message.includes('\n')) log(message);
  }
  records.push(r);
  log(describeRun(r));
  return r;
}

/** Fastest llama.cpp thread count here, by decode tok/s on the first file (1 .. cores). */
async function llamaThreads(file: PeerFile, promptFile: string): Promise<number> {
  if (opt['llama-threads'] !== 'auto') return Number(opt['llama-threads']);
  let best = { threads: 1, tokPerS: 0 };
  for (let threads = 1; threads <= cpus().length; threads++) {
    const f = await runChild(['llama.cpp', file.path, String(threads), promptFile, String(DECODE_TOKENS)]);
    log(`llama.cpp with ${threads} thread(s) on ${file.key}: prefill ${f.prefillTokPerS.toFixed(1)}, decode ${f.decodeTokPerS.toFixed(1)} tok/s`);
    if (f.decodeTokPerS > best.tokPerS) best = { threads, tokPerS: f.decodeTokPerS };
  }
  notes.push(`llama.cpp ran with ${best.threads} thread(s), the fastest decode of 1..${cpus().length} on ${file.key}.`);
  return best.threads;
}

async function nodeHalf(files: PeerFile[], prompts: Map<string, FilePrompt>): Promise<void> {
  const storeDir = join(PEERS_CACHE, 'store');
  const store = await openModelStore({ storeDir });
  try {
    const have = new Set((await store.list()).data.filter((m) => m.state === 'complete').map((m) => m.id));
    for (const file of files) {
      if (have.has(modelId(file))) continue;
      log(`importing ${file.key} into webmoe's file store`);
      await store.import(file.path, { id: modelId(file) });
    }
  } finally {
    await store.close();
  }
  const threads = SYSTEMS.has('llama.cpp') ? await llamaThreads(files[0], prompts.get(files[0].key)!.path) : undefined;
  for (const file of files) {
    const prompt = prompts.get(file.key)!;
    const webmoe = (budget: number) => {
      const args = ['webmoe', modelId(file), storeDir, prompt.path, String(DECODE_TOKENS)];
      return budget < 1 ? [...args, String((budget * file.expertBytes) / 2 ** 20)] : args;
    };
    for (let round = 0; round < ROUNDS; round++) {
      if (SYSTEMS.has('webmoe')) await record({ env: 'node', system: 'webmoe', file: file.key, budget: 1, round }, () => runChild(webmoe(1)), prompt.tokens);
      if (SYSTEMS.has('llama.cpp')) await record({ env: 'node', system: 'llama.cpp', file: file.key, budget: 1, round }, () => runChild(['llama.cpp', file.path, String(threads!), prompt.path, String(DECODE_TOKENS)]), prompt.tokens);
    }
    if (!SYSTEMS.has('webmoe')) continue;
    for (const budget of BUDGETS.filter((b) => b < 1)) {
      await record({ env: 'node', system: 'webmoe', file: file.key, budget, round: 0 }, () => runChild(webmoe(budget)), prompt.tokens);
    }
  }
}

const modelId = (file: PeerFile) => `peers-${file.path.split('/').at(-1)!.replace(/\.gguf$/, '')}`;

/** A fresh browser on the bench's profile (its IndexedDB and wllama's cache persist between launches). */
function launch(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

async function openPage(context: BrowserContext, url: string) {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') log(`page: ${m.text().slice(0, 300)}`);
  });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => (window as { peers?: PeersPage }).peers?.ready === true, undefined, { timeout: 120_000 });
  return page;
}

async function browserHalf(files: PeerFile[], prompts: Map<string, FilePrompt>): Promise<string> {
  // The page loads webmoe as users do, from the built library (dist/lib).
  log('building the library (vite build)');
  execFileSync(join(ROOT, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const server = await startBenchPageServer(import.meta.dirname);
  // The stores belong to the page's origin, port included: one server (one port) for the whole half, a fresh profile per bench run.
  const origin = server.resolvedUrls!.local[0];
  const profile = join(PEERS_CACHE, 'chromium-profile');
  rmSync(profile, { recursive: true, force: true });
  const urlOf = (file: PeerFile) => `${origin.replace(/\/$/, '')}/@fs${file.path}`;
  let browserVersion = '';
  try {
    const prep = await launch(profile);
    browserVersion = `Chromium ${prep.browser()?.version() ?? ''} (headless)`;
    const page = await openPage(prep, origin);
    for (const file of files) {
      log(`putting ${file.key} into webmoe's IndexedDB store and wllama's cache`);
      await page.evaluate(([u, id]) => window.peers!.importWebmoe(u, id), [urlOf(file), modelId(file)] as const);
      await page.evaluate((u) => window.peers!.cacheWllama(u), urlOf(file));
    }
    await prep.close();

    const measure = (base: Omit<RunRecord, 'figures' | 'error'>, args: RunArgs, expect: number) =>
      record(base, async () => {
        const context = await launch(profile);
        try {
          const page = await openPage(context, origin);
          await new Promise((r) => setTimeout(r, 500));
          const baseRssBytes = treePssBytes(descendants(process.pid));
          const sampler = sampleTreeMemory(process.pid);
          let peakRssBytes = 0;
          const figures = await page
            .evaluate((a) => (a.kind === 'webmoe'
              ? window.peers!.runWebmoe(a.id!, a.text, a.decode, a.budgetMB)
              : window.peers!.runWllama(a.url!, a.text, a.decode, a.webgpu!, a.threads!, a.banned!)), args)
            .finally(() => (peakRssBytes = sampler.stop()));
          return { ...figures, baseRssBytes, peakRssBytes };
        } finally {
          await context.close();
        }
      }, expect);

    const webgpuFailed = new Set<string>();
    for (const file of files) {
      const { text, tokens, banned } = prompts.get(file.key)!;
      const url = urlOf(file);
      const id = modelId(file);
      const wllama = { kind: 'wllama', url, text, decode: DECODE_TOKENS, threads: WLLAMA_THREADS, banned } as const;
      for (let round = 0; round < ROUNDS; round++) {
        if (SYSTEMS.has('webmoe')) await measure({ env: 'browser', system: 'webmoe', file: file.key, budget: 1, round }, { kind: 'webmoe', id, text, decode: DECODE_TOKENS }, tokens);
        if (SYSTEMS.has('wllama-wasm')) await measure({ env: 'browser', system: 'wllama-wasm', file: file.key, budget: 1, round }, { ...wllama, webgpu: false }, tokens);
        // A path that cannot run here is tried once per file, not every round.
        if (!SYSTEMS.has('wllama-webgpu') || webgpuFailed.has(file.key)) continue;
        const r = await measure({ env: 'browser', system: 'wllama-webgpu', file: file.key, budget: 1, round }, { ...wllama, webgpu: true }, tokens);
        if (!r.figures) webgpuFailed.add(file.key);
      }
      if (!SYSTEMS.has('webmoe')) continue;
      for (const budget of BROWSER_BUDGETS.filter((b) => b < 1)) {
        const budgetMB = (budget * file.expertBytes) / 2 ** 20;
        await measure({ env: 'browser', system: 'webmoe', file: file.key, budget, round: 0 }, { kind: 'webmoe', id, text, decode: DECODE_TOKENS, budgetMB }, tokens);
      }
    }
  } finally {
    await server.close();
  }
  return browserVersion;
}

/** One browser run, as the page gets it. */
interface RunArgs {
  kind: 'webmoe' | 'wllama';
  id?: string;
  url?: string;
  text: string;
  decode: number;
  budgetMB?: number;
  webgpu?: boolean;
  threads?: number;
  /** Token ids wllama must not generate (nonAsciiTokens). */
  banned?: readonly number[];
}

declare global {
  interface Window {
    peers?: PeersPage;
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const only = opt.files?.split(',');
  const files = await peerFiles(LAYERS, only, log);
  if (files.length === 0) throw new Error(`no files match --files ${opt.files}`);
  const promptDir = join(PEERS_CACHE, 'prompts');
  mkdirSync(promptDir, { recursive: true });
  const prompts = new Map<string, FilePrompt>();
  for (const file of files) {
    const prompt = await filePrompt(file, promptDir);
    prompts.set(file.key, prompt);
    const { tokens } = prompt;
    if (tokens !== PROMPT_TOKENS) notes.push(`${file.key}: a ${tokens}-token prompt, as its context (${tokens + DECODE_TOKENS}) holds no more with ${DECODE_TOKENS} tokens after it.`);
  }
  notes.push(
    'Load: from the call that opens a model already in the system\'s store (webmoe: its file store in Node, IndexedDB in Chromium; wllama: its Cache Storage copy; llama.cpp: the file, in the page cache) until it can generate.',
    'Prefill and decode tok/s: as each system reports them (webmoe: its usage figures; wllama: llama.cpp server timings; llama.cpp in Node: the time to the first generated token, then per token after it), greedy, end-of-generation tokens ignored.',
    'Peak memory: what the run added to resident memory at its peak: in Node the run\'s own process (peak RSS minus RSS before loading, so llama.cpp\'s mapped file counts); in Chromium every browser process (summed Pss, sampled every 100 ms, minus the same before loading), which holds SwiftShader\'s GPU buffers and wllama\'s WebAssembly memory. webmoe GPU MB is its own count of the buffers it holds.',
    'wllama runs ban the tokens whose bytes are not ASCII (a logit bias of -100): its server throws while writing the JSON of a completion that is not valid UTF-8, which random-weight models produce, and its worker then fails with "Invalid typed array length: 1163217991" (the request\'s GLUE magic read as the reply length).',
  );
  if (!opt['skip-node']) await nodeHalf(files, prompts);
  const browser = opt['skip-browser'] ? '' : await browserHalf(files, prompts);

  const adapterOf = (env: 'node' | 'browser') => records.find((r) => r.env === env && r.system === 'webmoe' && r.figures?.adapter)?.figures?.adapter ?? '-';
  const nodeAdapter = adapterOf('node');
  const browserAdapter = adapterOf('browser');
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const input: PeersReportInput = {
    command: `npm run bench:peers -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, no GPU in use: every WebGPU figure here is a CPU adapter`,
    nodeAdapter: `${nodeAdapter} (Dawn, npm webgpu)`,
    browserAdapter: `${browserAdapter}${browser ? ` in ${browser}` : ''}`,
    browser,
    promptTokens: PROMPT_TOKENS,
    decodeTokens: DECODE_TOKENS,
    rounds: ROUNDS,
    files: files.map(({ key, label, bytes, expertBytes, layers }) => ({ key, label, bytes, expertBytes, layers })),
    records,
    notes,
  };
  const slug = /lavapipe|llvmpipe|swiftshader|^-$/i.test(nodeAdapter) ? 'cpu' : nodeAdapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  mkdirSync(opt.out, { recursive: true });
  const base = join(opt.out, `peers-${slug}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(input, null, 2)}\n`);
  writeFileSync(`${base}.svg`, peersChart(input));
  writeFileSync(`${base}.md`, peersMarkdown(input, `peers-${slug}.svg`));
  log(`wrote ${base}.{json,md,svg} in ${((Date.now() - started) / 60_000).toFixed(1)} min`);
  process.stdout.write(readFileSync(`${base}.md`, 'utf8'));
}

await main();
