/** `webmoe logits`: teacher-force token ids and write every position's logits as raw f32. */
import { writeFile } from 'node:fs/promises';
import { ContextOverflowError } from '../engine/errors';
import { MoeTransformer } from '../models/moe-transformer';
import { modelConfigFromGguf } from '../models/registry';
import { CliError, intOption, parseCommand } from './args';
import { MODEL_HELP, nodeDevice, openModelArg, parseTokenList, progress } from './model';

const HELP = `usage: webmoe logits [--model <file.gguf>] --tokens 1,2,3 --out <file>

${MODEL_HELP}
  --tokens     comma-separated token ids, run at positions 0, 1, 2, ...
  --out        output file: little-endian f32, row-major [nTokens][nVocab], no header
  --batch N    tokens per forward submission (default 32; at most 32, the logits rows the GPU keeps)`;

export async function logitsCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, { model: { type: 'string' }, store: { type: 'string' }, tokens: { type: 'string' }, out: { type: 'string' }, batch: { type: 'string' } }, HELP);
  if (!parsed) return;
  const v = parsed.values as Record<string, string | undefined>;
  if (parsed.positionals.length > 0) throw new CliError(`unexpected argument '${parsed.positionals[0]}'\n\n${HELP}`);
  const tokens = parseTokenList(v.tokens, 'tokens');
  if (!v.out) throw new CliError(`--out is required\n\n${HELP}`);
  const batch = intOption(v.batch, 'batch');
  if (batch === 0) throw new CliError('--batch must be at least 1');

  const opened = await openModelArg(v.model, v.store);
  try {
    const config = modelConfigFromGguf(opened.file);
    const outside = tokens.find((id) => id >= config.vocabSize);
    if (outside !== undefined) throw new CliError(`--tokens: ${outside} is outside the vocabulary (0..${config.vocabSize - 1})`);
    if (tokens.length > config.contextLength) throw new ContextOverflowError(tokens.length, 0, config.contextLength);
    const gpu = await nodeDevice();
    try {
      progress(`loading ${opened.name}`);
      const model = await MoeTransformer.load(gpu.device, opened.file, opened.source, { maxContext: tokens.length, maxBatchTokens: batch });
      try {
        const { logits } = await model.forward(tokens, 0, 'all-logits');
        await writeFile(v.out, f32LittleEndian(logits!, config.vocabSize));
        progress(`wrote ${tokens.length} x ${config.vocabSize} logits to ${v.out}`);
      } finally {
        model.destroy();
      }
    } finally {
      gpu.device.destroy();
    }
  } finally {
    await opened.close();
  }
}

/** Rows of f32 as little-endian bytes, one after another. */
export function f32LittleEndian(rows: readonly Float32Array[], width: number): Uint8Array {
  const out = new Uint8Array(rows.length * width * 4);
  const view = new DataView(out.buffer);
  rows.forEach((row, r) => {
    for (let i = 0; i < width; i++) view.setFloat32((r * width + i) * 4, row[i], true);
  });
  return out;
}
