/**
 * Opens a page that uses the packed library in Chromium (SwiftShader's
 * WebGPU) and waits for the `window.result` it sets, collecting what went
 * wrong on the way: page errors, console errors, failed or 4xx/5xx requests,
 * and the URL of every worker the page started.
 */
import type { Browser } from 'playwright';
import { STREAM_GREEDY_JS, type Streamed } from './greedy';

export interface PageRun {
  result: Partial<Streamed> & { error?: string; code?: string };
  problems: string[];
  workers: string[];
}

export async function runPage(browser: Browser, url: string, timeoutMs = 150_000): Promise<PageRun> {
  // A new context each time: a fresh profile, so no model is left in IndexedDB from an earlier page.
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const problems: string[] = [];
    const workers: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => void (m.type() === 'error' && problems.push(`console error: ${m.text()}`)));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    page.on('response', (r) => void (r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`)));
    page.on('worker', (w) => workers.push(w.url()));
    await page.goto(url);
    await page.waitForFunction(() => (window as { result?: unknown }).result !== undefined, undefined, { timeout: timeoutMs });
    const result = await page.evaluate(() => (window as unknown as { result: PageRun['result'] }).result);
    return { result, problems, workers };
  } finally {
    await context.close();
  }
}

/**
 * A page's module script: `imports`, then `body` (which returns a Streamed,
 * usually from streamGreedy) with its value or its error in window.result.
 */
export function pageModule(imports: string, body: string): string {
  return `${imports}
${STREAM_GREEDY_JS}
try {
  window.result = await (async () => {
${body}
  })();
} catch (error) {
  window.result = { error: String(error), code: error.code };
}
`;
}
