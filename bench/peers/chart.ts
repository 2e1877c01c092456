/**
 * The bench:peers chart: prefill and decode tok/s of every system, one panel
 * each, as horizontal bars (median) with min–max whiskers, grouped by
 * environment and file. The figures span orders of magnitude (a CPU WebGPU
 * adapter against native llama.cpp), so the axis is log10. The SVG is
 * self-contained: no fonts, scripts or links, so it renders wherever the
 * report is read.
 */

import { figures } from './figures';
import type { Environment, FigureKey, Spread, SystemKey } from './figures';
import { ENV_ORDER, SYSTEM_ORDER, errorsOf, fileKeys, rowKeys, runLabel, sig3, truncate } from './report';
import type { PeersReportInput } from './report';

const WIDTH = 980;
const PLOT_X = 250;
const PLOT_W = 600;
const GROUP_H = 22;
const ROW_H = 20;
const BAR_H = 14;

const COLOURS: Record<SystemKey, string> = {
  webmoe: '#1f6fb4',
  'llama.cpp': '#c8372d',
  'wllama-wasm': '#2e9a3f',
  'wllama-webgpu': '#e08a12',
};
const ENV_NAME: Record<Environment, string> = { node: 'Node', browser: 'Browser' };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' } as Record<string, string>)[c]};`);
}

interface BarRow {
  label: string;
  system: SystemKey;
  budget: number;
  value?: Spread;
  error?: string;
}

interface Group {
  title: string;
  rows: BarRow[];
}

/** Rows with neither figures nor an error (a budget not run on this file) are left out. */
function groupsOf(input: PeersReportInput, key: FigureKey): Group[] {
  return ENV_ORDER.flatMap((env) =>
    fileKeys(input, env).map((file) => ({
      title: `${ENV_NAME[env]} · ${file}`,
      rows: rowKeys(input.records, env, file)
        .map((k) => ({
          label: runLabel(k.system, k.budget),
          ...k,
          value: figures(input.records, env, file, k.system, k.budget, key),
          error: errorsOf(input.records, env, file, k)[0],
        }))
        .filter((r) => r.value || r.error),
    })),
  );
}

interface LogScale {
  lo: number;
  hi: number;
  x(v: number): number;
}

/** Whole decades, with the lowest value clear of the axis so its bar keeps some length. */
function logScale(values: readonly number[]): LogScale {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  const lo = positive.length ? Math.floor(Math.log10(Math.min(...positive)) - 0.05) : 0;
  const top = positive.length ? Math.ceil(Math.log10(Math.max(...positive))) : 1;
  const hi = Math.max(top, lo + 1);
  const x = (v: number) => {
    const t = v > 0 ? (Math.min(Math.max(Math.log10(v), lo), hi) - lo) / (hi - lo) : 0;
    return PLOT_X + PLOT_W * t;
  };
  return { lo, hi, x };
}

function tickLabel(power: number): string {
  return power >= -3 && power <= 5 ? String(Number((10 ** power).toPrecision(1))) : `1e${power}`;
}

function fillOf(system: SystemKey, budget: number): string {
  return budget < 1 ? `url(#hatch-${SYSTEM_ORDER.indexOf(system)})` : COLOURS[system];
}

/** Lighter, hatched fills for webmoe below its full budget, in the same colour family. */
function hatchDefs(): string {
  const patterns = SYSTEM_ORDER.map(
    (s, i) =>
      `<pattern id="hatch-${i}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">` +
      `<rect width="6" height="6" fill="${COLOURS[s]}" fill-opacity="0.3"/><line x1="0" y1="0" x2="0" y2="6" stroke="${COLOURS[s]}" stroke-width="2.5"/></pattern>`,
  );
  return `<defs>${patterns.join('')}</defs>`;
}

