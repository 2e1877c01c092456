/**
 * The demo chat app, built for production and served from 127.0.0.1, in real
 * Chromium: the built-in default model (served with the demo) is imported
 * with a progress bar and loaded; a prompt streams a reply and shows its
 * usage; Stop ends a longer reply early; a bad file shows BAD_GGUF; the
 * stored model is listed and deleted.
 */
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../setup/chromium';

const root = resolve(import.meta.dirname, '../..');
let server: PreviewServer;
let browser: Browser;

beforeAll(async () => {
  const configFile = resolve(root, 'vite.config.ts');
  await build({ configFile, mode: 'demo', logLevel: 'warn' });
  server = await preview({ configFile, mode: 'demo', logLevel: 'warn', preview: { host: '127.0.0.1', port: 0 } });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const lastReply = (page: Page) => page.locator('.message.assistant').last();

async function ask(page: Page, prompt: string, maxTokens: number): Promise<void> {
  await page.fill('#max-tokens', String(maxTokens));
  await page.fill('#prompt', prompt);
  await page.click('#send');
}

describe('demo chat app', () => {
  it('loads the default model, streams a reply with usage, stops a reply, reports a bad file, deletes the stored model', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.resolvedUrls!.local[0]);
    await expect.poll(() => page.textContent('#adapter'), { timeout: 30_000 }).toMatch(/WebGPU adapter: \S+/);

    // Import progress is a real progress bar: record the values it takes.
    await page.evaluate(() => {
      const bar = document.getElementById('progress-bar') as HTMLProgressElement;
      const seen: number[] = ((window as unknown as { progressSeen: number[] }).progressSeen = []);
      new MutationObserver(() => seen.push(bar.position)).observe(bar, { attributes: true });
    });
    await page.click('#load');
    await expect.poll(() => page.textContent('#model-status'), { timeout: 60_000 }).toMatch(/^Loaded default-moe-q8_0 \(qwen2moe/);
    const progress = await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
    expect(progress).toContain(1);
    await expect.poll(() => page.locator('#stored li[data-id="default-moe-q8_0"] button.delete').count()).toBe(1);

    // A short greedy reply streams into the assistant bubble; usage follows.
    await page.fill('#temperature', '0');
    await ask(page, 'To read a file, use', 12);
    await expect.poll(() => page.textContent('#usage'), { timeout: 60_000 }).toMatch(/generated tokens.*experts: \d+ hits, \d+ misses.*streamed.*stall \d+ ms/);
    expect((await lastReply(page).textContent())!.length).toBeGreaterThan(0);
    expect(await page.textContent('#usage')).toMatch(/^\d+ prompt \+ \d+ generated tokens/);

    // A longer reply: Stop as soon as text streams in; it ends early and stays put.
    await ask(page, 'The os module provides', 150);
    await expect.poll(async () => (await lastReply(page).textContent())!.length, { timeout: 60_000 }).toBeGreaterThan(0);
    expect(await page.isEnabled('#stop')).toBe(true);
    await page.click('#stop');
    await expect.poll(() => page.isEnabled('#send'), { timeout: 30_000 }).toBe(true);
    expect(await lastReply(page).getAttribute('class')).toContain('stopped');
    expect(await page.textContent('#usage')).toMatch(/^Stopped after \d+ characters/);
    const stoppedText = await lastReply(page).textContent();
    await page.waitForTimeout(500);
    expect(await lastReply(page).textContent()).toBe(stoppedText);

    // A file that is not a GGUF: the error line names the code.
    await page.setInputFiles('#file', { name: 'bad.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('not a gguf file at all') });
    await page.click('#load');
    await expect.poll(() => page.textContent('#error'), { timeout: 30_000 }).toMatch(/^BAD_GGUF: /);
    expect(await page.textContent('#model-status')).toBe('No model loaded.');

    // With nothing loaded, the stored model can be deleted.
    await page.click('#stored li[data-id="default-moe-q8_0"] button.delete');
    await expect.poll(() => page.locator('#stored li[data-id]').count(), { timeout: 30_000 }).toBe(0);
    expect(errors).toEqual([]);
  }, 120_000);
});
