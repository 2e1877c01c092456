import { describe, expect, it } from 'vitest';
import { peersChart } from '../../../bench/peers/chart';
import type { RunFigures, RunRecord, SystemKey, Environment } from '../../../bench/peers/figures';
import { peersMarkdown, sig3 } from '../../../bench/peers/report';
import type { PeersReportInput } from '../../../bench/peers/report';

const MIB = 2 ** 20;
const FILE = 'olmoe-q4_k_m';
const WEBGPU_ERROR = 'no WebGPU adapter <offload> & no fallback | see the log';

function run(env: Environment, system: SystemKey, budget: number, round: number, f: Partial<RunFigures>): RunRecord {
  const figures: RunFigures = {
    loadMs: 1000, promptTokens: 64, completionTokens: 32, prefillTokPerS: 100, decodeTokPerS: 10,
    peakRssBytes: 600 * MIB, baseRssBytes: 100 * MIB, ...f,
  };
  return { env, system, file: FILE, budget, round, figures };
}

/** Node: webmoe at three budgets and llama.cpp, two rounds; browser: webmoe and wllama-wasm, with wllama-webgpu failing. */
const RECORDS: RunRecord[] = [
  run('node', 'webmoe', 1, 0, { decodeTokPerS: 10, prefillTokPerS: 100, gpuBytes: 400 * MIB }),
  run('node', 'llama.cpp', 1, 0, { decodeTokPerS: 20, prefillTokPerS: 2000 }),
  run('node', 'webmoe', 1, 1, { decodeTokPerS: 12, prefillTokPerS: 120, gpuBytes: 400 * MIB }),
  run('node', 'llama.cpp', 1, 1, { decodeTokPerS: 20, prefillTokPerS: 2000 }),
  run('node', 'webmoe', 0.5, 0, { decodeTokPerS: 8, prefillTokPerS: 110, gpuBytes: 250 * MIB }),
  run('node', 'webmoe', 0.5, 1, { decodeTokPerS: 8, prefillTokPerS: 110, gpuBytes: 250 * MIB }),
  run('node', 'webmoe', 0.25, 0, { decodeTokPerS: 5, prefillTokPerS: 55, gpuBytes: 150 * MIB }),
  run('node', 'webmoe', 0.25, 1, { decodeTokPerS: 5, prefillTokPerS: 55, gpuBytes: 150 * MIB }),
  run('browser', 'webmoe', 1, 0, { decodeTokPerS: 4, prefillTokPerS: 30 }),
  run('browser', 'wllama-wasm', 1, 0, { decodeTokPerS: 0.5, prefillTokPerS: 3 }),
  run('browser', 'webmoe', 1, 1, { decodeTokPerS: 6, prefillTokPerS: 40 }),
  run('browser', 'wllama-wasm', 1, 1, { decodeTokPerS: 0.5, prefillTokPerS: 3 }),
  { env: 'browser', system: 'wllama-webgpu', file: FILE, budget: 1, round: 0, error: WEBGPU_ERROR },
  { env: 'browser', system: 'wllama-webgpu', file: FILE, budget: 1, round: 1, error: WEBGPU_ERROR },
];

const INPUT: PeersReportInput = {
  command: 'npm run bench:peers -- --rounds 2',
  machine: '2 cores, 8 GiB',
  nodeAdapter: 'llvmpipe (Mesa lavapipe, CPU)',
  browserAdapter: 'SwiftShader Device (CPU)',
  browser: 'Chromium 140',
  promptTokens: 64,
  decodeTokens: 32,
  rounds: 2,
  files: [{ key: FILE, label: 'OLMoE-1B-7B shapes, Q4_K_M', bytes: 123.45 * MIB, expertBytes: 100 * MIB, layers: 2 }],
  records: RECORDS,
  notes: ['peak memory is what a run adds to its processes'],
};

/** The Markdown table row whose cells start with these, split into cells. */
function row(markdown: string, ...lead: string[]): string[] {
  const prefix = `| ${lead.join(' | ')} |`;
  const line = markdown.split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`no row ${prefix}`);
  return line.slice(2, -2).split(' | ');
}

describe('sig3', () => {
  it('keeps three significant digits, whole numbers from 1000 up', () => {
    expect([1234, 12.345, 0.01234, 0.55, 100].map(sig3)).toEqual(['1234', '12.3', '0.0123', '0.55', '100']);
  });
});

