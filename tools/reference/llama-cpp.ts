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
  return {
    async logits(tokens) {
      const sequence = context.getSequence();
      try {
        const out = await sequence.controlledEvaluate(
          tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never,
        );
        return out.map((o, i) => {
          const map = o?.next?.logits;
          if (!map) throw new Error(`llama.cpp returned no logits at position ${i}`);
          const row = new Float32Array(map.size).fill(Number.NaN);
          for (const [token, logit] of map) row[Number(token)] = logit;
          return row;
        });
      } finally {
        sequence.dispose();
      }
    },
    tokenize(text, specialTokens = false) {
      return model.tokenize(text, specialTokens).map(Number);
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
