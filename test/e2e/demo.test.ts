/**
 * The demo chat app, built for production and served from 127.0.0.1, in real
 * Chromium (one page, 1200×800, reused by the steps in order): the built-in
 * model is imported with progress and loaded; a reply streams while the
 * expert heatmap counts its routing; Stop ends a long reply; after a reload
 * the conversation, the settings and the stored model are still there; a
 * smaller expert budget leaves fewer experts resident; a generated GGUF is
 * imported, and a bad file and an unsupported one show their code with
 * advice; an import from a URL that a reload interrupts is listed as such
 * and resumes. Each step saves a screenshot to test/.cache/screenshots/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page, type Route } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';

const root = resolve(import.meta.dirname, '../..');
const shots = resolve(root, 'test/.cache/screenshots');
const LAYERS = 4;
const EXPERTS = 16;
const TOP_K = 2;
let server: PreviewServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  const configFile = resolve(root, 'vite.config.ts');
  await build({ configFile, mode: 'demo', logLevel: 'warn' });
  server = await preview({ configFile, mode: 'demo', logLevel: 'warn', preview: { host: '127.0.0.1', port: 0 } });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** A screenshot of the viewport, scrolled to the top (or to `selector`). */
async function shot(name: string, selector?: string): Promise<void> {
  if (selector) await page.locator(selector).scrollIntoViewIfNeeded();
  else await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: resolve(shots, `${name}.png`) });
}
const lastReply = () => page.locator('.message.assistant').last();
const status = () => page.textContent('#chat-status');
const heatmapData = (key: 'total' | 'tokens' | 'residentCount') => page.$eval('#heatmap', (el, k) => (el as HTMLElement).dataset[k] ?? '', key);
const residentCells = () => page.locator('.hm-cell[data-resident="true"]').count();
const cellCountSum = () => page.$$eval('.hm-cell', (cells) => cells.reduce((sum, c) => sum + Number((c as HTMLElement).dataset.count), 0));

async function ask(prompt: string, maxTokens: number): Promise<void> {
  await page.fill('#max-tokens', String(maxTokens));
  await page.fill('#prompt', prompt);
  await page.press('#prompt', 'Enter');
}

async function waitLoaded(model: string): Promise<void> {
  await expect.poll(() => page.textContent('#model-status'), { timeout: 60_000 }).toMatch(new RegExp(`^Loaded ${model} \\(qwen2moe`));
}

