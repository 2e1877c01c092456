/**
 * The expert heatmap: one row per MoE layer, one cell per expert, coloured by
 * how often the expert fired in the current request (relative to the most
 * used one), outlined when it is resident on the GPU; each row ends with its
 * hit rate so far. Every cell carries data-count and data-resident, the grid
 * data-total (activations), data-tokens and data-resident-count, and a text
 * summary below stands in for the picture (also its aria-label).
 */
import type { RoutingShape, RoutingTally } from './routing';
import { byId, element, formatPercent } from './view';

export class Heatmap {
  private readonly grid = byId('heatmap');
  private readonly summary = byId('heatmap-summary');
  private readonly total = byId('activations');
  private cells: HTMLElement[] = [];
  private rates: HTMLElement[] = [];
  /** Last written count and residency per cell, to touch only what changed. */
  private shown: { count: number; resident: string; heat: string }[] = [];
  private tally: RoutingTally | undefined;
  private frame = 0;

  /** Builds the rows and cells for a model (or clears them: undefined). */
  setShape(shape: RoutingShape | undefined): void {
    this.tally = undefined;
    this.cells = [];
    this.rates = [];
    this.shown = [];
    this.grid.replaceChildren();
    this.grid.style.setProperty('--experts', String(shape?.experts ?? 1));
    if (!shape) {
      this.grid.append(element('p', 'muted', 'Load a Mixture-of-Experts model to see which experts each token uses.'));
      this.writeTotals(undefined);
      return;
    }
    const header = element('div', 'hm-row hm-head');
    header.setAttribute('aria-hidden', 'true');
    header.append(element('span', 'hm-label', 'layer'), element('span', 'hm-axis', `experts 0 to ${shape.experts - 1}`), element('span', 'hm-rate', 'hit rate'));
    this.grid.append(header);
    shape.layers.forEach((layer, row) => {
      const line = element('div', 'hm-row');
      line.dataset.row = String(row);
      line.dataset.layer = String(layer);
      const cells = element('div', 'hm-cells');
      for (let e = 0; e < shape.experts; e++) {
        const cell = element('span', 'hm-cell');
        cell.dataset.layer = String(layer);
        cell.dataset.expert = String(e);
        cell.dataset.count = '0';
        cell.dataset.resident = 'unknown';
        cells.append(cell);
        this.cells.push(cell);
        this.shown.push({ count: 0, resident: 'unknown', heat: '0' });
      }
      const rate = element('span', 'hm-rate', '–');
      this.rates.push(rate);
      line.append(element('span', 'hm-label', `L${layer}`), cells, rate);
      this.grid.append(line);
    });
    this.writeTotals(undefined);
  }

  /** Shows `tally` (a request's counts) from now on; redraws on the next frame. */
  show(tally: RoutingTally): void {
    this.tally = tally;
    this.schedule();
  }

  /** Redraws on the next animation frame (many chunks per frame cost one redraw). */
  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Redraws now (the end of a request, so the summary is final). */
  flush(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.draw();
  }

  /** Marks the summary busy while a request streams, so screen readers hear only the final one. */
  setBusy(busy: boolean): void {
    this.summary.setAttribute('aria-busy', String(busy));
  }

  private draw(): void {
    const tally = this.tally;
    if (!tally || this.cells.length !== tally.counts.length) return;
    const { experts, layers } = tally.shape;
    let max = 1;
    for (const c of tally.counts) max = Math.max(max, c);
    for (let i = 0; i < this.cells.length; i++) {
      const count = tally.counts[i]!;
      const row = Math.floor(i / experts);
      const set = tally.resident[row];
      const resident = set === undefined ? 'unknown' : String(set.has(i % experts));
      const heat = count === 0 ? '0' : (0.15 + (0.85 * count) / max).toFixed(2);
      const shown = this.shown[i]!;
      if (shown.count === count && shown.resident === resident && shown.heat === heat) continue;
      const cell = this.cells[i]!;
      cell.dataset.count = String(count);
      cell.dataset.resident = resident;
      cell.style.setProperty('--heat', heat);
      cell.title = `layer ${layers[row]}, expert ${i % experts}: ${count} ${count === 1 ? 'time' : 'times'}${resident === 'true' ? ', on the GPU' : resident === 'false' ? ', in the store' : ''}`;
      this.shown[i] = { count, resident, heat };
    }
    this.rates.forEach((el, row) => {
      const rate = tally.hitRate(row);
      el.textContent = rate === undefined ? '–' : formatPercent(rate);
      el.dataset.hitRate = rate === undefined ? '' : rate.toFixed(3);
    });
    this.writeTotals(tally);
  }

  private writeTotals(tally: RoutingTally | undefined): void {
    const resident = tally?.residentCount;
    this.grid.dataset.total = String(tally?.activations ?? 0);
    this.grid.dataset.tokens = String(tally?.tokens ?? 0);
    this.grid.dataset.residentCount = resident === undefined ? '' : String(resident);
    this.total.textContent = String(tally?.activations ?? 0);
    const text = tally ? describe(tally) : 'No routing yet.';
    this.summary.textContent = text;
    this.grid.setAttribute('aria-label', `Expert heatmap. ${text}`);
  }
}

/** The heatmap in words: activations, the busiest experts, residency and hit rate. */
function describe(tally: RoutingTally): string {
  const { layers, experts } = tally.shape;
  const cells = layers.length * experts;
  if (tally.tokens === 0) {
    const resident = tally.residentCount;
    return `${layers.length} MoE layers × ${experts} experts, ${tally.shape.topK} used per token in each` +
      `${resident === undefined ? '' : `; ${resident} of ${cells} resident on the GPU`}. No tokens yet.`;
  }
  const top = tally.top(3).map((t) => `L${layers[t.row]} E${t.expert} (${t.count})`).join(', ');
  const resident = tally.residentCount;
  const accesses = tally.totalHits + tally.totalMisses;
  return [
    `${tally.activations} expert activations over ${tally.tokens} tokens`,
    `busiest: ${top}`,
    ...(resident === undefined ? [] : [`${resident} of ${cells} experts resident on the GPU`]),
    ...(accesses === 0 ? [] : [`hit rate ${formatPercent(tally.totalHits / accesses)}`]),
  ].join('; ') + '.';
}
