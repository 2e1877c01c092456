/**
 * The greedy requests the pack tests make of the packed library, and what
 * the in-repo engine (src/api/node.ts, in this process, on Dawn) streams for
 * them: the packed library, wherever it runs, must stream the same pieces.
 * The public API returns text, not token ids; under greedy decoding equal
 * pieces (one per decoded token, in order) and an equal completion_tokens
 * count mean the same tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../../../src/api/node';
import type { ChatCompletionMessageParam, WebMoeEngine } from '../../../src/api/types';

export type GreedyRequest =
  | { prompt: string; max_tokens: number; temperature: 0 }
  | { messages: ChatCompletionMessageParam[]; max_tokens: number; temperature: 0 };

export interface Streamed {
  pieces: string[];
  completionTokens: number;
}

export const COMPLETION: GreedyRequest = { prompt: 'The river', max_tokens: 6, temperature: 0 };
export const CHAT: GreedyRequest = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 };

/**
 * JavaScript source of `streamGreedy(engine, request)`, resolving to a
 * Streamed: pages and scripts that use the packed library embed it, so they
 * collect pieces exactly as `streamGreedy` below does.
 */
export const STREAM_GREEDY_JS = `
async function streamGreedy(engine, request) {
  const chat = 'messages' in request;
  const stream = await (chat ? engine.chat.completions : engine.completions).create({ ...request, stream: true });
  const pieces = [];
  let completionTokens = -1;
  for await (const chunk of stream) {
    const piece = chat ? chunk.choices[0]?.delta.content : chunk.choices[0]?.text;
    if (piece) pieces.push(piece);
    if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
  }
  return { pieces, completionTokens };
}`;

async function streamGreedy(engine: WebMoeEngine, request: GreedyRequest): Promise<Streamed> {
  const pieces: string[] = [];
  let completionTokens = -1;
  const add = (piece: string | undefined) => void (piece && pieces.push(piece));
  if ('messages' in request) {
    for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) {
      add(chunk.choices[0]?.delta.content);
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
  } else {
    for await (const chunk of await engine.completions.create({ ...request, stream: true })) {
      add(chunk.choices[0]?.text);
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
  }
  return { pieces, completionTokens };
}

/** What the in-repo engine streams for `request` on the GGUF file at `modelPath`. */
export async function inRepoGreedy(modelPath: string, request: GreedyRequest): Promise<Streamed> {
  const storeDir = mkdtempSync(join(tmpdir(), 'webmoe-reference-'));
  const engine = await createEngine({ model: modelPath, storeDir, contextLength: 64 });
  try {
    return await streamGreedy(engine, request);
  } finally {
    await engine.unload();
    rmSync(storeDir, { recursive: true, force: true });
  }
}
