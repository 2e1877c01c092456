/**
 * llama.cpp, through node-llama-cpp's prebuilt CPU build, as the independent
 * reference for tests: load a GGUF file, teacher-force tokens, read raw logits.
 *
 * Settings chosen for exactness and speed on a small CPU: one thread (the
 * default oversubscribes small machines and is ~700x slower on tiny models),
 * F32 KV cache, flash attention off, no GPU, never build or download.
 */
import { getLlama, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';

export interface ReferenceModel {
  /** Logits after each of `tokens` (teacher forcing), one Float32Array of nVocab per position. */
  logits(tokens: readonly number[]): Promise<Float32Array[]>;
  /**
   * Greedy generation by llama.cpp's own sampler (temperature 0): `prompt`
   * is evaluated, then `count` tokens are generated one at a time, each fed
   * back. Returns the ids and, for each, the raw logits it was chosen from.
   */
  greedy(prompt: readonly number[], count: number): Promise<{ ids: number[]; logits: Float32Array[] }>;
  tokenize(text: string, specialTokens?: boolean): number[];
  dispose(): Promise<void>;
}

let llamaPromise: Promise<Llama> | undefined;

function llama(): Promise<Llama> {
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
  llamaPromise ??= getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: 1, logLevel: 'error' as never, progressLogs: false });
  return llamaPromise;
}

export async function loadReference(modelPath: string, contextSize = 256): Promise<ReferenceModel> {
  const model: LlamaModel = await (await llama()).loadModel({ modelPath, gpuLayers: 0 });
  const context: LlamaContext = await model.createContext({
    contextSize,
    batchSize: contextSize,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  // One sequence, its history cleared before each use (a disposed sequence is not free again at once).
  const sequence = context.getSequence();
  return {
    async logits(tokens) {
      await sequence.clearHistory();
      const out = await sequence.controlledEvaluate(
        tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never,
      );
      return out.map((o, i) => {
        const map = o?.next?.logits;
        if (!map) throw new Error(`llama.cpp returned no logits at position ${i}`);
        return logitsRow(map);
      });
    },
    async greedy(prompt, count) {
      if (prompt.length === 0) throw new RangeError('greedy generation needs a prompt of at least one token');
      await sequence.clearHistory();
      const next = { generateNext: { token: true, logits: true, options: { temperature: 0 } } };
      const ids: number[] = [];
      const logits: Float32Array[] = [];
      let input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, next] : t));
      while (ids.length < count) {
        const out = await sequence.controlledEvaluate(input as never);
        const result = out[input.length - 1]?.next;
        if (result?.token == null || !result.logits) throw new Error(`llama.cpp generated no token at step ${ids.length}`);
        ids.push(Number(result.token));
        logits.push(logitsRow(result.logits));
        input = [[Number(result.token), next]];
      }
      return { ids, logits };
    },
    tokenize(text, specialTokens = false) {
      return model.tokenize(text, specialTokens).map(Number);
    },
    async dispose() {
      sequence.dispose();
      await context.dispose();
      await model.dispose();
    },
  };
}

/** node-llama-cpp's token → logit map as a dense row (NaN where a token is missing). */
function logitsRow(map: ReadonlyMap<unknown, number>): Float32Array {
  const row = new Float32Array(map.size).fill(Number.NaN);
  for (const [token, logit] of map) row[Number(token)] = logit;
  return row;
}
