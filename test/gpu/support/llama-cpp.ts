/**
 * llama.cpp's results on a generated model, for GPU tests in both projects.
 *
 * llama.cpp (node-llama-cpp) runs only in Node. The test names the model by
 * its makeTinyModel options; the Node side (test/setup/llama-cpp-reference.ts)
 * generates the same bytes from the same seed, runs llama.cpp and returns its
 * tokens and logits, with the SHA-256 of the model it ran so the test can
 * check that both sides built the same file. In gpu-node the Node side is
 * called directly (installed on globalThis by test/setup/gpu-node-llama.ts);
 * in gpu-browser through the `llamaCppReference` browser command that
 * vitest.config.ts registers, which runs it in the Vitest process. Logits
 * travel as base64 f32 bytes.
 */

import type { TinyModelOptions } from '../../../src/tiny/make-tiny';

export interface LlamaCppRequest {
  model: TinyModelOptions;
  /** Text llama.cpp tokenizes (no special tokens); its first `tokens` ids are teacher-forced. */
  text: string;
  tokens: number;
  /** Greedy generation of `count` tokens after the first `prompt` ids of the text. */
  greedy?: { prompt: number; count: number };
  /** llama.cpp context size (default 128). */
  contextSize?: number;
}

/** What crosses from Node to the test: plain JSON. */
export interface LlamaCppWireResult {
  modelSha256: string;
  vocab: number;
  tokens: number[];
  /** tokens.length rows of `vocab` f32, base64. */
  logits: string;
  greedy?: { prompt: number[]; ids: number[]; logits: string };
  /** Wall-clock seconds llama.cpp took (load, evaluation, generation). */
  seconds: number;
}

export interface LlamaCppResult {
  modelSha256: string;
  tokens: number[];
  /** Teacher-forced logits after each token. */
  logits: Float32Array[];
  greedy?: { prompt: number[]; ids: number[]; logits: Float32Array[] };
  seconds: number;
}

export type LlamaCppReferenceFn = (request: LlamaCppRequest) => Promise<LlamaCppWireResult>;

declare global {
  /** Installed in gpu-node workers by test/setup/gpu-node-llama.ts. */
  var webmoeLlamaCppReference: LlamaCppReferenceFn | undefined;
}

declare module 'vitest/browser' {
  interface BrowserCommands {
    llamaCppReference: LlamaCppReferenceFn;
  }
}

export async function llamaCppReference(request: LlamaCppRequest): Promise<LlamaCppResult> {
  let wire: LlamaCppWireResult;
  if (typeof window !== 'undefined') {
    const { commands } = await import('vitest/browser');
    wire = await commands.llamaCppReference(request);
  } else {
    const run = globalThis.webmoeLlamaCppReference;
    if (!run) throw new Error('llama.cpp reference not installed (test/setup/gpu-node-llama.ts must be a setup file of this project)');
    wire = await run(request);
  }
  return {
    modelSha256: wire.modelSha256,
    tokens: wire.tokens,
    logits: rowsFromBase64(wire.logits, wire.vocab),
    greedy: wire.greedy && { prompt: wire.greedy.prompt, ids: wire.greedy.ids, logits: rowsFromBase64(wire.greedy.logits, wire.vocab) },
    seconds: wire.seconds,
  };
}

export function rowsToBase64(rows: readonly Float32Array[], vocab: number): string {
  const all = new Float32Array(rows.length * vocab);
  rows.forEach((row, i) => {
    if (row.length !== vocab) throw new RangeError(`row ${i} has ${row.length} logits, expected ${vocab}`);
    all.set(row, i * vocab);
  });
  const bytes = new Uint8Array(all.buffer);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function rowsFromBase64(base64: string, vocab: number): Float32Array[] {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const all = new Float32Array(bytes.buffer);
  return Array.from({ length: all.length / vocab }, (_, i) => all.subarray(i * vocab, (i + 1) * vocab));
}

/** Hex SHA-256 of a model's bytes, the same in Node and in the browser. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
