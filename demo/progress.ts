/**
 * The import/load progress line: a progress bar plus bytes done, speed and
 * time left, measured from this run's own samples (a resumed import starts
 * part way; its speed counts only what this run wrote).
 */
import type { LoadProgress } from '../src/index';
import { byId, formatBytes, formatSeconds } from './view';

export class ProgressLine {
  private readonly box = byId('progress');
  private readonly bar = byId<HTMLProgressElement>('progress-bar');
  private readonly text = byId('progress-text');
  private first: { at: number; bytes: number; phase: string } | undefined;

  start(what: string): void {
    this.first = undefined;
    this.box.hidden = false;
    this.bar.removeAttribute('value');
    this.text.textContent = what;
  }

  update(p: LoadProgress): void {
    if (p.progress === undefined) this.bar.removeAttribute('value');
    else this.bar.value = p.progress;
    this.box.dataset.phase = p.phase;
    if (p.bytesDone === undefined || p.bytesTotal === undefined) {
      this.text.textContent = p.text;
      return;
    }
    const now = performance.now();
    if (!this.first || this.first.phase !== p.text.split(' ')[0]) this.first = { at: now, bytes: p.bytesDone, phase: p.text.split(' ')[0] ?? '' };
    const parts = [`${p.text.split(':')[0]}: ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`];
    if (this.first.bytes > 0 && p.bytesDone < p.bytesTotal) parts.push(`resumed at ${formatBytes(this.first.bytes)}`);
    const seconds = (now - this.first.at) / 1000;
    const speed = seconds > 0.2 ? (p.bytesDone - this.first.bytes) / seconds : 0;
    if (speed > 0) {
      parts.push(`${formatBytes(speed)}/s`);
      if (p.bytesDone < p.bytesTotal) parts.push(`about ${formatSeconds((p.bytesTotal - p.bytesDone) / speed)} left`);
    }
    this.text.textContent = parts.join(' · ');
  }

  done(): void {
    this.box.hidden = true;
  }
}
