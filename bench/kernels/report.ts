/**
 * The benchmark's printed report: a markdown header naming the adapter and
 * the method, the roofline table (copies at each byte count the kernels
 * read) and the kernel table, each kernel's GB/s set against the faster copy
 * of the same byte count measured in the same run.
 */

import { COPY_BUFFER_KERNEL, COPY_COMPUTE_KERNEL, ROOFLINE_SECTION } from './measure';
import type { BenchCase, Measurement } from './measure';

export interface CaseResult {
  benchCase: BenchCase;
  measurement?: Measurement;
  note?: string;
  /** Why the case has no measurement. */
  error?: string;
}

const MB = 1e6;

/** Bytes read per second, in GB/s (1e9 bytes). */
export function gigabytesPerSecond(bytes: number, ns: number): number {
  return bytes / ns;
}

/** `value` with about 3 significant digits, without exponent notation. */
export function formatSignificant(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const digits = value === 0 ? 0 : Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return value.toFixed(Math.min(digits, 4));
}

function table(head: readonly string[], rows: readonly string[][]): string {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(escape).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The best copy rate (GB/s) measured at each byte count. */
export function copyRoofline(results: readonly CaseResult[]): Map<number, number> {
  const best = new Map<number, number>();
  for (const r of results) {
    if (r.benchCase.section !== ROOFLINE_SECTION || !r.measurement) continue;
    const rate = gigabytesPerSecond(r.benchCase.bytes, r.measurement.medianNs);
    best.set(r.benchCase.bytes, Math.max(best.get(r.benchCase.bytes) ?? 0, rate));
  }
  return best;
}

function timeCells(m: Measurement): string[] {
  return [`${m.batch} x ${m.reps}`, formatSignificant(m.medianNs / 1e6), `${formatSignificant(m.minNs / 1e6)}–${formatSignificant(m.maxNs / 1e6)}`];
}

function rooflineTable(results: readonly CaseResult[]): string {
  const byBytes = new Map<number, Map<string, CaseResult>>();
  for (const r of results) {
    if (r.benchCase.section !== ROOFLINE_SECTION) continue;
    const entry = byBytes.get(r.benchCase.bytes) ?? new Map<string, CaseResult>();
    entry.set(r.benchCase.kernel, r);
    byBytes.set(r.benchCase.bytes, entry);
  }
  const cell = (r: CaseResult | undefined): string[] => {
    if (!r) return ['', ''];
    if (!r.measurement) return ['failed', ''];
    return [formatSignificant(r.measurement.medianNs / 1e6), formatSignificant(gigabytesPerSecond(r.benchCase.bytes, r.measurement.medianNs))];
  };
  const rows = [...byBytes.entries()]
    .sort(([a], [b]) => a - b)
    .map(([bytes, entry]) => {
      const copy = entry.get(COPY_BUFFER_KERNEL);
      const compute = entry.get(COPY_COMPUTE_KERNEL);
      const notes = [copy?.error, compute?.error, compute?.note ?? copy?.note].filter(Boolean).join('; ');
      return [formatSignificant(bytes / MB), ...cell(copy), ...cell(compute), notes];
    });
  const head = ['MB', `${COPY_BUFFER_KERNEL} ms`, 'GB/s', `${COPY_COMPUTE_KERNEL} ms`, 'GB/s', 'note'];
  return table(head, rows);
}

/** One table per section (model), rows in run order. */
function kernelTables(results: readonly CaseResult[], roofline: ReadonlyMap<number, number>): string[] {
  const sections = new Map<string, CaseResult[]>();
  for (const r of results) {
    if (r.benchCase.section === ROOFLINE_SECTION) continue;
    sections.set(r.benchCase.section, [...(sections.get(r.benchCase.section) ?? []), r]);
  }
  const head = ['kernel', 'shape', 'format', 'MB read', 'batch x reps', 'median ms', 'min–max ms', 'GB/s', 'copy GB/s', 'of copy', 'note'];
  return [...sections.entries()].map(([section, rows]) => `### ${section}\n\n${table(head, rows.map((r) => kernelRow(r, roofline)))}`);
}

function kernelRow(r: CaseResult, roofline: ReadonlyMap<number, number>): string[] {
  const c = r.benchCase;
  const described = [c.kernel, c.shape, c.format, formatSignificant(c.bytes / MB)];
  if (!r.measurement) return [...described, '', '', '', '', '', '', `failed: ${r.error ?? 'unknown'}`];
  const rate = gigabytesPerSecond(c.bytes, r.measurement.medianNs);
  const copyRate = roofline.get(c.bytes);
  return [
    ...described,
    ...timeCells(r.measurement),
    formatSignificant(rate),
    copyRate === undefined ? '' : formatSignificant(copyRate),
    copyRate === undefined ? '' : formatSignificant(rate / copyRate),
    r.note ?? '',
  ];
}

export interface ReportHeader {
  title: string;
  /** Lines about the adapter, timer and settings, printed as a list. */
  lines: string[];
}

export function formatReport(header: ReportHeader, results: readonly CaseResult[]): string {
  const roofline = copyRoofline(results);
  const parts = [`# ${header.title}`, header.lines.map((l) => `- ${l}`).join('\n')];
  if (results.some((r) => r.benchCase.section === ROOFLINE_SECTION)) {
    parts.push(
      '## Roofline: copies of the bytes each kernel reads',
      'GB/s counts the bytes read (a copy writes as many again).',
      rooflineTable(results),
    );
  }
  if (results.some((r) => r.benchCase.section !== ROOFLINE_SECTION)) {
    parts.push(
      '## Kernels, one token (decode)',
      'Times are per call: median (and range) of `reps` timed measurements, each of `batch` calls. ' +
        'MB read counts weight bytes only (the f32 activations, a few percent at most, are left out). ' +
        '"of copy" is GB/s over the faster copy of the same byte count.',
      ...kernelTables(results, roofline),
    );
  }
  return `${parts.join('\n\n')}\n`;
}
