/**
 * The files bench:peers runs every system on: generated models with the layer
 * shapes of OLMoE-1B-7B and Qwen3-30B-A3B (fewer layers, so that a run fits
 * this machine), written in F16 and quantized by llama.cpp's own
 * llama-quantize (tools/reference/bin) the way users' files are made, plus
 * the built-in default model as shipped.
 *
 * Files are cached under bench/.cache/peers (ignored by git), named by their
 * options and the tools' source, and written through a temporary name.
 */

import { createHash } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_FILE } from '../../src/default-model';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromPath } from '../../src/gguf/source-node';
import type { TinyArch } from '../../src/tiny/archs';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { cached, runLlamaTool, toolsId } from '../../test/support/real-files';
import type { TinyModelOptions } from '../../src/tiny/make-tiny';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PEERS_CACHE = join(ROOT, 'bench/.cache/peers');

export interface PeerShape {
  key: string;
  /** The model whose layer shapes these are. */
  name: string;
  arch: TinyArch;
  shape: Partial<TinyModelOptions>;
}

export const PEER_SHAPES: readonly PeerShape[] = [
  {
    key: 'olmoe', name: 'OLMoE-1B-7B', arch: 'olmoe',
    shape: { hidden: 2048, heads: 16, kvHeads: 16, headDim: 128, experts: 64, topK: 8, expertFF: 1024 },
  },
  {
    key: 'qwen3', name: 'Qwen3-30B-A3B', arch: 'qwen3moe',
    shape: { hidden: 2048, heads: 32, kvHeads: 4, headDim: 128, experts: 128, topK: 8, expertFF: 768 },
  },
];

/** llama-quantize's own type names, as the bench uses them. */
export type PeerQuant = 'Q4_K_M' | 'Q8_0' | 'MXFP4_MOE';

/** Which quantizations of which shapes: both in Q4_K_M and Q8_0, and OLMoE also in MXFP4_MOE. */
export const PEER_QUANTS: readonly { shape: string; quant: PeerQuant }[] = [
  { shape: 'olmoe', quant: 'Q4_K_M' },
  { shape: 'olmoe', quant: 'Q8_0' },
  { shape: 'olmoe', quant: 'MXFP4_MOE' },
  { shape: 'qwen3', quant: 'Q4_K_M' },
  { shape: 'qwen3', quant: 'Q8_0' },
];

export interface PeerFile {
  /** Short name used in tables and result keys, e.g. `olmoe-q4_k_m`. */
  key: string;
  /** What the file is, for people. */
  label: string;
  path: string;
  bytes: number;
  /** Bytes of the routed experts' tensors (`*_exps`): what an expert budget is a fraction of. */
  expertBytes: number;
  layers: number;
}

const sha = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex').slice(0, 16);

async function describe(key: string, label: string, path: string): Promise<PeerFile> {
  const source = await sourceFromPath(path);
  try {
    const file = await readGguf(source);
    const expertBytes = file.tensors.filter((t) => /_exps\.weight$/.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
    const arch = String(file.metadata.get('general.architecture')?.value);
    const layers = Number(file.metadata.get(`${arch}.block_count`)?.value);
    return { key, label, path, bytes: statSync(path).size, expertBytes, layers };
  } finally {
    await source.close();
  }
}

/**
 * Every file of the bench (generated and quantized on first use, then read
 * from the cache), in a fixed order: the quantized shapes, then the default model.
 */
export async function peerFiles(layers: number, only: readonly string[] | undefined, log: (line: string) => void): Promise<PeerFile[]> {
  const files: PeerFile[] = [];
  const tools = toolsId();
  for (const { shape: shapeKey, quant } of PEER_QUANTS) {
    const key = `${shapeKey}-${quant.toLowerCase()}`;
    if (only && !only.includes(key)) continue;
    const shape = PEER_SHAPES.find((s) => s.key === shapeKey)!;
    const options: TinyModelOptions = { arch: shape.arch, type: 'f16', seed: 11, layers, ...shape.shape };
    const id = sha(`${JSON.stringify(options)}|${tools}`);
    const base = join(PEERS_CACHE, `${shapeKey}-${layers}l-f16-${id}.gguf`);
    const out = join(PEERS_CACHE, `${key}-${layers}l-${id}.gguf`);
    if (!existsSync(out)) {
      cached(base, (partial) => {
        log(`generating ${shape.name}-shaped F16 model (${layers} layer${layers === 1 ? '' : 's'})`);
        writeFileSync(partial, makeTinyModel(options));
      });
      log(`llama-quantize ${quant} of ${shape.name}-shaped model`);
      cached(out, (partial) => runLlamaTool('llama-quantize', [base, partial, quant, '2']));
    }
    files.push(await describe(key, `${shape.name} shape, ${layers} layer${layers === 1 ? '' : 's'}, ${quant}`, out));
  }
  if (!only || only.includes('default')) files.push(await describe('default', 'default model (Q8_0, as shipped)', DEFAULT_MODEL_FILE));
  return files;
}
