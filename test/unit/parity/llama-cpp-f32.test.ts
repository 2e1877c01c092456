/**
 * The CPU reference forward pass agrees with llama.cpp (CPU, F32 KV cache) on
 * F32 models of every supported architecture: teacher-forced logits of a
 * 64-token sentence, position by position.
 *
 * Metric: max_i |ours_i - llama_i| / (max - min of llama's logits), per
 * position. Both sides compute in f32 from the same f32 weights and differ
 * only in summation order and the rounding of intermediate values, so the
 * bound is tight. Measured (seed 3, 64 tokens): llama 2.1e-7, qwen2moe
 * 2.5e-7, qwen3moe 2.4e-7 (first 45 positions), olmoe 2.7e-7, granitemoe
 * 1.1e-7 (with its four scales; 1/sqrt(headDim) in place of its attention
 * scale gives 9.9e-4), dense llama 1.5e-7; top-1 agreement 100% everywhere.
 *
 * Near ties: where a token's router logits for the k-th and (k+1)-th experts
 * are within 1e-4 (relative to its largest |logit|), llama.cpp may pick the
 * other expert, and from then on its KV cache differs from ours. Such
 * positions are found in our route trace and comparison stops at the first
 * one (qwen3moe, seed 3: a relative margin of 5.6e-6 at position 45, so
 * positions 0..44 are compared).
 *
 * gpt-oss: 4.8e-7 over 64 positions, top-1 100%. Its sliding window (16 in
 * generated models) and its sink logits are both exercised: leaving either
 * out of the reference moves the logits by 0.3 to 0.8 of their spread.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { kvU32, writeGguf } from '../../../src/gguf/writer';
import type { GgufTensorSpec } from '../../../src/gguf/writer';
import { GgmlType } from '../../../src/quant/formats';
import { mulberry32, randomBlocks } from '../../../src/quant/random';
import { firstNearTie, loadReferenceModel } from '../../../src/ref/forward';
import { compareLogits } from '../../../src/ref/forward-compare';
import { LLAMA_CPP_TINY_MODELS, tinyOptions } from '../../support/tiny-models';
import { makeTinyModel } from '../../../src/tiny/make-tiny';
import { loadReference } from '../../../tools/reference/llama-cpp';

const SENTENCE =
  'The river ran past the old mill, and the miller sang a song about the water and the wheel that turned all day long. ' +
  'In the evening the children came down to the bank to watch the fish jump in the golden light.';
const TOKENS = 64;
const RELATIVE_DIFF_BOUND = 1e-5;
/** Router near-tie threshold, relative to the token's largest |router logit|. */
const NEAR_TIE = 1e-4;
/** Comparing fewer positions than this would make a pass meaningless. */
const MIN_COMPARED = 32;
const TIMEOUT_MS = 30_000;

const dir = mkdtempSync(join(tmpdir(), 'webmoe-parity-f32-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function checkParity(name: string, bytes: Uint8Array): Promise<void> {
  const path = join(dir, `${name}.gguf`);
  writeFileSync(path, bytes);
  const llama = await loadReference(path, 128);
  try {
    const tokens = llama.tokenize(SENTENCE).slice(0, TOKENS);
    expect(tokens.length).toBe(TOKENS);
    const theirs = await llama.logits(tokens);
    const ours = (await loadReferenceModel(bytes)).evaluate(tokens);

    const compared = firstNearTie(ours.routes, NEAR_TIE) ?? TOKENS;
    expect(compared).toBeGreaterThanOrEqual(MIN_COMPARED);
    const agreement = compareLogits(ours.logits, theirs, compared);
    console.log(
      `${name}: ${compared}/${TOKENS} positions before any near tie, ` +
        `max relative diff ${agreement.maxRelativeDiff.toExponential(2)}, top-1 ${(agreement.top1Agreement * 100).toFixed(0)}%`,
    );
    expect(agreement.maxRelativeDiff).toBeLessThan(RELATIVE_DIFF_BOUND);
    expect(agreement.top1Agreement).toBe(1);
  } finally {
    await llama.dispose();
  }
}

describe('CPU reference forward pass against llama.cpp, F32 weights', () => {
  for (const kind of LLAMA_CPP_TINY_MODELS) {
    it(`${kind.name}: logits agree to ${RELATIVE_DIFF_BOUND} of their spread, same top-1 everywhere`, { timeout: TIMEOUT_MS }, async () => {
      await checkParity(`${kind.name}-f32`, makeTinyModel({ ...tinyOptions(kind, 'f32'), seed: 3 }));
    });
  }

  it('llama without experts (dense FFN in every layer): logits agree the same way', { timeout: TIMEOUT_MS }, async () => {
    await checkParity('llama-dense-f32', await denseLlama());
  });
});

/** The tiny llama with each layer's experts and router replaced by one dense SwiGLU FFN, and expert_count 0. */
async function denseLlama(): Promise<Uint8Array> {
  const ff = 96;
  const moe = makeTinyModel({ arch: 'llama', type: 'f32', seed: 5 });
  const file = await readGguf(sourceFromBytes(moe));
  const hidden = Number(file.metadata.get('llama.embedding_length')?.value);
  const rng = mulberry32(11);
  const tensors: GgufTensorSpec[] = [];
  for (const t of file.tensors) {
    const layer = /^blk\.(\d+)\.ffn_gate_inp\.weight$/.exec(t.name);
    if (layer) {
      const b = `blk.${layer[1]}.`;
      const random = (n: number): Uint8Array => randomBlocks(GgmlType.F32, n, rng);
      tensors.push(
        { name: b + 'ffn_gate.weight', type: GgmlType.F32, dims: [hidden, ff], data: random(hidden * ff) },
        { name: b + 'ffn_up.weight', type: GgmlType.F32, dims: [hidden, ff], data: random(hidden * ff) },
        { name: b + 'ffn_down.weight', type: GgmlType.F32, dims: [ff, hidden], data: random(hidden * ff) },
      );
    }
    if (t.name.includes('_exps.') || t.name.includes('ffn_gate_inp')) continue;
    const start = file.dataOffset + t.offset;
    tensors.push({ name: t.name, type: t.type, dims: [...t.dims], data: moe.subarray(start, start + t.nBytes) });
  }
  const metadata = [...file.metadata.values()].filter((kv) => !kv.key.startsWith('llama.expert_') && kv.key !== 'llama.feed_forward_length');
  metadata.push(kvU32('llama.feed_forward_length', ff));
  return writeGguf({ version: 3, metadata, tensors });
}
