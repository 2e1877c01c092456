/**
 * Command-line options of the kernel benchmark, shared by the Node entry and
 * the Chromium driver (which hands the same arguments to the page).
 */

import { GPU_WEIGHT_TYPES, quantDecoder } from '../../src/kernels/quant-decoders';
import { GgmlType } from '../../src/quant/formats';

/** The parts of the benchmark that can be run on their own. */
export const BENCH_PARTS = ['copy', 'matvec', 'ffn', 'router'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

export interface KernelBenchOptions {
  /** Shapes a quarter of the real ones (fast on software adapters). */
  small: boolean;
  /** Timed measurements per case; the median is reported. */
  reps: number;
  /** Untimed runs per case before calibrating and measuring. */
  warmup: number;
  /** Weight formats of the matvec and expert FFN cases. */
  formats: GgmlType[];
  /** Bytes of distinct weights each case cycles through, so repeated calls do not read from cache. */
  ringBytes: number;
  /** A measurement batches calls until it lasts about this long (at most maxBatch calls). */
  targetMeasurementMs: number;
  maxBatch: number;
  /** A case takes no further measurement past this many ms (software adapters take seconds per call). */
  caseBudgetMs: number;
  /** Time with the wall clock even where timestamp queries exist. */
  wallClock: boolean;
  parts: BenchPart[];
}

export const DEFAULT_FORMATS: readonly GgmlType[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_K,
  GgmlType.Q6_K,
  GgmlType.MXFP4,
];

const MIB = 1 << 20;

export const USAGE = `options:
  --small            shapes a quarter of the real ones (hidden 512, expert FFN 256)
  --reps N           timed measurements per case, median reported (default 5)
  --warmup N         untimed runs per case first (default 1)
  --formats a,b      weight formats (default ${DEFAULT_FORMATS.map((t) => quantDecoder(t).name).join(',')};
                     any of ${GPU_WEIGHT_TYPES.map((t) => quantDecoder(t).name).join(',')})
  --only a,b         parts to run: ${BENCH_PARTS.join(',')} (default all; copy is the roofline)
  --ring-mib N       distinct weight bytes each case cycles through (default 128, --small 32)
  --target-ms N      batch calls per measurement until it lasts about N ms (default 4)
  --max-batch N      most calls per measurement (default 256)
  --case-budget-s N  a case stops measuring (after at least one) once the next would end past N s (default 5)
  --wall-clock       time with the wall clock even where timestamp queries exist`;

export function parseBenchOptions(args: readonly string[]): KernelBenchOptions {
  const small = args.includes('--small');
  const options: KernelBenchOptions = {
    small,
    reps: 5,
    warmup: 1,
    formats: [...DEFAULT_FORMATS],
    ringBytes: (small ? 32 : 128) * MIB,
    targetMeasurementMs: 4,
    maxBatch: 256,
    caseBudgetMs: 5000,
    wallClock: false,
    parts: [...BENCH_PARTS],
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = (): string => {
      const next = args[++i];
      if (next === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return next;
    };
    switch (flag) {
      case '--small':
        break;
      case '--wall-clock':
        options.wallClock = true;
        break;
      case '--reps':
        options.reps = positiveInteger(flag, value());
        break;
      case '--warmup':
        options.warmup = positiveInteger(flag, value(), 0);
        break;
      case '--formats':
        options.formats = parseFormats(value());
        break;
      case '--only':
        options.parts = parseParts(value());
        break;
      case '--ring-mib':
        options.ringBytes = positiveInteger(flag, value()) * MIB;
        break;
      case '--target-ms':
        options.targetMeasurementMs = positiveNumber(flag, value());
        break;
      case '--max-batch':
        options.maxBatch = positiveInteger(flag, value());
        break;
      case '--case-budget-s':
        options.caseBudgetMs = positiveNumber(flag, value()) * 1000;
        break;
      default:
        throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  return options;
}

function positiveInteger(flag: string, text: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${flag} must be an integer >= ${min}, got ${text}`);
  return value;
}

function positiveNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!(value > 0)) throw new Error(`${flag} must be a number > 0, got ${text}`);
  return value;
}

/** Format names as the decoders spell them ('q4_k'), any case, comma-separated. */
export function parseFormats(text: string): GgmlType[] {
  const byName = new Map(GPU_WEIGHT_TYPES.map((t) => [quantDecoder(t).name, t]));
  const formats = text.split(',').map((name) => {
    const type = byName.get(name.trim().toLowerCase());
    if (type === undefined) throw new Error(`unknown format "${name}"; known: ${[...byName.keys()].join(', ')}`);
    return type;
  });
  return [...new Set(formats)];
}

function parseParts(text: string): BenchPart[] {
  const parts = text.split(',').map((name) => name.trim());
  for (const part of parts) {
    if (!(BENCH_PARTS as readonly string[]).includes(part)) throw new Error(`unknown part "${part}"; known: ${BENCH_PARTS.join(', ')}`);
  }
  return [...new Set(parts as BenchPart[])];
}
