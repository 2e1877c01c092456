/**
 * Real faults of the weight store in real Chromium (the test pages build,
 * test/pages/store.html, driven through window.storeFaults), each a test
 * that fails if anything stored is lost or a broken model is offered:
 *
 *  1. an import of the built-in 6.8 MiB model interrupted five times (the
 *     tab closed, its worker terminated, the whole browser closed, the tab
 *     closed while its worker imports, the tab closed while verifying)
 *     resumes each time keeping everything an earlier run reported written;
 *     at the end every tensor read back through the store equals the file's
 *     bytes, every record matches its hash, and the stored model (in the
 *     engine's worker) generates the same greedy text as the file's bytes
 *     loaded directly in the tab;
 *  2. two tabs of one origin: one lists and loads while the other imports
 *     (only ever 'importing', never 'complete' with records missing; a load
 *     is a typed MODEL_NOT_READY); both import one model at once (the second
 *     waits on the Web Lock and finds it complete; when the first tab is
 *     closed, the waiting one resumes its work); one deletes a model the other
 *     is generating with under a small expert budget (the next request fails
 *     with MODEL_NOT_FOUND saying it was deleted, not with garbage); one
 *     deletes a model the other is importing (the import stops with
 *     MODEL_NOT_FOUND instead of committing it later); one deletes whole
 *     databases while the others hold them open (not blocked);
 *  3. a real origin quota set through the DevTools protocol, smaller than a
 *     model: its import stops with QUOTA_EXCEEDED (bytes needed and
 *     available) and leaves the model 'importing' (it refuses to open), a
 *     model stored before stays intact and loads, a retry without space keeps
 *     what was written, and once the quota is raised the import resumes and
 *     completes.
 * The browser is one persistent context (so that closing it keeps its
 * storage, as closing a real browser does), relaunched once by fault 1.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import type { FaultImport, ImportOutcome, ProgressReport, StoreFaultsPage } from '../pages/store-page';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';

const root = resolve(import.meta.dirname, '../..');
// Its own output folder: other e2e files build the test pages too, maybe at the same time.
const outDir = resolve(root, 'dist/test-pages-store-faults');
const BIG = './default-moe-q8_0.gguf';
const SMALL = './small-olmoe.gguf';
const KiB = 1024;
const MiB = 1024 * KiB;
/** Small batches and chunks: a 7 MB import then has ~30 points to be interrupted at. */
const LAYOUT = { batchBytes: 256 * KiB, sharedChunkBytes: 256 * KiB };
const PROMPT = 'Once upon a time';
const TOKENS = 6;
/** GPU memory for routed experts: 8 of the default model's 64 expert records (78 KB each), so it streams. */
const EXPERT_BUDGET_MB = 0.6;

let server: PreviewServer;
/** The same pages on another port: another origin, whose storage starts empty, for the quota test. */
let quotaServer: PreviewServer;
let userDataDir: string;
let context: BrowserContext;
let baseUrl: string;
let smallBytes = 0;
/** Progress events each page has reported, in order. */
const progress = new Map<Page, ProgressReport[]>();
/** The reference: the file's bytes loaded straight into an Engine in a tab, greedy. */
let reference: { text?: string; completionTokens?: number } | undefined;
/** The tab whose engine the first test loaded from the resumed model (streaming experts), for the second test. */
let enginePage: Page | undefined;

