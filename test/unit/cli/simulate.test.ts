/** `webmoe simulate`, run as a user runs it, on the shared routing traces. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { SimulationReport } from '../../../src/experts/analysis/simulator';
import { readTracePaths, writeTraceFile } from '../../../src/experts/analysis/trace-node';
import { familyDir } from '../experts/shared-traces';

const bin = resolve(import.meta.dirname, '../../../bin/webmoe.js');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-simulate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function webmoe(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The columns of the table row whose first cell is `policy`. */
function row(stdout: string, policy: string): string[] {
  const line = stdout.split('\n').find((l) => l.startsWith(`${policy} `));
  if (!line) throw new Error(`no '${policy}' row in:\n${stdout}`);
  return line.trim().split(/\s{2,}/);
}

describe('webmoe simulate', () => {
  it('prints a table of policies against Belady for a directory of Mixtral rows', async () => {
    const r = await webmoe('simulate', '--trace', familyDir('mixtral-8x7b'), '--budget', '12.5%', '--policy', 'lru,lfu');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('traces: 4 (577 tokens, 32 layers x 8 experts, top-2, 36928 accesses)');
    expect(r.stdout).toContain('budget: 32 of 256 expert slots (12.5%)');
    expect(row(r.stdout, 'lru').slice(0, 3)).toEqual(['lru', '-', '0.000']);
    expect(row(r.stdout, 'lfu')[2]).toMatch(/^0\.\d{3}$/);
    expect(row(r.stdout, 'belady')[2]).toBe('0.393');
  }, 60_000);

  it('prints JSON for one gpt-oss file with affinity prefetch', async () => {
    const file = join(familyDir('gpt-oss-20b'), 'gpqa_diamond_Genetics.json');
    const r = await webmoe('simulate', '--trace', file, '--budget', '0.25', '--prefetch', 'affinity', '--lookahead', '2', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as SimulationReport;
    expect(report).toMatchObject({ capacity: 192, totalExperts: 768, policy: 'lru', predictor: 'affinity', lookahead: 2, tokens: 330 });
    expect(report.hitRate).toBeGreaterThan(0);
    expect(report.prefetchLoads).toBeGreaterThan(0);
    expect(report.belady!.hitRate).toBeGreaterThan(0);
  }, 60_000);

  it('without --policy or --prefetch replays the engine\'s default streaming, keeping the JSON fields', async () => {
    const file = join(familyDir('gpt-oss-20b'), 'gpqa_diamond_Genetics.json');
    const json = await webmoe('simulate', '--trace', file, '--budget', '0.25', '--json');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as SimulationReport;
    expect(report).toMatchObject({ policy: 'next-use', predictor: 'affinity', lookahead: 1, tokens: 330 });
    for (const field of ['hitRate', 'misses', 'prefetchLoads'] as const) expect(typeof report[field]).toBe('number');
    expect(report.belady!.hitRate).toBeGreaterThan(report.hitRate - 0.2);
    const text = await webmoe('simulate', '--trace', file, '--budget', '0.25');
    expect(text.stdout).toMatch(/engine's default streaming: next-use policy, affinity prefetch/);
    expect(row(text.stdout, 'next-use')[1]).toBe('affinity d=1');
    expect(report).toMatchObject({ hostCapacity: 0, hostHits: 0, storeReads: report.misses + report.prefetchLoads });
  }, 60_000);

  it('--host-budget adds a host tier below the GPU cache: host hit rate and store reads per token', async () => {
    const file = join(familyDir('gpt-oss-20b'), 'gpqa_diamond_Genetics.json');
    const json = await webmoe('simulate', '--trace', file, '--budget', '0.25', '--host-budget', '50%', '--json');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as SimulationReport;
    expect(report).toMatchObject({ capacity: 192, hostCapacity: 384 });
    expect(report.hostHitRate).toBeGreaterThan(0.5);
    // Store reads: the loads host memory did not hold, plus warms.
    expect(report.storeReads).toBe(report.misses + report.prefetchLoads - report.hostHits + report.hostWarmReads);
    expect(report.storeReadsPerToken).toBeLessThan((report.misses + report.prefetchLoads) / report.tokens / 2);
  }, 60_000);

  it('reads its own trace format, taking the expert size from the header for a budget in bytes', async () => {
    const traces = await readTracePaths([familyDir('mixtral-8x7b')]);
    const expertBytes = 176_160_768;
    const own = join(dir, 'mixtral.webmoe.jsonl');
    await writeTraceFile(own, traces.map((t) => ({ ...t, expertBytes })));
    // --policy lru: on-demand LRU, no longer what simulate replays by default.
    const r = await webmoe('simulate', '--trace', own, '--budget', '11.3GB', '--policy', 'lru', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as SimulationReport;
    expect(report.capacity).toBe(64); // 11.3 GB / 176 MB, as 25% of 256 experts
    expect(report.hitRate.toFixed(3)).toBe('0.317');
    expect(report.bytesMoved).toBe(report.misses * expertBytes);
  }, 60_000);

  it('exits 2 with a message saying what to fix', async () => {
    const traces = familyDir('gpt-oss-20b');
    const cases: [string[], RegExp][] = [
      [['--trace', traces], /--budget is required/],
      [['--trace', traces, '--budget', '0.25', '--policy', 'mru'], /--policy must be among lru, fifo, lfu, lfu-decay/],
      [['--trace', traces, '--budget', '512MB'], /needs the size of one expert/],
      [['--trace', traces, '--budget', '0.25', '--prefetch', 'pregate'], /carries no pre-gating predictions/],
      [['--trace', traces, '--budget', '0.25', '--host-budget-mb=-1'], /--host-budget-mb must be >= 0/],
      [['--trace', traces, '--budget', '0.25', '--host-budget', '2', '--host-budget-mb', '1'], /not both/],
    ];
    const results = await Promise.all(cases.map(([args]) => webmoe('simulate', ...args)));
    results.forEach((r, i) => {
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(cases[i][1]);
    });
  }, 60_000);
});
