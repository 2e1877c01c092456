/**
 * The public API in real Chromium: `createEngine` from the library as a page
 * imports it (the test pages build), with the engine in its dedicated module
 * worker. A generated model Blob is imported into IndexedDB and loaded;
 * a chat completion streams (and matches the non-streamed one); with
 * moe_routing its chunks bring each run token's routed experts and the
 * residency across the worker boundary, output unchanged; an abort
 * stops a stream with ABORTED; a forced device loss is reported and the next
 * request succeeds; a bad file fails with BAD_GGUF as a WebMoeError.
 * The main thread stays free of the library's work: Long Animation Frame
 * entries (which name the script each long frame ran) attribute no script of
 * 50 ms or more to the library's bundle during generation, while a
 * deliberate 120 ms task run from that bundle is attributed to it (so the
 * check can fail). The longest main-thread task and timer lag are printed.
 */
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as WebMoe from '../../src/index';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';

const root = resolve(import.meta.dirname, '../..');
let server: PreviewServer;
let browser: Browser;

beforeAll(async () => {
  const configFile = resolve(root, 'vite.config.ts');
  await build({ configFile, mode: 'test-pages', logLevel: 'warn' });
  server = await preview({ configFile, mode: 'test-pages', logLevel: 'warn', preview: { host: '127.0.0.1', port: 0 } });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

interface Report {
  progressPhases: string[];
  streamed: string;
  chunkObjects: string[];
  whole: string;
  finishReason: string;
  usage: { prompt_tokens: number; completion_tokens: number; moe: { expert_hits: number } };
  routed: {
    text: string;
    finishReason: string | null;
    usage: { prompt_tokens: number; completion_tokens: number; cached_prompt_tokens: number };
    positions: number[];
    rows: number[][];
    ids: number[];
    firstChunkRouted: boolean;
    finalResident: number[][];
    memory: { moe_layers: number[]; experts_per_layer: number; experts_per_token: number; resident_experts: number[][] };
  };
  abortCode: string;
  abortedPieces: number;
  lostReasons: string[];
  deviceLosses: number;
  afterLoss: string;
  badCode: string;
  badIsWebMoeError: boolean;
  models: string[];
  storeModels: string[];
  longestTaskMs: number;
  longTasks: number;
  maxTimerLagMs: number;
  controlLongTaskMs: number;
  /** Scripts of 50 ms or more in long animation frames during generation, from the library's bundle. */
  libraryLongScripts: { sourceURL: string; durationMs: number }[];
  /** The same for the deliberate task run from the bundle. */
  controlLibraryScriptMs: number;
  bundleURL: string;
}

describe('createEngine in a worker (Chromium)', () => {
  it('streams, aborts, recovers from device loss and reports typed errors; the main thread stays free', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.resolvedUrls!.local[0]);
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });

    const model = Buffer.from(makeTinyModel({ arch: 'olmoe', seed: 5, layers: 2 })).toString('base64');
    const report: Report = await page.evaluate(async (b64) => {
      const webmoe = (window as unknown as { webmoe: typeof WebMoe }).webmoe;
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const progressPhases: string[] = [];
      const lostReasons: string[] = [];
      const engine = await webmoe.createEngine({
        model: new Blob([bytes]),
        modelId: 'tiny-e2e',
        contextLength: 64,
        onProgress: (p) => progressPhases.push(p.phase),
        onDeviceLost: (info) => lostReasons.push(info.reason),
      });

      // Main-thread responsiveness while generating: long tasks, and how late a 10 ms timer fires.
      const longTasks: number[] = [];
      const observer = new PerformanceObserver((list) => list.getEntries().forEach((e) => longTasks.push(e.duration)));
      observer.observe({ type: 'longtask', buffered: false });
      // Long animation frames name the scripts they ran: which of them are the library's?
      const bundleURL = (document.querySelector('script[type=module][src]') as HTMLScriptElement).src;
      type FrameScript = { sourceURL: string; duration: number };
      const frameScripts: FrameScript[] = [];
      const frames = new PerformanceObserver((list) =>
        list.getEntries().forEach((e) => frameScripts.push(...((e as unknown as { scripts: FrameScript[] }).scripts ?? []))),
      );
      frames.observe({ type: 'long-animation-frame', buffered: false });
      const libraryScripts = (from: number) =>
        frameScripts.slice(from).filter((s) => s.sourceURL === bundleURL && s.duration >= 50).map((s) => ({ sourceURL: s.sourceURL, durationMs: s.duration }));
      let maxTimerLagMs = 0;
      let expected = performance.now() + 10;
      const timer = setInterval(() => {
        maxTimerLagMs = Math.max(maxTimerLagMs, performance.now() - expected);
        expected = performance.now() + 10;
      }, 10);

      const messages = [{ role: 'user' as const, content: 'Tell me about the river.' }];
      const chunks = [];
      for await (const chunk of await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0, stream: true })) chunks.push(chunk);
      const streamed = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      const whole = await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0 });

      // The same request with moe_routing: the routing crosses the worker with the chunks.
      const routedChunks = [];
      for await (const chunk of await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0, stream: true, moe_routing: true })) routedChunks.push(chunk);
      const routedTokens = routedChunks.flatMap((c) => c.moe_routing?.tokens ?? []);
      const routedMemory = (await engine.stats()).memory!;
      const routed = {
        text: routedChunks.map((c) => c.choices[0]?.delta.content ?? '').join(''),
        finishReason: routedChunks.at(-2)!.choices[0].finish_reason,
        usage: routedChunks.at(-1)!.usage!,
        positions: routedTokens.map((t) => t.position),
        rows: routedTokens.map((t) => t.experts.map((ids) => ids.length)),
        ids: routedTokens.flatMap((t) => t.experts.flat()),
        firstChunkRouted: (routedChunks[0].moe_routing?.tokens.length ?? 0) > 0,
        finalResident: routedChunks.at(-1)!.moe_routing!.resident,
        memory: routedMemory,
      };

      const controller = new AbortController();
      let abortedPieces = 0;
      let abortCode = 'none';
      try {
        for await (const chunk of await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stream: true, signal: controller.signal })) {
          if (chunk.choices[0]?.text) abortedPieces++;
          if (abortedPieces === 1) controller.abort();
        }
      } catch (error) {
        abortCode = (error as WebMoe.WebMoeError).code;
      }

      await engine.simulateDeviceLoss();
      const deviceLosses = (await engine.stats()).device_losses;
      const afterLoss = (await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0 })).choices[0].message.content;
      const models = (await engine.models.list()).data.map((m) => m.id);
      // The store alone, in a worker of its own with no model and no GPU device.
      const store = await webmoe.openModelStore();
      const storeModels = (await store.list()).data.map((m) => `${m.id}:${m.state}`);
      await store.close();

      clearInterval(timer);
      await new Promise((r) => setTimeout(r, 100));
      const libraryLongScripts = libraryScripts(0);
      const generationLongTasks = [...longTasks];
      // Control: a deliberate 120 ms task must show up, or the measurement above means nothing.
      const scriptsBefore = frameScripts.length;
      await (window as unknown as { busyInBundle: (ms: number) => Promise<void> }).busyInBundle(120);
      await new Promise((r) => setTimeout(r, 100));
      const controlLibraryScriptMs = Math.max(0, ...libraryScripts(scriptsBefore).map((s) => s.durationMs));
      frames.disconnect();
      const before = longTasks.length;
      await new Promise((r) => setTimeout(r, 0));
      const end = performance.now() + 120;
      while (performance.now() < end);
      await new Promise((r) => setTimeout(r, 100));
      const controlLongTaskMs = Math.max(0, ...longTasks.slice(before));
      longTasks.length = before;
      observer.disconnect();
      await engine.unload();

      let badCode = 'none';
      let badIsWebMoeError = false;
      try {
        await webmoe.createEngine({ model: new Blob([bytes.subarray(0, 300)]), modelId: 'bad' });
      } catch (error) {
        badCode = (error as WebMoe.WebMoeError).code;
        badIsWebMoeError = error instanceof webmoe.WebMoeError;
      }
      return {
        progressPhases: [...new Set(progressPhases)],
        streamed,
        chunkObjects: [...new Set(chunks.map((c) => c.object))],
        whole: whole.choices[0].message.content,
        finishReason: whole.choices[0].finish_reason,
        usage: whole.usage,
        routed,
        abortCode,
        abortedPieces,
        lostReasons,
        deviceLosses,
        afterLoss,
        badCode,
        badIsWebMoeError,
        models,
        storeModels,
        longestTaskMs: Math.max(0, ...generationLongTasks),
        longTasks: generationLongTasks.length,
        maxTimerLagMs,
        controlLongTaskMs,
        libraryLongScripts,
        controlLibraryScriptMs,
        bundleURL,
      };
    }, model);

    console.log(
      `[e2e api] main thread during generation: longest long task ${report.longestTaskMs.toFixed(1)} ms ` +
        `(${report.longTasks} tasks over 50 ms), largest 10 ms-timer lag ${report.maxTimerLagMs.toFixed(1)} ms; ` +
        `a deliberate 120 ms task measured ${report.controlLongTaskMs.toFixed(1)} ms; ` +
        `long scripts of the library's bundle: ${report.libraryLongScripts.length} (the deliberate one from it: ${report.controlLibraryScriptMs.toFixed(1)} ms)`,
    );
    expect(report.controlLongTaskMs).toBeGreaterThanOrEqual(100);
    expect(report.bundleURL).toMatch(/\/assets\/.+\.js$/);
    expect(report.controlLibraryScriptMs, 'a long task in the bundle is attributed to it').toBeGreaterThanOrEqual(100);
    expect(report.libraryLongScripts, 'no long script of the library on the main thread').toEqual([]);
    expect(report.progressPhases).toEqual(['import', 'load']);
    expect(report.chunkObjects).toEqual(['chat.completion.chunk']);
    expect(report.streamed.length).toBeGreaterThan(0);
    expect(report.streamed).toBe(report.whole);
    expect(['stop', 'length']).toContain(report.finishReason);
    expect(report.usage.prompt_tokens).toBeGreaterThan(0);
    expect(report.usage.moe.expert_hits).toBeGreaterThan(0);
    const routed = report.routed;
    expect(routed.text).toBe(report.whole);
    expect(routed.memory).toMatchObject({ moe_layers: [0, 1], experts_per_layer: 8, experts_per_token: 2 });
    expect(routed.firstChunkRouted).toBe(true);
    // The prompt after the reused prefix, then every generated token that was fed (all but a last one that hit max_tokens).
    const fed = routed.usage.completion_tokens - (routed.finishReason === 'length' ? 1 : 0);
    const { prompt_tokens: prompt, cached_prompt_tokens: cached } = routed.usage;
    expect(routed.positions).toEqual(Array.from({ length: prompt - cached + fed }, (_, i) => cached + i));
    expect(routed.rows.every((r) => r.length === 2 && r.every((k) => k === 2))).toBe(true);
    expect(routed.ids.every((id) => Number.isInteger(id) && id >= 0 && id < 8)).toBe(true);
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    expect(routed.finalResident).toEqual([all, all]);
    expect(routed.memory.resident_experts).toEqual([all, all]);
    expect(report.abortCode).toBe('ABORTED');
    expect(report.abortedPieces).toBeLessThanOrEqual(2);
    expect(report.lostReasons).toHaveLength(1);
    expect(report.deviceLosses).toBe(1);
    expect(report.afterLoss).toBe(report.whole);
    expect(report.models).toContain('tiny-e2e');
    expect(report.storeModels).toContain('tiny-e2e:complete');
    expect(report.badCode).toBe('BAD_GGUF');
    expect(report.badIsWebMoeError).toBe(true);
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
