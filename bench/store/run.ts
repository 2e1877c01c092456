/**
 * `npm run bench:store`: import and random-expert read throughput of the
 * weight store, each against a plain baseline measured in the same run.
 *
 *   Chromium (IndexedDB): a ~1.1 GB generated GGUF on disk, picked through a
 *     file input (a disk-backed File, as a user would pick it), imported by
 *     the store; baseline: plain IndexedDB put of records of the same sizes
 *     read from the same file, one per transaction. Random reads of expert
 *     records (~4.9 MB each, an OLMoE-size expert in Q6_K) against plain gets.
 *     The page's peak JS heap (V8 heap + ArrayBuffer backing stores, sampled
 *     through the DevTools protocol) is reported for the import.
 *   Node (filesystem): the same file imported from its path; baseline: plain
 *     writeFile/readFile of the same record sizes.
 *
 * Figures are printed, never asserted. Environment: BENCH_STORE_DIR (where
 * the generated model is kept between runs, default the OS temp dir),
 * BENCH_STORE_READS (random reads per phase, default 200).
 */

import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright';
import type { CDPSession, Page } from 'playwright';
import { createServer } from 'vite';
import { sourceFromPath } from '../../src/gguf/source-node';
import { GgmlType } from '../../src/quant/formats';
import { openFsWeightStore } from '../../src/store/fs-node';
import { manifestRecords } from '../../src/store/manifest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../test/setup/chromium';
import { expertRecordBytes, writeBigModel } from './big-model';
import type { BigModelShape } from './big-model';
import type { PhaseResult } from './page/main';

const root = resolve(import.meta.dirname, '../..');
const MB = 1e6;
const SHAPE: BigModelShape = { layers: 12, experts: 16, hidden: 2048, expertFF: 1024, vocab: 8192, type: GgmlType.Q6_K };
const READS = Number(process.env.BENCH_STORE_READS ?? 200);
const BATCH_BYTES = process.env.BENCH_STORE_BATCH_MB === undefined ? undefined : Number(process.env.BENCH_STORE_BATCH_MB) * 2 ** 20;

interface Row {
  what: string;
  result: PhaseResult;
  baseline?: PhaseResult;
  note?: string;
}

const step = (what: string) => process.stderr.write(`  ${what}…\n`);
const mbps = (r: PhaseResult) => r.bytes / MB / r.seconds;

