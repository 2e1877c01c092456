/**
 * The Markdown report of one bench:peers run: what ran where, every system's
 * figures as median (min–max) over the alternating rounds, webmoe/peer ratios
 * taken round by round, and what webmoe's smaller expert budgets cost and
 * save against its own full budget. The helpers that name rows and format
 * numbers are shared with the chart (chart.ts), so both say the same thing.
 */

import { figures, ratios, spread } from './figures';
import type { Environment, FigureKey, RunRecord, Spread, SystemKey } from './figures';

export interface PeersReportInput {
  command: string;
  machine: string;
  nodeAdapter: string;
  browserAdapter: string;
  browser: string;
  promptTokens: number;
  decodeTokens: number;
  rounds: number;
  files: { key: string; label: string; bytes: number; expertBytes: number; layers: number }[];
  records: RunRecord[];
  notes: string[];
}

export const SYSTEM_ORDER: readonly SystemKey[] = ['webmoe', 'llama.cpp', 'wllama-wasm', 'wllama-webgpu'];
export const ENV_ORDER: readonly Environment[] = ['node', 'browser'];
const ENV_TITLE: Record<Environment, string> = { node: 'In Node', browser: 'In the browser' };
const MIB = 2 ** 20;

/** Three significant digits; whole numbers from 1000 up, since rounding 1234 to 1230 only hides digits. */
export function sig3(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 1000) return String(Math.round(x));
  return String(Number(x.toPrecision(3)));
}

/** MiB, whole above 100 where a decimal is noise. */
export function mb(bytes: number): string {
  const v = bytes / MIB;
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);
}

export function percent(budget: number): string {
  return `${Number((budget * 100).toPrecision(3))}%`;
}

/** webmoe's rows carry their expert budget; a peer has only one. */
export function runLabel(system: SystemKey, budget: number): string {
  return system === 'webmoe' ? `webmoe ${percent(budget)}` : system;
}

/** `median (min–max)`; the bare value where the runs agree to the digits shown; `-` for none. */
export function spreadText(s: Spread | undefined, format: (x: number) => string = sig3): string {
  if (!s) return '-';
  const [min, max] = [format(s.min), format(s.max)];
  return min === max ? format(s.median) : `${format(s.median)} (${min}–${max})`;
}

export function truncate(text: string, limit: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > limit ? `${line.slice(0, limit - 1)}…` : line;
}

/** One table cell: a `|` would end the cell and a `<` would open an HTML tag. */
function cellText(text: string, limit = Infinity): string {
  return truncate(text, limit).replace(/\|/g, '\\|').replace(/</g, '&lt;');
}

export interface RowKey {
  system: SystemKey;
  budget: number;
}

/** The files run in `env`: in the input's order, then any the records name that it does not list. */
export function fileKeys(input: PeersReportInput, env: Environment): string[] {
  const present = new Set(input.records.filter((r) => r.env === env).map((r) => r.file));
  const listed = input.files.map((f) => f.key).filter((k) => present.has(k));
  return [...listed, ...[...present].filter((k) => !listed.includes(k))];
}

/** The (system, budget) pairs run on one file: systems in a fixed order, larger budgets first. */
export function rowKeys(records: readonly RunRecord[], env: Environment, file: string): RowKey[] {
  const seen = new Map<string, RowKey>();
  for (const r of records) if (r.env === env && r.file === file) seen.set(`${r.system}@${r.budget}`, { system: r.system, budget: r.budget });
  const rank = (k: RowKey) => SYSTEM_ORDER.indexOf(k.system);
  return [...seen.values()].sort((a, b) => rank(a) - rank(b) || b.budget - a.budget);
}

function runsOf(records: readonly RunRecord[], env: Environment, file: string, key: RowKey): RunRecord[] {
  return records.filter((r) => r.env === env && r.file === file && r.system === key.system && r.budget === key.budget);
}

/** Why runs of this row gave no figures, one entry per failed run. */
export function errorsOf(records: readonly RunRecord[], env: Environment, file: string, key: RowKey): string[] {
  return runsOf(records, env, file, key).flatMap((r) => (!r.figures && r.error ? [r.error] : []));
}

/** webmoe's GPU bytes are not a FigureKey: only webmoe reports them. */
function gpuSpread(records: readonly RunRecord[], env: Environment, file: string, key: RowKey): Spread | undefined {
  return spread(runsOf(records, env, file, key).flatMap((r) => (r.figures?.gpuBytes !== undefined ? [r.figures.gpuBytes] : [])));
}

function table(head: readonly string[], align: readonly ('l' | 'r')[], rows: readonly string[][]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(align.map((a) => (a === 'r' ? '--:' : '---'))), ...rows.map(line)];
}

function headerLines(input: PeersReportInput, svgFileName: string): string[] {
  const files = input.files.map(
    (f) => `- \`${f.key}\`: ${f.label}; ${(f.bytes / MIB).toFixed(1)} MiB, routed experts ${(f.expertBytes / MIB).toFixed(1)} MiB, ${f.layers} layer${f.layers === 1 ? '' : 's'}`,
  );
  return [
    '# webmoe beside its peers (`npm run bench:peers`)',
    '',
    `- Command: \`${input.command}\``,
    `- Machine: ${input.machine}`,
    `- Node adapter: ${input.nodeAdapter}`,
    `- Browser adapter: ${input.browserAdapter}`,
    `- Browser: ${input.browser}`,
    `- Prompt: ${input.promptTokens} tokens; decode: ${input.decodeTokens} tokens, greedy`,
    `- Rounds: ${input.rounds}, alternating (webmoe, peer, webmoe, peer, ...)`,
    '',
    '## Files',
    '',
    ...files,
    '',
    ...(input.notes.length ? ['## Notes', '', ...input.notes.map((n) => `- ${n}`), ''] : []),
    `![bench:peers chart](${svgFileName})`,
    '',
  ];
}

