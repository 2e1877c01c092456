/**
 * `npm run bench:kernels`: the kernel benchmark in headless Chromium (Debian's,
 * as the tests launch it). Serves bench/kernels with Vite on 127.0.0.1, opens
 * the page, runs the benchmark there with this command's arguments, forwards
 * the page's progress to stderr and prints the report to stdout.
 *
 * The page is served cross-origin isolated, which gives performance.now()
 * microsecond resolution for the wall-clock timer; the developer-features
 * switch lifts Chromium's 0.1 ms quantisation of GPU timestamps.
 */

import { chromium } from 'playwright';
import { startBenchPageServer } from '../page-server';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../test/setup/chromium';
import { parseBenchOptions, USAGE } from './options';

const PAGE_READY_TIMEOUT_MS = 120_000;

async function main(args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log(USAGE);
    return;
  }
  parseBenchOptions(args); // bad arguments fail here, before a browser starts
  const server = await startBenchPageServer(import.meta.dirname);
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, '--enable-webgpu-developer-features'],
    headless: true,
  });
  try {
    const page = await browser.newPage();
    // Vite's client announces itself at debug level; only the benchmark's own lines are of interest.
    page.on('console', (message) => {
      if (message.type() !== 'debug') process.stderr.write(`${message.text()}\n`);
    });
    page.on('pageerror', (error) => process.stderr.write(`page error: ${error.message}\n`));
    await page.goto(server.resolvedUrls!.local[0]);
    await page.waitForFunction(() => window.kernelBench?.ready === true, undefined, { timeout: PAGE_READY_TIMEOUT_MS });
    const runtime = `Chromium ${browser.version()} (headless)`;
    const report = await page.evaluate(([pageArgs, pageRuntime]) => window.kernelBench.run(pageArgs, pageRuntime), [args, runtime] as const);
    process.stdout.write(report);
  } finally {
    await browser.close();
    await server.close();
  }
}

await main(process.argv.slice(2));