async function launch(): Promise<void> {
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

beforeAll(async () => {
  const configFile = resolve(root, 'vite.config.ts');
  await build({ configFile, mode: 'test-pages', logLevel: 'warn', build: { outDir } });
  copyFileSync(resolve(root, 'models/default-moe-q8_0.gguf'), join(outDir, 'default-moe-q8_0.gguf'));
  const small = makeTinyModel({ arch: 'olmoe', seed: 11, layers: 2, merges: 60 });
  smallBytes = small.byteLength;
  writeFileSync(join(outDir, 'small-olmoe.gguf'), small);
  server = await preview({ configFile, mode: 'test-pages', logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
  baseUrl = server.resolvedUrls!.local[0];
  quotaServer = await preview({ configFile, mode: 'test-pages', logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
  userDataDir = mkdtempSync(join(tmpdir(), 'webmoe-store-faults-'));
  await launch();
}, 180_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  await quotaServer?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

async function openPage(base = baseUrl): Promise<Page> {
  const page = await context.newPage();
  const events: ProgressReport[] = [];
  progress.set(page, events);
  await page.exposeFunction('faultProgress', (p: ProgressReport) => void events.push(p));
  await page.goto(new URL('store.html', base).href);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  return page;
}

type Faults = StoreFaultsPage;
/** Runs a window.storeFaults method in the page. */
function call<K extends keyof Faults>(page: Page, method: K, ...args: Parameters<Faults[K]>): Promise<Awaited<ReturnType<Faults[K]>>> {
  return page.evaluate(([m, a]) => {
    const faults = (window as unknown as { storeFaults: Record<string, (...x: unknown[]) => unknown> }).storeFaults;
    return faults[m](...a);
  }, [method, args] as const) as Promise<Awaited<ReturnType<Faults[K]>>>;
}

/** Resolves with the first progress event of `page` that matches; rejects when `settled` settles first or after `ms`. */
async function progressWhere(page: Page, match: (p: ProgressReport) => boolean, settled: Promise<unknown>, ms = 30_000): Promise<ProgressReport> {
  const events = progress.get(page)!;
  let done: unknown;
  void settled.then((outcome) => (done = outcome ?? 'settled'), (error) => (done = String(error)));
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = events.find(match);
    if (hit) return hit;
    if (done !== undefined) throw new Error(`the import ended before the awaited progress (last: ${JSON.stringify(events.at(-1))}): ${JSON.stringify(done)}`);
    if (Date.now() > deadline) throw new Error('no such progress in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Seconds since the previous call, for the timings printed. */
function lapper(): () => string {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const text = `${((now - last) / 1000).toFixed(1)} s`;
    last = now;
    return text;
  };
}

const fraction = (p: ProgressReport) => (p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 1);
const mib = (n: number) => `${(n / MiB).toFixed(2)} MiB`;

function startImport(page: Page, o: FaultImport, where: 'page' | 'worker'): Promise<ImportOutcome> {
  const run = call(page, where === 'page' ? 'runImport' : 'runImportInWorker', o);
  run.catch(() => undefined); // an interrupted run's evaluate rejects (target closed) or never settles (worker gone)
  return run;
}

describe('weight store under real faults (Chromium)', () => {
  it('an import interrupted by closing the tab, killing its worker or closing the browser resumes and loses nothing', async () => {
    // A slightly slow source (3 ms a read), so that the import moves on by a batch or two, not five, while a close lands.
    const o: FaultImport = { url: BIG, modelId: 'resumable', databaseName: 'faults-resume', ...LAYOUT, readDelayMs: 3 };
    const faults = [
      { where: 'page', phase: 'writing', at: 0.1, how: 'tab closed' },
      { where: 'worker', phase: 'writing', at: 0.35, how: 'worker terminated' },
      { where: 'page', phase: 'writing', at: 0.55, how: 'browser closed' },
      { where: 'worker', phase: 'writing', at: 0.75, how: 'tab closed (import in its worker)' },
      { where: 'page', phase: 'verifying', at: 0.3, how: 'tab closed while verifying', slowVerify: true },
    ] as const;
    const lap = lapper();
    interface RunFigures { how: string; keptBytes: number; lastReported: ProgressReport; sourceBytesRead: number }
    const runs: RunFigures[] = [];
    for (const fault of faults) {
      const page = await openPage();
      // Verifying 6.8 MiB takes a moment only: slowed down, the close surely lands before the commit.
      const run = startImport(page, 'slowVerify' in fault ? { ...o, storeReadDelayMs: 25 } : o, fault.where);
      const first = await progressWhere(page, (p) => p.phase === 'writing', run);
      // Past the mark, and past at least one batch of this run's own.
      await progressWhere(page, (p) => p.phase === fault.phase && fraction(p) >= fault.at && (p.phase !== 'writing' || p.bytesDone > first.bytesDone), run);
      if (fault.how === 'worker terminated') expect(await call(page, 'terminateWorker')).toBe(true);
      const events = progress.get(page)!;
      const lastReported = events.at(-1)!;
      if (fault.how === 'browser closed') {
        await context.close();
        await launch();
      } else {
        await page.close();
      }
      runs.push({ how: fault.how, keptBytes: first.bytesDone, lastReported, sourceBytesRead: lastReported.sourceBytesRead });
    }

    const page = await openPage();
    const final = await call(page, 'runImport', { ...o, readDelayMs: 0 });
    expect(final.error, JSON.stringify(final.error)).toBeUndefined();
    const result = final.result!;
    const total = final.firstWriting!.bytesTotal;
    expect(result).toMatchObject({ alreadyComplete: false, state: 'complete' });

    // Nothing an interrupted run reported as written was written again by the next one.
    const kept = [...runs.slice(1).map((r) => r.keptBytes), final.firstWriting!.bytesDone];
    const lines = runs.map((r, i) => {
      const reported = r.lastReported.phase === 'writing' ? r.lastReported.bytesDone : total;
      const lost = Math.max(0, reported - kept[i]);
      expect(lost, `${r.how}: bytes reported written before the fault but missing after it`).toBe(0);
      const rewritten = total - kept[i];
      return `  fault ${i + 1} (${r.how}) at ${r.lastReported.phase} ${mib(r.lastReported.bytesDone)}: ` +
        `next run kept ${mib(kept[i])} of ${mib(total)} (lost 0), still to write ${mib(rewritten)}`;
    });
    // The run after the fault while verifying rewrites nothing.
    expect(final.firstWriting!.bytesDone).toBe(total);
    expect(result.bytesWritten).toBe(0);
    expect(result.bytesResumed).toBe(total);
    console.log(
      `[store faults] import of ${mib(total)} in ${LAYOUT.batchBytes / KiB} KiB batches, interrupted ${runs.length} times:\n${lines.join('\n')}\n` +
        `  source bytes read by each interrupted run up to its fault: ${runs.map((r) => mib(r.sourceBytesRead)).join(', ')}\n` +
        `  last run: re-read ${mib(final.sourceBytesRead)} from the file (header and fingerprint samples), re-wrote ${mib(result.bytesWritten)}, ` +
        `kept ${result.recordsResumed} records (${mib(result.bytesResumed)}), verified them all, committed in ${final.ms.toFixed(0)} ms`,
    );

    const timings = [`faults and resumes ${lap()}`];
    const check = await call(page, 'checkAgainstFile', o.databaseName, o.modelId, BIG);
    expect(check.mismatched).toEqual([]);
    expect(check.problems).toEqual([]);
    expect(check.tensors).toBeGreaterThan(0);
    expect(check.metadataKeys).toBe(check.fileMetadataKeys);
    timings.push(`reading back ${check.tensors} tensors (${mib(check.bytesCompared)}) ${lap()}`);

    // The stored model in the engine's worker of another tab, streaming its experts under a small budget (so that it
    // keeps reading the store: the next test deletes the model under it), against the file's bytes loaded directly
    // in this tab; both at once, as they are independent.
    enginePage = await openPage();
    const [ref, loaded] = await Promise.all([
      call(page, 'referenceText', BIG, PROMPT, TOKENS),
      call(enginePage, 'loadStored', o.databaseName, o.modelId, EXPERT_BUDGET_MB),
    ]);
    reference = ref;
    expect(reference.completionTokens).toBe(TOKENS);
    expect(loaded).toBe('loaded');
    const stored = await call(enginePage, 'complete', PROMPT, TOKENS);
    timings.push(`reference and stored model load and generate ${lap()}`);
    expect(stored.error).toBeUndefined();
    expect(stored).toEqual(reference);
    console.log(`[store faults] greedy ${TOKENS} tokens, stored model in the engine worker: ${JSON.stringify(stored.text)}; file bytes loaded directly: ${JSON.stringify(reference.text)}; ${timings.join(', ')}`);
    await page.close();
  }, 120_000);

  it('two tabs of one origin: listing, loading, importing together and deleting under each other', async () => {
    const databaseName = 'faults-two-tabs';
    const [a, b] = [await openPage(), await openPage()];

    // (a) B lists and loads while A imports slowly.
    const o: FaultImport = { url: BIG, modelId: 'shared', databaseName, ...LAYOUT, readDelayMs: 12 };
    const importing = call(a, 'runImport', o);
    let finished = false;
    void importing.finally(() => (finished = true));
    const seen: { state: string; presentBytes: number; storedBytes: number }[] = [];
    let notReady: Awaited<ReturnType<Faults['openFacts']>> | undefined;
    let loadWhileImporting: Awaited<ReturnType<Faults['loadStored']>> | undefined;
    while (!finished) {
      const entry = (await call(b, 'listModels', databaseName)).find((m) => m.modelId === 'shared');
      if (entry) seen.push({ state: entry.state, presentBytes: entry.presentBytes, storedBytes: entry.storedBytes });
      if (entry?.state === 'importing' && entry.presentBytes > 0 && notReady === undefined) {
        notReady = await call(b, 'openFacts', databaseName, 'shared');
        loadWhileImporting = await call(b, 'loadStored', databaseName, 'shared');
      }
    }
    expect((await importing).error).toBeUndefined();
    const afterImport = (await call(b, 'listModels', databaseName)).find((m) => m.modelId === 'shared')!;
    expect(afterImport.state).toBe('complete');
    const importingSeen = seen.filter((s) => s.state === 'importing');
    expect(importingSeen.length, 'B saw the import under way').toBeGreaterThan(3);
    for (const s of seen.filter((x) => x.state === 'complete')) expect(s.presentBytes).toBe(s.storedBytes);
    expect(notReady).toMatchObject({ code: 'MODEL_NOT_READY' });
    expect(loadWhileImporting).toMatchObject({ code: 'MODEL_NOT_FOUND', sourceCode: 'MODEL_NOT_READY' });
    console.log(`[store faults] tab B listed the model ${seen.length} times during tab A's import: ${importingSeen.length} 'importing' ` +
      `(present ${mib(importingSeen[0].presentBytes)} .. ${mib(importingSeen.at(-1)!.presentBytes)}), ` +
      `then 'complete'; loading it meanwhile: ${(loadWhileImporting as { message: string }).message}`);

    // (b) Both import one model at once: the second waits for the first's lock and finds the model complete.
    const both: FaultImport = { url: BIG, modelId: 'together', databaseName, ...LAYOUT, readDelayMs: 2 };
    const [ra, rb] = await Promise.all([call(a, 'runImport', both), call(b, 'runImportInWorker', both)]);
    expect(ra.error).toBeUndefined();
    expect(rb.error).toBeUndefined();
    const outcomes = [ra.result!, rb.result!].sort((x, y) => Number(x.alreadyComplete) - Number(y.alreadyComplete));
    expect(outcomes[0]).toMatchObject({ alreadyComplete: false, recordsResumed: 0 });
    expect(outcomes[1]).toMatchObject({ alreadyComplete: true, bytesWritten: 0 });
    const together = await call(a, 'checkAgainstFile', databaseName, 'together', BIG);
    expect(together.mismatched).toEqual([]);
    expect(together.problems).toEqual([]);

    // (b') The tab holding the lock is closed mid-import: the waiting one gets the lock and resumes its work.
    const c = await openPage();
    const joined: FaultImport = { url: BIG, modelId: 'joined', databaseName, ...LAYOUT, readDelayMs: 2 };
    const holder = startImport(c, joined, 'page');
    const reached = await progressWhere(c, (p) => p.phase === 'writing' && fraction(p) >= 0.3, holder);
    const waiter = call(b, 'runImport', joined);
    await new Promise((r) => setTimeout(r, 100));
    await c.close();
    const rw = await waiter;
    expect(rw.error).toBeUndefined();
    expect(rw.result).toMatchObject({ alreadyComplete: false, state: 'complete' });
    expect(rw.result!.bytesResumed).toBeGreaterThanOrEqual(reached.bytesDone);
    const joinedCheck = await call(b, 'checkAgainstFile', databaseName, 'joined', BIG);
    expect(joinedCheck.mismatched).toEqual([]);
    expect(joinedCheck.problems).toEqual([]);
    console.log(`[store faults] two imports at once: one wrote ${mib(outcomes[0].bytesWritten)}, the other waited and found it complete; ` +
      `with the importing tab closed at ${mib(reached.bytesDone)}, the waiting tab resumed keeping ${mib(rw.result!.bytesResumed)}`);

    // (c) A deletes the model another tab is generating with (the first test's engine, which streams experts, so it
    // reads the store again on the next request).
    expect(enginePage, 'the first test left its engine loaded').toBeDefined();
    const user = enginePage!;
    expect(await call(a, 'deleteModel', 'faults-resume', 'resumable')).toBe(true);
    const afterDelete = await call(user, 'complete', 'The king and the river', TOKENS);
    expect(afterDelete.text).toBeUndefined();
    expect(afterDelete.error).toMatchObject({ code: 'MODEL_NOT_FOUND', sourceCode: 'MODEL_NOT_FOUND' });
    expect(afterDelete.error!.message).toMatch(/deleted/);
    const again = await call(user, 'complete', 'A third request', TOKENS);
    expect(again.text).toBeUndefined();
    expect(again.error).toMatchObject({ code: 'MODEL_NOT_FOUND' });
    console.log(`[store faults] deleted under a running engine: next request -> ${afterDelete.error!.code}: ${afterDelete.error!.message}; ` +
      `the one after -> ${again.error!.code}`);

    // (e) A deletes a model B is importing: B's import stops with MODEL_NOT_FOUND rather than committing a model
    // without its records, and the next import starts over.
    const doomed: FaultImport = { url: BIG, modelId: 'doomed', databaseName, ...LAYOUT, readDelayMs: 6 };
    const doomedRun = call(b, 'runImport', doomed);
    await progressWhere(b, (p) => p.modelId === 'doomed' && p.phase === 'writing' && fraction(p) >= 0.3, doomedRun);
    expect(await call(a, 'deleteModel', databaseName, 'doomed')).toBe(true);
    const stopped = await doomedRun;
    expect(stopped.result).toBeUndefined();
    expect(stopped.error).toMatchObject({ code: 'MODEL_NOT_FOUND' });
    expect(stopped.error!.message).toMatch(/deleted .*while it was being imported/);
    expect((await call(a, 'listModels', databaseName)).map((m) => m.modelId)).not.toContain('doomed');
    const again2 = await call(a, 'runImport', { ...doomed, readDelayMs: 0 });
    expect(again2.result).toMatchObject({ state: 'complete', recordsResumed: 0 });
    expect(await call(a, 'deleteModel', databaseName, 'doomed')).toBe(true);

    // (d) Deleting a whole database is not blocked by the connections other tabs (and their workers) hold open.
    expect((await call(b, 'listModels', databaseName)).map((m) => m.modelId)).toEqual(['joined', 'shared', 'together']);
    expect(await call(a, 'deleteDatabase', databaseName, 10_000)).toBe('deleted');
    expect(await call(b, 'listModels', databaseName)).toEqual([]);
    expect(await call(a, 'deleteDatabase', 'faults-resume', 10_000)).toBe('deleted');
    const afterDrop = await call(user, 'complete', 'Once more', TOKENS);
    expect(afterDrop.error).toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await call(user, 'unload');
    await Promise.all([a.close(), b.close(), user.close()]);
  }, 120_000);

  it('a real quota smaller than a model: its import stops typed, nothing usable is half-written, other models stay intact, and it resumes once raised', async () => {
    const databaseName = 'faults-quota';
    const lap = lapper();
    const quotaBase = quotaServer.resolvedUrls!.local[0];
    const page = await openPage(quotaBase);
    const cdp = await page.context().newCDPSession(page);
    const origin = new URL(quotaBase).origin;
    const usage = async () => ((await cdp.send('Storage.getUsageAndQuota', { origin })) as { usage: number }).usage;
    const setQuota = (quotaSize?: number) => cdp.send('Storage.overrideQuotaForOrigin', quotaSize === undefined ? { origin } : { origin, quotaSize });

    // The quota is set before the origin stores anything: Chromium's IndexedDB trusts the space it was last told is
    // free for up to 30 s (BucketContext::kBucketSpaceCacheTimeLimit), so a quota lowered later bites only then.
    // (And navigator.storage.estimate() ignores a DevTools quota: the store's up-front check cannot see it coming.)
    const quota = smallBytes + 2 * MiB;
    await setQuota(quota);
    const small: FaultImport = { url: SMALL, modelId: 'small', databaseName, ...LAYOUT };
    expect((await call(page, 'runImport', small)).result).toMatchObject({ state: 'complete' });
    const smallIntact = async () => {
      const check = await call(page, 'checkAgainstFile', databaseName, 'small', SMALL);
      expect(check.mismatched).toEqual([]);
      expect(check.problems).toEqual([]);
    };
    await smallIntact();
    const usedBefore = await usage();

    // The 6.8 MiB model does not fit in the 2 MiB left: its import runs out of space part-way.
    const big: FaultImport = { url: BIG, modelId: 'big', databaseName, ...LAYOUT };
    const full = await call(page, 'runImport', big);
    expect(full.error, `the import ran out of space (origin usage before it: ${usedBefore} bytes)`).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    const total = full.firstWriting!.bytesTotal;
    const written = full.lastProgress!.bytesDone;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThanOrEqual(quota - usedBefore);
    expect(full.error!.neededBytes, 'needed: what is left to write').toBe(total - written);
    expect(full.error!.availableBytes).toBeLessThan(full.error!.neededBytes!);
    expect(full.error!.availableBytes).toBeLessThanOrEqual(LAYOUT.batchBytes + 4 * KiB);

    // Nothing usable is half-written: 'big' is listed as importing and refuses to open; 'small' is intact and loads.
    const listed = await call(page, 'listModels', databaseName);
    expect(listed.map((m) => [m.modelId, m.state])).toEqual([['big', 'importing'], ['small', 'complete']]);
    const partial = listed.find((m) => m.modelId === 'big')!;
    expect(partial.presentBytes).toBe(written);
    expect(await call(page, 'openFacts', databaseName, 'big')).toMatchObject({ code: 'MODEL_NOT_READY' });
    expect(await call(page, 'loadStored', databaseName, 'big')).toMatchObject({ code: 'MODEL_NOT_FOUND', sourceCode: 'MODEL_NOT_READY' });
    await smallIntact();
    const importTime = lap();
    expect(await call(page, 'loadStored', databaseName, 'small')).toBe('loaded');
    const smallText = await call(page, 'complete', PROMPT, 4);
    expect(smallText.error).toBeUndefined();
    expect(smallText.completionTokens).toBeGreaterThan(0);
    await call(page, 'unload');
    const loadTime = lap();

    // Trying again without more space fails the same way and keeps what it had.
    const again = await call(page, 'runImport', big);
    expect(again.error).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(again.firstWriting!.bytesDone).toBe(written);

    // More space: the import resumes where it stopped and completes.
    await setQuota();
    const resumed = await call(page, 'runImport', big);
    expect(resumed.error).toBeUndefined();
    expect(resumed.result).toMatchObject({ state: 'complete', alreadyComplete: false, bytesResumed: written, bytesWritten: total - written });
    const check = await call(page, 'checkAgainstFile', databaseName, 'big', BIG);
    expect(check.mismatched).toEqual([]);
    expect(check.problems).toEqual([]);
    await smallIntact();
    console.log(
      `[store faults] quota ${mib(quota)} (${mib(usedBefore)} used by the small model): the import stopped after ${mib(written)} of ${mib(total)} with ${full.error!.message}\n` +
        `  after raising it the import kept ${mib(resumed.result!.bytesResumed)} and wrote ${mib(resumed.result!.bytesWritten)}; the small model stored before verified and loaded throughout; ` +
        `imports ${importTime}, small model load and generate ${loadTime}, retry, resume and checks ${lap()}`,
    );
    await cdp.detach();
    await page.close();
  }, 90_000);
});
