/**
 * The demo app, built for production and served from 127.0.0.1, in real
 * Chromium: the engine worker starts, reports a WebGPU adapter, and reads the
 * header of a GGUF file the user picks.
 */
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyModel } from '../../src/tiny/make-tiny';
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

describe('demo app', () => {
  it('inspects a picked GGUF file in the worker and shows the adapter', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.resolvedUrls!.local[0]);

    await expect.poll(() => page.textContent('#adapter'), { timeout: 60_000 }).toMatch(/WebGPU adapter: \S+/);

    const gguf = makeTinyModel({ arch: 'olmoe', type: 'q4_0', layers: 3 });
    await page.setInputFiles('#file', { name: 'tiny.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from(gguf) });
    await expect.poll(() => page.textContent('#out'), { timeout: 60_000 }).toContain('olmoe');
    const text = (await page.textContent('#out'))!;
    expect(text).toContain('Q4_0 data');
    expect(text).toMatch(/tensors\s*\d+/);

    await page.setInputFiles('#file', { name: 'bad.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from(gguf.subarray(0, 100)) });
    await expect.poll(() => page.textContent('#out'), { timeout: 60_000 }).toMatch(/Could not read bad\.gguf: .*GGUF/i);
    expect(errors).toEqual([]);
  }, 120_000);
});
