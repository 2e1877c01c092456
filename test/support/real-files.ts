/**
 * Files as users get them: a generated F32 model quantized by llama.cpp's
 * own llama-quantize (tools/reference/bin, built by
 * scripts/prepare-reference.sh), with an importance matrix from
 * llama-imatrix for the i-quants. Shapes make llama.cpp's recipes real: 256-wide rows (K-quant and
 * i-quant super-blocks), 8 layers (so the per-layer mixes of Q4_K_M and the
 * like appear), 8 experts.
 *
 * Files are cached under test/.cache/real-files (ignored by git), named by
 * the hash of the F32 model's bytes and the tools' source, and written
 * through a temporary name, so parallel test files never see half a file.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_FILE } from '../../src/default-model';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import type { TinyArch } from '../../src/tiny/archs';
import type { TinyModelOptions } from '../../src/tiny/make-tiny';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'tools/reference/bin');
export const REAL_FILES_CACHE = join(ROOT, 'test/.cache/real-files');

/** Every file type llama-quantize offers that is a quantization (not COPY), by its own names. */
export const QUANTIZE_TYPES = [
  'Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K', 'Q8_0',
  'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1',
  'IQ1_S', 'IQ1_M', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ2_M', 'IQ3_XXS', 'IQ3_XS', 'IQ3_S', 'IQ3_M', 'IQ4_NL', 'IQ4_XS',
  'TQ1_0', 'TQ2_0', 'MXFP4_MOE', 'F16', 'BF16',
] as const;
export type QuantizeType = (typeof QUANTIZE_TYPES)[number];

/**
 * Types made with an importance matrix: the i-quants. llama-quantize refuses
 * IQ1_*, IQ2_* and IQ3_XXS/IQ3_XS without one, and published i-quant files
 * are made with one.
 */
export const NEEDS_IMATRIX: ReadonlySet<QuantizeType> = new Set(QUANTIZE_TYPES.filter((t) => t.startsWith('IQ')));

/** The mixed types: tensors of one role in different formats on different layers. */
export const MIXED_TYPES: readonly QuantizeType[] = ['Q2_K', 'Q3_K_M', 'Q4_K_M', 'Q5_K_M', 'IQ4_XS'];

/** A second text, teacher-forced where the first meets a router near tie too early. */
export const REAL_FILES_OTHER_TEXT =
  'A small boat drifted down to the sea with its sail folded, and the gulls followed it all the way past the harbour wall. ' +
  'The keeper of the lighthouse counted the ships that came home before the storm and wrote each name in his book.';

/** The text the importance matrix is computed on (and the tests' teacher-forced text). */
export const REAL_FILES_TEXT =
  'The river ran past the old mill, and the miller sang a song about the water and the wheel that turned all day long. ' +
  'In the evening the children came down to the bank to watch the fish jump in the golden light.';

/** The F32 model each architecture's files are quantized from. */
export function baseModelOptions(arch: TinyArch): TinyModelOptions {
  return { arch, type: 'f32', seed: 5, layers: 8, hidden: 256, experts: 8, topK: 2, expertFF: 256 };
}

const sha = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex').slice(0, 16);

/** The source id of the built llama.cpp tools (their output depends on it); throws when they are not built. */
export function toolsId(): string {
  const id = join(BIN, 'source-id');
  if (!existsSync(join(BIN, 'llama-quantize')) || !existsSync(id)) {
    throw new Error(`llama.cpp's tools are not built in ${BIN}: run bash scripts/prepare-reference.sh`);
  }
  return readFileSync(id, 'utf8').trim();
}

/** Makes the file at `path` once, atomically: `make` writes a temporary name in the same folder, then it is renamed. */
export function cached(path: string, make: (partial: string) => void): string {
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  // The temporary name keeps the extension: llama-imatrix picks its output format by it.
  const partial = path.replace(/(\.[a-z]+)$/, `.${process.pid}.partial$1`);
  make(partial);
  renameSync(partial, path);
  return path;
}

/** Runs one of llama.cpp's built tools; on failure the error carries the tail of its output. */
export function runLlamaTool(tool: string, args: string[]): void {
  try {
    execFileSync(join(BIN, tool), args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { stderr?: Buffer; stdout?: Buffer };
    const log = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.split('\n').slice(-15).join('\n');
    throw new Error(`${tool} ${args.join(' ')} failed:\n${log}`);
  }
}

const basePaths = new Map<TinyArch, string>();

/** The F32 base model of `arch`, on disk (generated once per process to find its name). */
export function baseModelFile(arch: TinyArch): string {
  let path = basePaths.get(arch);
  if (!path) {
    const bytes = makeTinyModel(baseModelOptions(arch));
    path = cached(join(REAL_FILES_CACHE, `${arch}-f32-${sha(bytes)}.gguf`), (partial) => writeFileSync(partial, bytes));
    basePaths.set(arch, path);
  }
  return path;
}

/** `arch`'s base model quantized by llama-quantize to `type` (with an importance matrix where it needs one). */
export function quantizedFile(arch: TinyArch, type: QuantizeType): string {
  const base = baseModelFile(arch);
  const key = sha(`${base}|${toolsId()}`);
  const out = join(REAL_FILES_CACHE, `${arch}-${type.toLowerCase()}-${key}.gguf`);
  return cached(out, (partial) => {
    const args = [base, partial, type, '2'];
    if (NEEDS_IMATRIX.has(type)) args.unshift('--imatrix', importanceMatrix(arch, base, key));
    runLlamaTool('llama-quantize', args);
  });
}

/**
 * The built-in default model (shipped in Q8_0, its only form) requantized by
 * llama-quantize with --allow-requantize, with an importance matrix.
 */
export function requantizedDefaultModel(type: QuantizeType): string {
  const base = DEFAULT_MODEL_FILE;
  const key = sha(`${sha(readFileSync(base))}|${toolsId()}`);
  const out = join(REAL_FILES_CACHE, `default-${type.toLowerCase()}-${key}.gguf`);
  return cached(out, (partial) => runLlamaTool('llama-quantize', ['--allow-requantize', '--imatrix', importanceMatrix('default', base, key), base, partial, type, '2']));
}

function importanceMatrix(arch: TinyArch | 'default', base: string, key: string): string {
  const text = join(REAL_FILES_CACHE, 'imatrix-text.txt');
  if (!existsSync(text)) cached(text, (partial) => writeFileSync(partial, REAL_FILES_TEXT.repeat(8)));
  const out = join(REAL_FILES_CACHE, `${arch}-imatrix-${key}.gguf`);
  return cached(out, (partial) => runLlamaTool('llama-imatrix', ['-m', base, '-f', text, '-o', partial, '-c', '64', '-t', '2', '--no-ppl']));
}