describe('peersMarkdown', () => {
  const md = peersMarkdown(INPUT, 'peers.svg');

  it('says what ran where and links the chart', () => {
    expect(md.startsWith('# webmoe beside its peers (`npm run bench:peers`)\n')).toBe(true);
    expect(md).toContain('- Node adapter: llvmpipe (Mesa lavapipe, CPU)');
    expect(md).toContain('- Browser adapter: SwiftShader Device (CPU)');
    expect(md).toContain('123.5 MiB, routed experts 100.0 MiB');
    expect(md).toContain('- peak memory is what a run adds to its processes');
    expect(md).toContain('![bench:peers chart](peers.svg)');
  });

  it('has Node before the browser', () => {
    expect(md.indexOf('## In Node')).toBeGreaterThan(0);
    expect(md.indexOf('## In the browser')).toBeGreaterThan(md.indexOf('## In Node'));
  });

  it('gives each system and budget its median (min–max) and number of runs', () => {
    const [node] = md.split('## In the browser');
    // file, system, load ms, prefill, decode, peak memory MB, webmoe GPU MB, runs
    expect(row(node, FILE, 'webmoe 100%')).toEqual([FILE, 'webmoe 100%', '1000', '110 (100–120)', '11 (10–12)', '500', '400', '2']);
    expect(row(node, FILE, 'webmoe 25%')).toEqual([FILE, 'webmoe 25%', '1000', '55', '5', '500', '150', '2']);
    expect(row(node, FILE, 'llama.cpp')).toEqual([FILE, 'llama.cpp', '1000', '2000', '20', '500', '-', '2']);
  });

  it('pairs webmoe with the peer round by round: decode 10/20 and 12/20', () => {
    const ratiosRow = md.split('### webmoe / peer')[1].split('\n').find((l) => l.startsWith(`| ${FILE} |`));
    expect(ratiosRow?.split(' | ')[2]).toBe('0.55 (0.5–0.6)');
  });

  it('shows a failed system once, with its reason escaped for the table', () => {
    const shown = 'no WebGPU adapter &lt;offload> & no fallback \\| see the log';
    expect(row(md, FILE, 'wllama-webgpu')).toContain(`did not run: ${shown}`);
    expect(md.split(shown).length - 1).toBe(1);
    expect(md).toContain('did not run');
  });

  it('cuts a long reason to 200 characters', () => {
    const long: RunRecord = { env: 'node', system: 'llama.cpp', file: 'other', budget: 1, round: 0, error: 'x'.repeat(500) };
    const cell = row(peersMarkdown({ ...INPUT, records: [long] }, 'c.svg'), 'other', 'llama.cpp')[2];
    expect(cell).toBe(`did not run: ${'x'.repeat(199)}…`);
  });

  it('prices the smaller budgets against webmoe at 100%, in Node only', () => {
    const [node, browser] = md.split('## In the browser');
    expect(node).toContain('### What the budget buys');
    expect(browser).not.toContain('What the budget buys');
    // decode 8 and 5 against a median of 11, prefill 110 and 55 against 110, GPU 250 and 150 MiB against 400.
    expect(row(node, FILE, '50%')).toEqual([FILE, '50%', '0.727', '1', '0.625', '1']);
    expect(row(node, FILE, '25%')).toEqual([FILE, '25%', '0.455', '0.5', '0.375', '1']);
  });
});

describe('peersChart', () => {
  const svg = peersChart(INPUT);
  const bars = [...svg.matchAll(/<rect class="bar"[^>]*width="([\d.]+)"[^>]*><title>([^<]*)<\/title>/g)].map((m) => ({
    width: Number(m[1]),
    title: m[2],
  }));
  const bar = (title: string) => {
    const found = bars.find((b) => b.title === title);
    if (!found) throw new Error(`no bar ${title}`);
    return found;
  };

  it('is one self-contained SVG document', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    expect(svg).toContain('font-family="sans-serif"');
    expect(svg).not.toMatch(/<script|href=|@import|url\((?!#)/);
  });

  it('draws one bar per system and budget that ran, in each panel', () => {
    // Node: webmoe 100/50/25% and llama.cpp; browser: webmoe and wllama-wasm; twice (prefill, decode).
    expect(bars).toHaveLength(12);
    expect((svg.match(/<rect/g) ?? []).length).toBeGreaterThanOrEqual(12);
    expect(svg).toContain('webmoe 50%');
    expect(svg).toContain('webmoe 25%');
  });

  it('draws a larger value as a longer bar, on a log scale', () => {
    const webmoe = bar('Node · olmoe-q4_k_m · webmoe 100%: 11 decode tok/s');
    const llama = bar('Node · olmoe-q4_k_m · llama.cpp: 20 decode tok/s');
    const wasm = bar('Browser · olmoe-q4_k_m · wllama-wasm: 0.5 decode tok/s');
    expect(llama.width).toBeGreaterThan(webmoe.width);
    expect(webmoe.width).toBeGreaterThan(wasm.width);
    expect(wasm.width).toBeGreaterThan(0);
    // log10: 20/11 is a shorter step than 11/0.5.
    expect(llama.width - webmoe.width).toBeLessThan(webmoe.width - wasm.width);
  });

  it('names a system that did not run, escaping its reason', () => {
    expect(svg).toContain('did not run: no WebGPU adapter &lt;offload&gt; &amp; no fallback | see the log');
    expect(svg).not.toContain('<offload>');
  });

  it('escapes labels taken from the files', () => {
    const odd = RECORDS.map((r) => ({ ...r, file: 'a&b<c>' }));
    const chart = peersChart({ ...INPUT, records: odd });
    expect(chart).toContain('Node · a&amp;b&lt;c&gt;');
    expect(chart).not.toContain('a&b<c>');
  });
});
