/**
 * Reads of expert weights, at most `concurrency` at a time, in priority
 * order: demand loads (a layer is waiting) before prefetches, each kind in
 * the order asked. A queued prefetch that becomes needed is promoted: a
 * demand miss jumps the queue, and never waits behind guesses.
 */

export type LoadPriority = 'demand' | 'prefetch';

interface QueuedLoad {
  key: number;
  priority: LoadPriority;
  seq: number;
  run: () => Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class LoadQueue {
  private readonly waiting: QueuedLoad[] = [];
  private readonly byKey = new Map<number, QueuedLoad>();
  private running = 0;
  private seq = 0;

  constructor(readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`load concurrency must be an integer >= 1, got ${concurrency}`);
  }

  /** Loads in flight or queued. */
  get pending(): number {
    return this.running + this.waiting.length;
  }

  /** Queues `run` under `key`; resolves when it has run. */
  add(key: number, priority: LoadPriority, run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const load: QueuedLoad = { key, priority, seq: this.seq++, run, resolve, reject };
      this.waiting.push(load);
      this.byKey.set(key, load);
      this.pump();
    });
  }

  /** Moves a queued (not yet started) load of `key` to demand priority; false when it is not waiting. */
  promote(key: number): boolean {
    const load = this.byKey.get(key);
    if (!load || load.priority === 'demand') return false;
    load.priority = 'demand';
    load.seq = this.seq++; // demands run in the order they were demanded
    return true;
  }

  private next(): QueuedLoad | undefined {
    let best = -1;
    for (let i = 0; i < this.waiting.length; i++) {
      const a = this.waiting[i];
      const b = this.waiting[best];
      if (best < 0 || (a.priority === 'demand' && b.priority !== 'demand') || (a.priority === b.priority && a.seq < b.seq)) best = i;
    }
    return best < 0 ? undefined : this.waiting.splice(best, 1)[0];
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const load = this.next();
      if (!load) return;
      this.byKey.delete(load.key);
      this.running++;
      load.run().then(load.resolve, load.reject).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}
