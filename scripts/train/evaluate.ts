/**
 * Checks the exported default model in both runtimes, on held-out text:
 * perplexity by webmoe's CPU reference forward pass (src/ref/forward.ts) and
 * by llama.cpp (node-llama-cpp), their logit agreement, and greedy samples
 * from both. Every window is evaluated from an empty cache.
 *
 * usage: npx tsx scripts/train/evaluate.ts [workDir] [--windows N] [--tokens T] [--formats f32,q8_0,q4_0] [--samples N] [--out FILE]
 * reads  workDir/default-moe-<format>.gguf, workDir/heldout.u16
 * writes --out (JSON) when given; prints a table
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ActivationMode, loadReferenceModel, type ReferenceModel } from '../../src/ref/forward';
import { argmax, compareLogits, nextTokenNll } from '../../src/ref/forward-compare';
import { loadReference } from '../../tools/reference/llama-cpp';
import { heldoutWindows } from './heldout';
import { readVocabFile, tokenizerOf } from './vocab';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const workDir = args[0] && !args[0].startsWith('--') ? args[0] : join(import.meta.dirname, 'work');
const windowCount = Number(option('windows', '8'));
const windowTokens = Number(option('tokens', '256'));
const formats = option('formats', 'f32,q8_0,q4_0').split(',');
const sampleTokens = Number(option('samples', '40'));
const outPath = option('out', '');

export const PROMPTS = ['The list data type has some more methods.', 'To read a file, use', 'def fibonacci(n):\n    '];

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

async function greedyOurs(model: ReferenceModel, prompt: number[], count: number, activations: ActivationMode): Promise<number[]> {
  const ids = [...prompt];
  for (let i = 0; i < count; i++) {
    const logits = model.logits(ids, { activations });
    ids.push(argmax(logits[logits.length - 1]));
  }
  return ids.slice(prompt.length);
}

const tokenizer = await tokenizerOf(readVocabFile(join(workDir, 'vocab.json')));
const windows = heldoutWindows(join(workDir, 'heldout.u16'), windowCount, windowTokens);
const report: Record<string, unknown>[] = [];
for (const format of formats) {
  const path = join(workDir, `default-moe-${format}.gguf`);
  const bytes = new Uint8Array(readFileSync(path));
  const ours = await loadReferenceModel(bytes);
  // Room beyond the window: a full context makes node-llama-cpp shift it before the last token.
  const llama = await loadReference(path, 2 * windowTokens);
  try {
    const exactNll: number[] = [];
    const emulatedNll: number[] = [];
    const llamaNll: number[] = [];
    let maxRel = 0;
    let top1 = 0;
    let positions = 0;
    const t0 = Date.now();
    for (const tokens of windows) {
      const exact = ours.logits(tokens);
      const theirs = await llama.logits(tokens);
      exactNll.push(...nextTokenNll(exact, tokens));
      llamaNll.push(...nextTokenNll(theirs, tokens));
      // Quantized weights: llama.cpp rounds each product's input; emulate it for the agreement figure.
      const emulated = format === 'f32' ? exact : ours.logits(tokens, { activations: 'llama.cpp' });
      if (format !== 'f32') emulatedNll.push(...nextTokenNll(emulated, tokens));
      const agreement = compareLogits(emulated, theirs);
      maxRel = Math.max(maxRel, agreement.maxRelativeDiff);
      top1 += agreement.top1Agreement * tokens.length;
      positions += tokens.length;
    }
    const ppl = (xs: number[]): number => Math.exp(mean(xs));
    const row: Record<string, unknown> = {
      format,
      bytes: bytes.length,
      tokens: exactNll.length,
      pplOurs: ppl(exactNll),
      pplOursLlamaRounding: format === 'f32' ? ppl(exactNll) : ppl(emulatedNll),
      pplLlama: ppl(llamaNll),
      gap: ppl(exactNll) / ppl(llamaNll) - 1,
      maxRelativeLogitDiff: maxRel,
      top1Agreement: top1 / positions,
      seconds: (Date.now() - t0) / 1000,
    };
    if (sampleTokens > 0) {
      const samples = [];
      for (const prompt of PROMPTS) {
        const ids = llama.tokenize(prompt);
        const a = await greedyOurs(ours, ids, sampleTokens, format === 'f32' ? 'f32' : 'llama.cpp');
        const b = (await llama.greedy(ids, sampleTokens)).ids;
        const same = a.findIndex((id, i) => id !== b[i]);
        samples.push({ prompt, ours: tokenizer.decode(a), llama: tokenizer.decode(b), identicalTokens: same < 0 ? a.length : same });
      }
      row.samples = samples;
    }
    report.push(row);
    console.log(JSON.stringify(row, null, 1));
  } finally {
    await llama.dispose();
  }
}
if (outPath) writeFileSync(outPath, JSON.stringify({ windows: windowCount, windowTokens, results: report }, null, 1) + '\n');

