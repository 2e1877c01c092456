/**
 * Node side of test/gpu/support/llama-cpp.ts: generates the requested model
 * from its seed, runs llama.cpp on it (tools/reference) and returns the
 * teacher-forced logits and greedy generation as plain JSON.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { loadReference } from '../../tools/reference/llama-cpp';
import { rowsToBase64, sha256Hex } from '../gpu/support/llama-cpp';
import type { LlamaCppRequest, LlamaCppWireResult } from '../gpu/support/llama-cpp';

export async function computeLlamaCppReference(request: LlamaCppRequest): Promise<LlamaCppWireResult> {
  const started = performance.now();
  const bytes = makeTinyModel(request.model);
  const dir = mkdtempSync(join(tmpdir(), 'webmoe-llama-ref-'));
  try {
    const path = join(dir, 'model.gguf');
    writeFileSync(path, bytes);
    const llama = await loadReference(path, request.contextSize ?? 128);
    try {
      const tokens = llama.tokenize(request.text).slice(0, request.tokens);
      if (tokens.length < request.tokens) throw new RangeError(`the text has only ${tokens.length} tokens, ${request.tokens} asked`);
      const logits = await llama.logits(tokens);
      const vocab = logits[0].length;
      let greedy: LlamaCppWireResult['greedy'];
      if (request.greedy) {
        const prompt = tokens.slice(0, request.greedy.prompt);
        const run = await llama.greedy(prompt, request.greedy.count);
        greedy = { prompt, ids: run.ids, logits: rowsToBase64(run.logits, vocab) };
      }
      return {
        modelSha256: await sha256Hex(bytes),
        vocab,
        tokens,
        logits: rowsToBase64(logits, vocab),
        greedy,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      await llama.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
