/**
 * Reading routing traces from the file system (Node only; browser code never
 * imports this file). A path may be a trace file in any supported format or a
 * directory, whose .json and .jsonl trace files are read in name order
 * (files in no trace format, such as prompt/output logs, are passed over).
 */

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TraceFormatError, writeTraces, type RoutingTrace } from '../trace';
import { detectTraceFormat, parseTraceText, type ImportOptions } from './trace-import';

/** "parent/file.json": short, yet tells the model family apart in reports. */
function sourceName(path: string): string {
  return `${basename(dirname(path))}/${basename(path)}`;
}

export async function readTraceFile(path: string, options: ImportOptions = {}): Promise<RoutingTrace[]> {
  const text = await readFile(path, 'utf8');
  try {
    return parseTraceText(text, sourceName(path), options);
  } catch (err) {
    if (err instanceof TraceFormatError) throw new TraceFormatError(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Reads each path (file or directory) and concatenates the traces. */
export async function readTracePaths(paths: readonly string[], options: ImportOptions = {}): Promise<RoutingTrace[]> {
  const traces: RoutingTrace[] = [];
  for (const path of paths) {
    if ((await stat(path)).isDirectory()) traces.push(...(await readTraceDirectory(path, options)));
    else traces.push(...(await readTraceFile(path, options)));
  }
  return traces;
}

async function readTraceDirectory(dir: string, options: ImportOptions): Promise<RoutingTrace[]> {
  const names = (await readdir(dir)).filter((n) => /\.jsonl?$/.test(n)).sort();
  const traces: RoutingTrace[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const text = await readFile(path, 'utf8');
    try {
      detectTraceFormat(text);
    } catch {
      continue;
    }
    traces.push(...parseTraceText(text, sourceName(path), options));
  }
  if (traces.length === 0) throw new TraceFormatError(`${dir}: no trace files (.json or .jsonl in a supported format)`);
  return traces;
}

export async function writeTraceFile(path: string, traces: readonly RoutingTrace[]): Promise<void> {
  await writeFile(path, writeTraces(traces), 'utf8');
}
