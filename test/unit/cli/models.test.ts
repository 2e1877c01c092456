/**
 * `webmoe models` and its formatting: the table, the progress bar and its
 * plain-line form; the commands run as a user runs them on a temporary
 * store, with no Vulkan driver at all (they never open a GPU device):
 * import, list (table and --json), resuming an interrupted import, rm.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { formatModelTable } from '../../../src/cli/models';
import { formatDuration, formatProgress, ProgressReporter } from '../../../src/cli/progress-bar';
import { sourceFromPath } from '../../../src/gguf/source-node';
import { openFsWeightStore } from '../../../src/store/fs-node';
import type { ModelSummary } from '../../../src/store/weight-store';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const bin = resolve(import.meta.dirname, '../../../bin/webmoe.js');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-models-'));
const storeDir = join(dir, 'store');
const modelPath = join(dir, 'tiny-olmoe.gguf');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function models(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // No Vulkan driver: a command that asked for a GPU would fail.
    const env = { ...process.env, VK_ICD_FILENAMES: join(dir, 'no-driver.json') };
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, 'models', ...args, '--store', storeDir], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('models formatting', () => {
  it('formats a table with a header, sizes right-aligned, and an unfinished import\'s share', () => {
    const list: ModelSummary[] = [
      { modelId: 'mixtral-8x7b-q4_k_m', architecture: 'llama', state: 'complete', storedBytes: 26_440_000_000, presentBytes: 26_440_000_000 },
      { modelId: 'tiny', architecture: 'olmoe', state: 'importing', storedBytes: 1_000_000, presentBytes: 250_000 },
    ];
    expect(formatModelTable(list)).toBe([
      'ID                   ARCHITECTURE        SIZE  STATE',
      'mixtral-8x7b-q4_k_m  llama          24.62 GiB  complete',
      'tiny                 olmoe         976.56 KiB  importing (25% stored)',
    ].join('\n'));
  });

  it('formats progress with and without the bar, speed and time left; durations', () => {
    const figures = { label: 'writing', bytesDone: 3 * 2 ** 20, bytesTotal: 8 * 2 ** 20, bytesPerS: 2 ** 20 };
    expect(formatProgress(figures, true)).toBe('writing  [#########---------------]   37.5%  3.00 MiB / 8.00 MiB  1.00 MiB/s  5 s left');
    expect(formatProgress({ ...figures, bytesPerS: undefined }, false)).toBe('writing   37.5%  3.00 MiB / 8.00 MiB');
    expect([formatDuration(4.4), formatDuration(185), formatDuration(3 * 3600 + 7 * 60 + 5), formatDuration(Infinity)]).toEqual(['4 s', '3 min 05 s', '3 h 07 min', '?']);
  });

  it('redraws in place on a terminal (at most every 100 ms, always at the end); plain lines per tenth otherwise', () => {
    let nowMs = 0;
    const tty = { isTTY: true, columns: 200, out: [] as string[], write(t: string) { this.out.push(t); } };
    const bar = new ProgressReporter(tty, () => nowMs);
    bar.update('writing', 0, 1000);
    nowMs = 50;
    bar.update('writing', 100, 1000); // too soon: skipped
    nowMs = 1000;
    bar.update('writing', 500, 1000);
    nowMs = 1010;
    bar.update('writing', 1000, 1000); // the end: drawn however soon
    bar.endLine();
    expect(tty.out.map((t) => t.slice(0, 1))).toEqual(['\r', '\r', '\r', '\n']);
    expect(tty.out[1]).toMatch(/^\rwriting {2}\[#{12}-{12}\] {3}50\.0%.*500 bytes\/s {2}1 s left\x1b\[K$/);

    const log = { out: [] as string[], write(t: string) { this.out.push(t); } };
    const plain = new ProgressReporter(log, () => nowMs);
    for (let done = 0; done <= 1000; done += 25) plain.update('verifying', done, 1000);
    expect(log.out).toHaveLength(11);
    expect(log.out.every((l) => l.startsWith('verifying ') && l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  });
});

describe('webmoe models', () => {
  it('imports a file under its name, lists it as a table and as JSON, and refuses bad use', async () => {
    writeFileSync(modelPath, makeTinyModel({ arch: 'olmoe', seed: 3, layers: 2 }));
    expect((await models('list')).stderr).toMatch(/no models in/);
    expect(existsSync(storeDir)).toBe(false);
    const imported = await models('import', modelPath);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/importing tiny-olmoe\.gguf \(.* MiB\) into/);
    // Not a terminal: plain progress lines, no carriage returns.
    expect(imported.stderr).toMatch(/\nwriting +100\.0% /);
    expect(imported.stderr).toMatch(/\nverifying +100\.0% /);
    expect(imported.stderr).not.toContain('\r');
    expect(imported.stderr).toMatch(/imported tiny-olmoe\.gguf \(olmoe, .*\); use --model tiny-olmoe\.gguf/);
    expect((await models('import', modelPath)).stderr).toMatch(/tiny-olmoe\.gguf is already imported/);

    const table = await models('list');
    expect(table.stdout).toMatch(/^ID +ARCHITECTURE +SIZE +STATE\ntiny-olmoe\.gguf +olmoe +[\d.]+ [KM]iB +complete\n$/);
    const json = JSON.parse((await models('list', '--json')).stdout) as { object: string; data: Record<string, unknown>[] };
    expect(json.object).toBe('list');
    expect(json.data).toEqual([expect.objectContaining({ id: 'tiny-olmoe.gguf', object: 'model', owned_by: 'webmoe', architecture: 'olmoe', state: 'complete' })]);
    expect(json.data[0].present_bytes).toBe(json.data[0].stored_bytes);

    expect((await models('frobnicate')).code).toBe(2);
    expect((await models('import')).stderr).toMatch(/import takes one file or URL/);
    expect((await models('import', join(dir, 'missing.gguf'))).stderr).toMatch(/no file '.*missing\.gguf'/);
    expect((await models('list', '--id', 'x')).stderr).toMatch(/--id goes with import/);
  }, 60_000);

  it('an interrupted import is listed as importing and resumes where it stopped; rm deletes', async () => {
    const store = await openFsWeightStore(storeDir);
    const source = await sourceFromPath(modelPath);
    const controller = new AbortController();
    let batches = 0;
    try {
      // Small batches, stopped after the third: some records written, the manifest still 'importing'.
      await expect(store.importModel(source, {
        modelId: 'half', batchBytes: 100_000, signal: controller.signal,
        onProgress: (p) => p.phase === 'writing' && ++batches === 3 && controller.abort(),
      })).rejects.toThrow();
    } finally {
      await source.close();
    }
    const listed = await models('list');
    expect(listed.stdout).toMatch(/\nhalf +olmoe +[\d.]+ [KM]iB +importing \([1-9]\d?% stored\)\n/);

    const resumed = await models('import', modelPath, '--id', 'half');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming half: [\d.]+ KiB of [\d.]+ [KM]iB already stored/);
    expect(resumed.stderr).toMatch(/imported half \(olmoe, .*, \d+ records kept from the earlier run\)/);
    expect((await models('list')).stdout).toMatch(/\nhalf +olmoe +[\d.]+ [KM]iB +complete\n/);

    const removed = await models('rm', 'half');
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stderr).toMatch(/deleted half/);
    expect((await models('list')).stdout).not.toMatch(/half/);
    const again = await models('rm', 'half');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/no model 'half' in the store at .*; stored: tiny-olmoe\.gguf/);
  }, 60_000);
});