function barRow(row: BarRow, group: string, scale: LogScale, unit: string, y: number): string[] {
  const mid = y + ROW_H / 2;
  const out = [`<text x="${PLOT_X - 8}" y="${mid + 4}" text-anchor="end">${escapeXml(row.label)}</text>`];
  if (!row.value) {
    const reason = truncate(row.error ?? 'no figures', 60);
    out.push(`<text x="${PLOT_X + 4}" y="${mid + 4}" fill="#777" font-style="italic">${escapeXml(`did not run: ${reason}`)}</text>`);
    return out;
  }
  const { median, min, max, n } = row.value;
  const end = scale.x(median);
  const colour = COLOURS[row.system];
  const tip = `${group} · ${row.label}: ${sig3(median)} ${unit}`;
  out.push(
    `<rect class="bar" x="${PLOT_X}" y="${(mid - BAR_H / 2).toFixed(1)}" width="${(end - PLOT_X).toFixed(1)}" height="${BAR_H}" ` +
      `fill="${fillOf(row.system, row.budget)}" stroke="${colour}"><title>${escapeXml(tip)}</title></rect>`,
  );
  if (n > 1 && max > min) {
    const [a, b] = [scale.x(min), scale.x(max)];
    out.push(
      `<path d="M${a.toFixed(1)} ${mid}H${b.toFixed(1)}M${a.toFixed(1)} ${mid - 4}V${mid + 4}M${b.toFixed(1)} ${mid - 4}V${mid + 4}" stroke="#222" fill="none"/>`,
    );
  }
  const textX = Math.max(end, scale.x(max)) + 5;
  out.push(`<text x="${textX.toFixed(1)}" y="${mid + 4}">${escapeXml(sig3(median))}</text>`);
  return out;
}

/** One panel at `top`; returns its markup and height. */
function panel(groups: readonly Group[], title: string, unit: string, top: number): { svg: string[]; height: number } {
  const values = groups.flatMap((g) => g.rows.flatMap((r) => (r.value ? [r.value.min, r.value.median, r.value.max] : [])));
  const scale = logScale(values);
  const plotTop = top + 44;
  const body: string[] = [];
  let y = plotTop;
  for (const group of groups) {
    body.push(`<text x="12" y="${y + 15}" font-weight="bold">${escapeXml(group.title)}</text>`);
    y += GROUP_H;
    for (const row of group.rows) {
      body.push(...barRow(row, group.title, scale, unit, y));
      y += ROW_H;
    }
  }
  const grid: string[] = [];
  for (let p = scale.lo; p <= scale.hi; p++) {
    const x = scale.x(10 ** p).toFixed(1);
    grid.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${y}" stroke="#ddd"/>`);
    grid.push(`<text x="${x}" y="${plotTop - 6}" text-anchor="middle" fill="#555" font-size="11">${tickLabel(p)}</text>`);
  }
  const heading = `<text x="12" y="${top + 18}" font-size="14" font-weight="bold">${escapeXml(title)}</text>`;
  return { svg: [heading, ...grid, ...body], height: y - top + 16 };
}

function legend(input: PeersReportInput, y: number): string[] {
  const systems = SYSTEM_ORDER.filter((s) => input.records.some((r) => r.system === s && r.figures));
  const items: { fill: string; stroke: string; text: string }[] = systems.map((s) => ({ fill: COLOURS[s], stroke: COLOURS[s], text: s }));
  if (input.records.some((r) => r.system === 'webmoe' && r.budget < 1)) {
    items.push({ fill: fillOf('webmoe', 0.5), stroke: COLOURS.webmoe, text: 'webmoe at a smaller expert budget (50%, 25%)' });
  }
  let x = 12;
  return items.flatMap((item) => {
    const out = [
      `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${item.fill}" stroke="${item.stroke}"/>`,
      `<text x="${x + 17}" y="${y}">${escapeXml(item.text)}</text>`,
    ];
    x += 32 + item.text.length * 6.2;
    return out;
  });
}

export function peersChart(input: PeersReportInput): string {
  const subtitle = `${truncate(input.machine, 60)} · Node: ${truncate(input.nodeAdapter, 50)} · Browser: ${truncate(input.browserAdapter, 50)}`;
  const runs = `prompt ${input.promptTokens} tokens, decode ${input.decodeTokens} tokens, ${input.rounds} alternating rounds; bars: median, whiskers: min–max, log scale`;
  const head = [
    `<text x="12" y="24" font-size="17" font-weight="bold">webmoe beside its peers (npm run bench:peers)</text>`,
    `<text x="12" y="44" fill="#444">${escapeXml(subtitle)}</text>`,
    `<text x="12" y="62" fill="#444">${escapeXml(runs)}</text>`,
    ...legend(input, 86),
  ];
  const parts: string[] = [];
  let y = 100;
  for (const [key, title] of [['prefillTokPerS', 'prefill tok/s'], ['decodeTokPerS', 'decode tok/s']] as const) {
    const p = panel(groupsOf(input, key), title, title, y);
    parts.push(...p.svg);
    y += p.height;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif" font-size="12">`,
    hatchDefs(),
    `<rect width="${WIDTH}" height="${y}" fill="#fff"/>`,
    ...head,
    ...parts,
    '</svg>',
  ].join('\n');
}