function printTable(title: string, rows: readonly Row[]): void {
  const lines = rows.map((r) => [
    r.what,
    `${(r.result.bytes / MB).toFixed(0)} MB / ${r.result.count}`,
    `${r.result.seconds.toFixed(2)} s`,
    `${mbps(r.result).toFixed(0)} MB/s`,
    r.baseline ? `${mbps(r.baseline).toFixed(0)} MB/s` : '',
    r.baseline ? `${(mbps(r.result) / mbps(r.baseline)).toFixed(2)}x` : '',
    r.note ?? '',
  ]);
  const head = ['phase', 'bytes / records', 'time', 'store', 'baseline', 'store/base', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(`\n${title}`);
  console.log(format(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(format(l));
}

interface HeapPeak<T> {
  value: T;
  /** Before the run, after a full GC. */
  baseBytes: number;
  peakBytes: number;
  /** Peaks in the first and second half of the run: equal-ish when memory is bounded, growing when it is not. */
  firstHalfPeakBytes: number;
  secondHalfPeakBytes: number;
}

/** Samples the page's heap (V8 heap + ArrayBuffer backing stores) while `run` is in flight. */
async function withHeapPeak<T>(cdp: CDPSession, run: () => Promise<T>): Promise<HeapPeak<T>> {
  await cdp.send('HeapProfiler.collectGarbage');
  const sample = async () => {
    const usage = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
    return usage.usedSize + (usage.backingStorageSize ?? 0);
  };
  const baseBytes = await sample();
  const samples: Array<[number, number]> = [];
  let running = true;
  const sampler = (async () => {
    while (running) {
      samples.push([performance.now(), await sample()]);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const start = performance.now();
  try {
    const value = await run();
    const middle = (start + performance.now()) / 2;
    const peak = (keep: (t: number) => boolean) => Math.max(baseBytes, ...samples.filter(([t]) => keep(t)).map(([, b]) => b));
    return { value, baseBytes, peakBytes: peak(() => true), firstHalfPeakBytes: peak((t) => t < middle), secondHalfPeakBytes: peak((t) => t >= middle) };
  } finally {
    running = false;
    await sampler;
  }
}

const heapNote = (h: HeapPeak<unknown>) =>
  `peak heap ${(h.peakBytes / MB).toFixed(0)} MB (idle ${(h.baseBytes / MB).toFixed(0)}; 1st half ${(h.firstHalfPeakBytes / MB).toFixed(0)}, 2nd half ${(h.secondHalfPeakBytes / MB).toFixed(0)})`;

async function chromiumBench(ggufPath: string): Promise<Row[]> {
  const server = await createServer({
    configFile: false,
    root: resolve(root, 'bench/store/page'),
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, fs: { allow: [root] } },
  });
  await server.listen();
  // A profile on disk, as a user's: an off-the-record context keeps IndexedDB in memory with a small quota.
  const profileDir = await mkdtemp(join(tmpdir(), 'webmoe-bench-profile-'));
  const browser = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  try {
    const page: Page = await browser.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(server.resolvedUrls!.local[0]);
    await page.waitForFunction(() => window.storeBench?.ready === true, undefined, { timeout: 120_000 });
    await page.setInputFiles('#file', ggufPath);
    const cdp = await page.context().newCDPSession(page);
    await page.evaluate(() => window.storeBench.resetDatabases());

    step('chromium: import, verify all');
    const imported = await withHeapPeak(cdp, () => page.evaluate((b) => window.storeBench.importPhase('all', b), BATCH_BYTES));
    step('chromium: import, verify none');
    const importedNoVerify = await withHeapPeak(cdp, () => page.evaluate((b) => window.storeBench.importPhase('none', b), BATCH_BYTES));
    step('chromium: baseline put');
    const baselinePut = await page.evaluate(() => window.storeBench.baselinePutPhase());
    step('chromium: reads');
    const reads = await page.evaluate((n) => window.storeBench.readPhases(n), READS);
    const sha256 = await page.evaluate((bytes) => window.storeBench.hashPhase(bytes, 100, 'sha256'), expertRecordBytes(SHAPE));
    const xxh32 = await page.evaluate((bytes) => window.storeBench.hashPhase(bytes, 100, 'xxh32'), expertRecordBytes(SHAPE));
    await page.evaluate(() => window.storeBench.resetDatabases());
    return [
      { what: 'import (verify all)', result: imported.value, baseline: baselinePut, note: heapNote(imported) },
      { what: 'import (verify none)', result: importedNoVerify.value, baseline: baselinePut, note: heapNote(importedNoVerify) },
      { what: 'random expert read', result: reads.store, baseline: reads.baseline, note: 'interleaved with the baseline' },
      { what: 'random expert read, verified', result: reads.verified, baseline: reads.baseline },
      { what: 'hash: xxHash32 (plain JS)', result: xxh32, note: 'the record hash; blocks the calling thread' },
      { what: 'hash: SHA-256 (WebCrypto)', result: sha256, note: 'the alternative; runs off the calling thread' },
    ];
  } finally {
    await browser.close();
    await server.close();
    await rm(profileDir, { recursive: true, force: true });
  }
}

async function nodeBench(ggufPath: string): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'webmoe-bench-fs-'));
  try {
    step('node: import');
    const store = await openFsWeightStore(join(dir, 'store'));
    const source = await sourceFromPath(ggufPath);
    let start = performance.now();
    const { manifest } = await store.importModel(source, { modelId: 'bench', batchBytes: BATCH_BYTES });
    const importResult = { seconds: (performance.now() - start) / 1000, bytes: manifest.storedBytes, count: manifestRecords(manifest).length };

    // Baseline: the same record sizes read from the same file and written with plain writeFile.
    const records = manifestRecords(manifest);
    await rm(join(dir, 'plain'), { recursive: true, force: true });
    await mkdir(join(dir, 'plain'));
    const file = await open(ggufPath, 'r');
    start = performance.now();
    let offset = 0;
    for (const r of records) {
      const bytes = new Uint8Array(r.bytes);
      await file.read(bytes, 0, r.bytes, offset);
      offset = offset + 2 * r.bytes > source.size ? 0 : offset + r.bytes;
      await writeFile(join(dir, 'plain', r.key), bytes);
    }
    const baselinePut = { seconds: (performance.now() - start) / 1000, bytes: records.reduce((n, r) => n + r.bytes, 0), count: records.length };
    await file.close();
    await source.close();

    const model = await store.openModel('bench');
    const picks = Array.from({ length: READS }, (_, i) => [(i * 7) % SHAPE.layers, (i * 13) % SHAPE.experts]);
    // Interleaved per pick, so that a slow moment of a shared machine hits all three alike.
    const result = (): PhaseResult => ({ seconds: 0, bytes: 0, count: picks.length });
    const [reads, readsVerified, baselineGet] = [result(), result(), result()];
    const timed = async (into: PhaseResult, read: () => Promise<Uint8Array>) => {
      const t0 = performance.now();
      into.bytes += (await read()).byteLength;
      into.seconds += (performance.now() - t0) / 1000;
    };
    for (const [l, e] of picks) {
      await timed(reads, () => model.readExpert(l, e));
      await timed(readsVerified, () => model.readExpert(l, e, { verify: true }));
      await timed(baselineGet, () => readFile(join(dir, 'plain', `expert.${l}.${e}`)));
    }
    return [
      { what: 'import (verify all)', result: importResult, baseline: baselinePut },
      { what: 'random expert read', result: reads, baseline: baselineGet, note: 'page cache warm; interleaved' },
      { what: 'random expert read, verified', result: readsVerified, baseline: baselineGet },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = process.env.BENCH_STORE_DIR ?? tmpdir();
  const ggufPath = join(dir, `webmoe-store-bench-${SHAPE.layers}x${SHAPE.experts}.gguf`);
  const t0 = performance.now();
  const fileBytes = await writeBigModel(ggufPath, SHAPE);
  console.log(`batch: ${BATCH_BYTES === undefined ? 'default (16 MiB)' : `${BATCH_BYTES / 2 ** 20} MiB`}, random reads: ${READS}`);
  console.log(`model: ${ggufPath}, ${(fileBytes / MB).toFixed(0)} MB, ${SHAPE.layers} layers x ${SHAPE.experts} experts, ` +
    `expert record ${(expertRecordBytes(SHAPE) / MB).toFixed(2)} MB (ready in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  printTable('Chromium, IndexedDB (baseline: plain put/get of the same record sizes, one per transaction)', await chromiumBench(ggufPath));
  printTable('Node, filesystem (baseline: plain writeFile/readFile of the same record sizes)', await nodeBench(ggufPath));
}

await main();
