/**
 * Memory of a tree of processes, from /proc (Linux): what a browser run
 * holds across Chromium's processes (the renderer with its workers and
 * WebAssembly memory, the GPU process with SwiftShader's buffers). Each
 * process's proportional set size (Pss: shared pages split among their
 * users) is summed, so libraries mapped by every process count once.
 */

import { readdirSync, readFileSync } from 'node:fs';

/** Every live descendant of `root` (not `root` itself). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited between the listing and the read
    }
    // The command name is in parentheses and may hold spaces: the parent pid is the second field after it.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Pss of one process in bytes (0 once it has exited). */
export function pssBytes(pid: number): number {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = /^Pss:\s+(\d+) kB/m.exec(rollup);
    return kib ? Number(kib[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function treePssBytes(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + pssBytes(pid), 0);
}

/** Samples the summed Pss of `root`'s descendants every `intervalMs` until stopped; stop() gives the peak. */
export function sampleTreeMemory(root: number, intervalMs = 100, exclude: ReadonlySet<number> = new Set()): { stop(): number } {
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, treePssBytes(descendants(root).filter((pid) => !exclude.has(pid))));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}