function figuresTable(input: PeersReportInput, env: Environment): string[] {
  const { records } = input;
  const hasGpu = records.some((r) => r.env === env && r.figures?.gpuBytes !== undefined);
  const head = ['file', 'system', 'load ms', 'prefill tok/s', 'decode tok/s', 'peak memory MB', ...(hasGpu ? ['webmoe GPU MB'] : []), 'runs'];
  const rows: string[][] = [];
  for (const file of fileKeys(input, env)) {
    for (const key of rowKeys(records, env, file)) {
      const label = [cellText(file), runLabel(key.system, key.budget)];
      const at = (k: FigureKey) => figures(records, env, file, key.system, key.budget, k);
      const n = runsOf(records, env, file, key).filter((r) => r.figures).length;
      if (n > 0) {
        const gpu = hasGpu ? [spreadText(gpuSpread(records, env, file, key), mb)] : [];
        rows.push([...label, spreadText(at('loadMs')), spreadText(at('prefillTokPerS')), spreadText(at('decodeTokPerS')), spreadText(at('peakMemBytes'), mb), ...gpu, String(n)]);
      }
      const errors = errorsOf(records, env, file, key);
      if (errors.length) {
        const blanks = head.slice(3, -1).map(() => '-');
        rows.push([...label, `did not run: ${cellText(errors[0], 200)}`, ...blanks, `${errors.length} failed`]);
      }
    }
  }
  return table(head, head.map((_, i) => (i < 2 ? 'l' : 'r')), rows);
}

const RATIO_KEYS: readonly { key: FigureKey; name: string }[] = [
  { key: 'prefillTokPerS', name: 'prefill' },
  { key: 'decodeTokPerS', name: 'decode' },
  { key: 'loadMs', name: 'load' },
  { key: 'peakMemBytes', name: 'peak memory' },
];

function ratioLines(input: PeersReportInput, env: Environment): string[] {
  const { records } = input;
  const peers = SYSTEM_ORDER.filter((s) => s !== 'webmoe' && records.some((r) => r.env === env && r.system === s));
  if (peers.length === 0) return [];
  const head = ['file', ...peers.flatMap((p) => RATIO_KEYS.map((k) => `${p} ${k.name}`))];
  const rows = fileKeys(input, env).map((file) => [
    cellText(file),
    ...peers.flatMap((peer) => {
      const ran = records.some((r) => r.env === env && r.file === file && r.system === peer && r.figures);
      return RATIO_KEYS.map((k) => (ran ? spreadText(ratios(records, env, file, peer, k.key)) : 'did not run'));
    }),
  ]);
  return [
    '### webmoe / peer',
    '',
    'webmoe at its full budget divided by the peer, round by round (runs taken back to back), as median (min–max) over the rounds.',
    'A ratio above 1 (>1) means webmoe is faster (prefill, decode: tok/s) / slower to load (load: ms) / uses more memory (peak memory).',
    '',
    ...table(head, head.map((_, i) => (i === 0 ? 'l' : 'r')), rows),
    '',
  ];
}

/** Ratio of medians, `-` when either side is missing. */
function relative(mine: Spread | undefined, full: Spread | undefined): string {
  return mine && full && full.median !== 0 ? sig3(mine.median / full.median) : '-';
}

function budgetLines(input: PeersReportInput, env: Environment): string[] {
  const { records } = input;
  if (!records.some((r) => r.env === env && r.system === 'webmoe' && r.budget < 1)) return [];
  const rows: string[][] = [];
  for (const file of fileKeys(input, env)) {
    const full: RowKey = { system: 'webmoe', budget: 1 };
    const at = (key: RowKey, k: FigureKey) => figures(records, env, file, key.system, key.budget, k);
    for (const key of rowKeys(records, env, file).filter((k) => k.system === 'webmoe' && k.budget < 1)) {
      rows.push([
        cellText(file),
        percent(key.budget),
        relative(at(key, 'decodeTokPerS'), at(full, 'decodeTokPerS')),
        relative(at(key, 'prefillTokPerS'), at(full, 'prefillTokPerS')),
        relative(gpuSpread(records, env, file, key), gpuSpread(records, env, file, full)),
        relative(at(key, 'peakMemBytes'), at(full, 'peakMemBytes')),
      ]);
    }
  }
  const head = ['file', 'expert budget', 'decode tok/s', 'prefill tok/s', 'GPU MB', 'peak memory'];
  return [
    '### What the budget buys',
    '',
    'webmoe at a smaller expert budget against itself at 100%, as a ratio of medians: below 1 is slower (tok/s) or smaller (memory).',
    '',
    ...table(head, head.map((_, i) => (i < 2 ? 'l' : 'r')), rows),
    '',
  ];
}

export function peersMarkdown(input: PeersReportInput, svgFileName: string): string {
  const lines = headerLines(input, svgFileName);
  for (const env of ENV_ORDER) {
    if (!input.records.some((r) => r.env === env)) continue;
    lines.push(`## ${ENV_TITLE[env]}`, '', ...figuresTable(input, env), '', ...ratioLines(input, env), ...budgetLines(input, env));
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
