/**
 * Progress of a long byte transfer on stderr: a bar redrawn in place when
 * the stream is a terminal, plain lines at a coarse interval otherwise (a
 * log file or CI output should not get hundreds of carriage returns).
 */

import { formatBytes } from '../store/errors';

/** Redraws at most this often on a terminal. */
const REDRAW_MS = 100;
/** Without a terminal: a line per tenth of the total, or after this long without one. */
const PLAIN_LINE_MS = 10_000;
const BAR_CHARS = 24;

export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export interface ProgressFigures {
  label: string;
  bytesDone: number;
  bytesTotal: number;
  /** Of this run (bytes found from an earlier run do not count); undefined before there is a measure. */
  bytesPerS: number | undefined;
}

/** `writing  [#########---------------]  37.5%  2.50 MiB / 6.67 MiB  1.20 MiB/s  4 s left` (without the bar: `bar` false). */
export function formatProgress(f: ProgressFigures, bar: boolean): string {
  const fraction = f.bytesTotal > 0 ? Math.min(1, f.bytesDone / f.bytesTotal) : 1;
  const filled = Math.round(fraction * BAR_CHARS);
  const parts = [f.label];
  if (bar) parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_CHARS - filled)}]`);
  parts.push(`${(fraction * 100).toFixed(1).padStart(5)}%`, `${formatBytes(f.bytesDone)} / ${formatBytes(f.bytesTotal)}`);
  if (f.bytesPerS !== undefined && f.bytesPerS > 0) {
    parts.push(`${formatBytes(f.bytesPerS)}/s`, `${formatDuration((f.bytesTotal - f.bytesDone) / f.bytesPerS)} left`);
  }
  return parts.join('  ');
}

/** Draws the progress of one phase after another (writing, then verifying) on `stream`. */
export class ProgressReporter {
  private label = '';
  private startMs = 0;
  private startBytes = 0;
  private lastDrawMs = -Infinity;
  private lastTenth = -1;
  private drawn = false;

  constructor(private readonly stream: ProgressStream, private readonly now: () => number = () => performance.now()) {}

  update(label: string, bytesDone: number, bytesTotal: number): void {
    const now = this.now();
    if (label !== this.label) {
      this.endLine();
      this.label = label;
      this.startMs = now;
      this.startBytes = bytesDone;
      this.lastDrawMs = -Infinity;
      this.lastTenth = -1;
    }
    const elapsedS = (now - this.startMs) / 1000;
    const bytesPerS = elapsedS > 0 && bytesDone > this.startBytes ? (bytesDone - this.startBytes) / elapsedS : undefined;
    const figures = { label, bytesDone, bytesTotal, bytesPerS };
    const finished = bytesDone >= bytesTotal;
    if (this.stream.isTTY) {
      if (!finished && now - this.lastDrawMs < REDRAW_MS) return;
      const line = formatProgress(figures, true).slice(0, Math.max(20, (this.stream.columns ?? 80) - 1));
      this.stream.write(`\r${line}\x1b[K`);
      this.drawn = true;
    } else {
      const tenth = bytesTotal > 0 ? Math.floor((10 * bytesDone) / bytesTotal) : 10;
      if (tenth === this.lastTenth && now - this.lastDrawMs < PLAIN_LINE_MS) return;
      this.lastTenth = tenth;
      this.stream.write(`${formatProgress(figures, false)}\n`);
    }
    this.lastDrawMs = now;
  }

  /** Ends the bar's line, so that what is printed next starts on its own. */
  endLine(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