describe('demo chat app', () => {
  it('imports and loads the built-in model with progress; a reply streams and the heatmap counts its routing', async () => {
    await page.goto(server.resolvedUrls!.local[0]);
    await expect.poll(() => page.textContent('#adapter'), { timeout: 30_000 }).toMatch(/WebGPU adapter: \S+/);
    // A fresh profile: completion mode (the built-in model is a completion model), nothing stored.
    expect(await page.isChecked('input[name=mode][value=completion]')).toBe(true);
    expect(await page.textContent('#chat')).toContain('completion model');
    await expect.poll(() => page.textContent('#stored')).toMatch(/None yet/);

    // Progress is a real progress bar with bytes, speed and time left: record what it shows.
    await page.evaluate(() => {
      const seen: { value: number; text: string }[] = ((window as unknown as { seen: typeof seen }).seen = []);
      const bar = document.getElementById('progress-bar') as HTMLProgressElement;
      const text = document.getElementById('progress-text')!;
      new MutationObserver(() => seen.push({ value: bar.position, text: text.textContent ?? '' })).observe(text, { childList: true, characterData: true, subtree: true });
    });
    await page.click('#load');
    await waitLoaded('default-moe-q8_0');
    const progress = await page.evaluate(() => (window as unknown as { seen: { value: number; text: string }[] }).seen);
    expect(progress.some((p) => /of 6\.8 MiB/.test(p.text))).toBe(true);
    expect(progress.map((p) => p.value)).toContain(1);
    expect(await page.locator('#stored li[data-id="default-moe-q8_0"][data-state="complete"]').count()).toBe(1);
    expect(await page.textContent('#storage')).toMatch(/Storage: [\d.]+ (KiB|MiB) used, [\d.]+ (MiB|GiB) available/);
    expect(await page.locator('.hm-row[data-row]').count()).toBe(LAYERS);
    expect(await page.locator('.hm-cell').count()).toBe(LAYERS * EXPERTS);
    expect(await page.textContent('#budget-fit')).toMatch(/Every expert stays on the GPU \(4\.\d MB for 64\)/);

    // Record the heatmap's activation total as it changes while the reply streams.
    await page.evaluate(() => {
      const totals: string[] = ((window as unknown as { totals: typeof totals }).totals = []);
      const grid = document.getElementById('heatmap')!;
      new MutationObserver(() => totals.push(grid.dataset.total ?? '')).observe(grid, { attributes: true, attributeFilter: ['data-total'] });
    });
    await page.fill('#temperature', '0');
    await ask('To read a file, use', 12);
    await expect.poll(status, { timeout: 60_000 }).toMatch(/^\d+ tokens generated/);
    await shot('01-reply');
    expect((await lastReply().textContent())!.length).toBeGreaterThan(0);
    expect(await page.textContent('#fig-decode')).toMatch(/tok\/s/);
    expect(await page.textContent('#fig-hit')).toMatch(/^\d+% \(\d+ hits, \d+ misses\)/);
    expect(await page.textContent('#fig-stall')).toMatch(/^\d+ ms/);
    expect(await page.textContent('#fig-context')).toMatch(/^\d+ of 256 tokens/);
    expect(await page.textContent('#fig-resident')).toMatch(/^64 of 64 experts/);

    // The heatmap: every token routes TOP_K experts in each MoE layer, counted as the reply streamed.
    const tokens = Number(await heatmapData('tokens'));
    const total = Number(await heatmapData('total'));
    expect(tokens).toBeGreaterThan(12);
    expect(total).toBe(tokens * LAYERS * TOP_K);
    expect(await cellCountSum()).toBe(total);
    expect(await page.textContent('#activations')).toBe(String(total));
    const totals = (await page.evaluate(() => (window as unknown as { totals: string[] }).totals)).map(Number).filter((t) => t > 0);
    expect(new Set(totals).size).toBeGreaterThan(1);
    expect(await page.locator('.hm-rate[data-hit-rate="1.000"]').count()).toBe(LAYERS);
    expect(await heatmapData('residentCount')).toBe(String(LAYERS * EXPERTS));
    expect(await page.getAttribute('#heatmap', 'aria-label')).toMatch(/expert activations over \d+ tokens; busiest: L\d+ E\d+/);
  }, 90_000);

  it('stops a long reply', async () => {
    await ask('\nThe os module provides', 150);
    await expect.poll(async () => (await lastReply().textContent())!.length, { timeout: 60_000 }).toBeGreaterThan(0);
    expect(await page.isEnabled('#stop')).toBe(true);
    await page.click('#stop');
    await expect.poll(() => page.isEnabled('#send'), { timeout: 30_000 }).toBe(true);
    expect(await lastReply().getAttribute('class')).toContain('stopped');
    expect(await status()).toMatch(/^Stopped after \d+ characters/);
    const stoppedText = await lastReply().textContent();
    await page.waitForTimeout(300);
    expect(await lastReply().textContent()).toBe(stoppedText);
    await shot('02-stopped');
  }, 60_000);

  it('keeps the conversation, the settings and the stored model across a reload', async () => {
    const before = await page.$$eval('#messages .message', (els) => els.map((e) => `${e.className}|${e.textContent}`));
    expect(before).toHaveLength(4);
    await page.reload();
    expect(await page.$$eval('#messages .message', (els) => els.map((e) => `${e.className}|${e.textContent}`))).toEqual(before);
    expect(await page.inputValue('#temperature')).toBe('0');
    await expect.poll(() => page.locator('#stored li[data-id="default-moe-q8_0"][data-state="complete"]').count(), { timeout: 30_000 }).toBe(1);
    // The model used last loads again from the store.
    await waitLoaded('default-moe-q8_0');
    await shot('03-reloaded');
  }, 60_000);

  it('a smaller expert budget leaves fewer experts resident', async () => {
    await page.fill('#budget', '0.5');
    expect(await page.textContent('#budget-fit')).toBe('≈ 6 of 64 experts fit; the rest stream from the store.');
    expect(await page.textContent('#apply-note')).toMatch(/^Changed: Apply reloads default-moe-q8_0/);
    await page.click('#apply');
    await expect.poll(() => page.textContent('#model-status'), { timeout: 60_000 }).toMatch(/^Loaded default-moe-q8_0 .*6 of 64 experts fit on the GPU, the rest stream/);
    await page.click('#new-chat');
    await ask('import json', 6);
    await expect.poll(status, { timeout: 60_000 }).toMatch(/^\d+ tokens generated/);
    await shot('04-budget');
    const resident = Number(await heatmapData('residentCount'));
    expect(resident).toBeGreaterThan(0);
    expect(resident).toBeLessThanOrEqual(6);
    expect(await residentCells()).toBe(resident);
    expect(await page.textContent('#fig-hit')).not.toMatch(/^100%/);
    expect(await page.textContent('#fig-bytes')).toMatch(/KiB/);
    expect(await page.locator('.hm-cell[data-resident="false"]').count()).toBe(LAYERS * EXPERTS - resident);
  }, 90_000);

  it('imports a generated GGUF; a bad file and an unsupported architecture show their code with advice', async () => {
    const tiny = Buffer.from(makeTinyModel({ arch: 'olmoe', seed: 3, layers: 2 }));
    await page.setInputFiles('#file', { name: 'tiny-olmoe.gguf', mimeType: 'application/octet-stream', buffer: tiny });
    expect(await page.isChecked('input[name=source][value=file]')).toBe(true);
    await page.click('#import');
    await expect.poll(() => page.locator('#stored li[data-id="tiny-olmoe"][data-state="complete"]').count(), { timeout: 30_000 }).toBe(1);
    expect(await page.textContent('#model-status')).toMatch(/^Imported tiny-olmoe; default-moe-q8_0 is loaded/);

    await page.setInputFiles('#file', { name: 'bad.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('not a gguf file at all') });
    await page.click('#import');
    await expect.poll(() => page.getAttribute('#error', 'data-code'), { timeout: 30_000 }).toBe('BAD_GGUF');
    expect(await page.textContent('#error .error-text')).toMatch(/^BAD_GGUF: /);
    expect(await page.textContent('#error .advice')).toMatch(/not a readable GGUF model/);
    await shot('05-bad-file', '#stored');

    // The same generated file under an architecture nobody implements (every 'olmoe' key renamed alike).
    const alien = Buffer.from(tiny.toString('latin1').replaceAll('olmoe', 'zzzzz'), 'latin1');
    await page.setInputFiles('#file', { name: 'alien.gguf', mimeType: 'application/octet-stream', buffer: alien });
    await page.click('#import');
    await expect.poll(() => page.getAttribute('#error', 'data-code'), { timeout: 30_000 }).toBe('UNSUPPORTED_ARCH');
    expect(await page.textContent('#error .advice')).toMatch(/architecture \(zzzzz\) is not one webmoe runs/);
    expect(await page.locator('#stored li[data-id="alien"]').count()).toBe(0);

    // The loaded model cannot be deleted; the imported one can.
    expect(await page.isDisabled('#stored li[data-id="default-moe-q8_0"] button.delete')).toBe(true);
    await page.click('#stored li[data-id="tiny-olmoe"] button.delete');
    await expect.poll(() => page.locator('#stored li[data-id="tiny-olmoe"]').count(), { timeout: 30_000 }).toBe(0);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('an import interrupted by a reload is listed with Resume, and resumes where it stopped', async () => {
    // The built-in file served (with Range) from a URL the page imports; reads of layers 2 and 3's experts hang until the reload.
    const bytes = readFileSync(resolve(root, 'models/default-moe-q8_0.gguf'));
    const file = await readGguf(sourceFromBytes(new Uint8Array(bytes)));
    const stalls = file.tensors.filter((t) => /^blk\.[23]\.ffn_(gate|up|down)_exps\./.test(t.name)).map((t) => [file.dataOffset + t.offset, file.dataOffset + t.offset + t.nBytes]);
    expect(stalls).toHaveLength(6);
    let hang = true;
    const hung: Route[] = [];
    await page.route('**/copy-moe.gguf', async (route) => {
      const [, from, to] = /bytes=(\d+)-(\d+)/.exec(route.request().headers().range ?? '') ?? [];
      const start = Number(from ?? 0);
      const end = Math.min(bytes.length - 1, Number(to ?? bytes.length - 1));
      // Only reads of those experts hang: the header, the fingerprint's samples and the shared weights pass.
      if (hang && end - start + 1 > 64 * 1024 && stalls.some(([a, b]) => start >= a! && start < b!)) return void hung.push(route);
      await route.fulfill({
        status: 206,
        headers: { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' },
        body: bytes.subarray(start, end + 1),
      });
    });
    const url = new URL('copy-moe.gguf', server.resolvedUrls!.local[0]).href;
    await page.fill('#url', url);
    expect(await page.isChecked('input[name=source][value=url]')).toBe(true);
    await page.click('#import');
    await expect.poll(() => hung.length, { timeout: 30_000 }).toBeGreaterThan(0);
    // Shared weights and layers 0 and 1 are read; give their records a moment to be written, then reload mid-import.
    await page.waitForTimeout(500);
    await page.reload();
    for (const route of hung.splice(0)) await route.abort().catch(() => {}); // their worker is gone
    hang = false;
    const item = '#stored li[data-id="copy-moe"]';
    await expect.poll(() => page.getAttribute(item, 'data-state'), { timeout: 30_000 }).toBe('importing');
    expect(await page.textContent(item)).toContain('import interrupted');
    await shot('06-interrupted', item);
    await waitLoaded('default-moe-q8_0'); // the reload brought the last model back first

    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { resumeSeen: string[] }).resumeSeen = []);
      const text = document.getElementById('progress-text')!;
      new MutationObserver(() => seen.push(text.textContent ?? '')).observe(text, { childList: true, characterData: true, subtree: true });
    });
    await page.click(`${item} button.resume`);
    await expect.poll(() => page.getAttribute(item, 'data-state'), { timeout: 30_000 }).toBe('complete');
    const seen = await page.evaluate(() => (window as unknown as { resumeSeen: string[] }).resumeSeen);
    expect(seen.some((t) => /resumed at [\d.]+ MiB/.test(t)), seen.join('\n')).toBe(true);
    await page.unroute('**/copy-moe.gguf');
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
