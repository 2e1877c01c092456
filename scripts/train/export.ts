/**
 * Writes the trained default model as GGUF files (qwen2moe layout) with the
 * project's GGUF writer and quantizers: F32, Q8_0 and Q4_0. Norms, biases and
 * routers stay F32 (as llama.cpp's quantizer keeps them); in the Q4_0 file the
 * output projection is Q8_0, as llama.cpp keeps that tensor at higher precision.
 *
 * usage: npx tsx scripts/train/export.ts [workDir] [--ship]
 * reads  workDir/weights.json, workDir/weights.bin (train.py), workDir/vocab.json (tokenize.ts)
 * writes workDir/default-moe-{f32,q8_0,q4_0}.gguf; with --ship, copies the Q8_0 file to models/default-moe-q8_0.gguf
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GgufKv } from '../../src/gguf/types';
import { kvF32, kvString, kvU32, writeGguf } from '../../src/gguf/writer';
import { GgmlType } from '../../src/quant/formats';
import { type QuantizableType, quantize } from '../../src/quant/quantize';
import { DEFAULT_MODEL_FILE } from '../../src/default-model';
import { readVocabFile, tokenizerMetadata } from './vocab';

interface WeightsFile {
  config: {
    vocab: number; layers: number; hidden: number; heads: number; kv_heads: number; experts: number;
    top_k: number; expert_ff: number; shared_ff: number; context: number; rope_theta: number; rms_eps: number;
  };
  training: Record<string, number>;
  tensors: { name: string; dims: number[]; offset: number }[];
}

const FORMATS = {
  f32: { type: GgmlType.F32, fileType: 0 },
  q8_0: { type: GgmlType.Q8_0, fileType: 7 },
  q4_0: { type: GgmlType.Q4_0, fileType: 2 },
} as const;
export type ExportFormat = keyof typeof FORMATS;

const ARCH = 'qwen2moe';

/** F32 for vectors and routers; the output projection never below Q8_0. */
function storageType(name: string, dims: number[], format: QuantizableType): QuantizableType {
  if (dims.length === 1 || name.endsWith('ffn_gate_inp.weight')) return GgmlType.F32;
  if (name === 'output.weight' && format === GgmlType.Q4_0) return GgmlType.Q8_0;
  return format;
}

export function modelMetadata(w: WeightsFile, format: ExportFormat): GgufKv[] {
  const c = w.config;
  const headDim = c.hidden / c.heads;
  const a = ARCH;
  return [
    kvString('general.architecture', a),
    kvString('general.name', `webmoe default ${c.layers}x${c.experts} MoE ${format}`),
    kvString('general.description',
      'A small MoE trained by webmoe on the Python 3.11 documentation sources (PSF License Version 2), ' +
      'a completion model: see scripts/train in the webmoe repository.'),
    kvU32('general.file_type', FORMATS[format].fileType),
    kvU32(`${a}.context_length`, c.context),
    kvU32(`${a}.embedding_length`, c.hidden),
    kvU32(`${a}.block_count`, c.layers),
    kvU32(`${a}.feed_forward_length`, c.expert_ff),
    kvU32(`${a}.expert_feed_forward_length`, c.expert_ff),
    kvU32(`${a}.expert_shared_feed_forward_length`, c.shared_ff),
    kvU32(`${a}.attention.head_count`, c.heads),
    kvU32(`${a}.attention.head_count_kv`, c.kv_heads),
    kvU32(`${a}.rope.dimension_count`, headDim),
    kvF32(`${a}.rope.freq_base`, c.rope_theta),
    kvF32(`${a}.attention.layer_norm_rms_epsilon`, c.rms_eps),
    kvU32(`${a}.expert_count`, c.experts),
    kvU32(`${a}.expert_used_count`, c.top_k),
  ];
}

export function buildGguf(w: WeightsFile, data: Uint8Array, vocabPath: string, format: ExportFormat): Uint8Array {
  const tensors = w.tensors.map(({ name, dims, offset }) => {
    const n = dims.reduce((p, d) => p * d, 1);
    const values = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + 4 * n));
    const type = storageType(name, dims, FORMATS[format].type);
    return { name, type, dims, data: quantize(type, values) };
  });
  return writeGguf({ metadata: [...modelMetadata(w, format), ...tokenizerMetadata(readVocabFile(vocabPath))], tensors });
}

const args = process.argv.slice(2);
const workDir = args.find((a) => !a.startsWith('--')) ?? join(import.meta.dirname, 'work');
const weights = JSON.parse(readFileSync(join(workDir, 'weights.json'), 'utf8')) as WeightsFile;
const data = readFileSync(join(workDir, 'weights.bin'));
for (const format of Object.keys(FORMATS) as ExportFormat[]) {
  const bytes = buildGguf(weights, data, join(workDir, 'vocab.json'), format);
  const path = join(workDir, `default-moe-${format}.gguf`);
  writeFileSync(path, bytes);
  console.log(`${path}: ${(bytes.length / 2 ** 20).toFixed(2)} MiB`);
}
if (args.includes('--ship')) {
  mkdirSync(dirname(DEFAULT_MODEL_FILE), { recursive: true });
  copyFileSync(join(workDir, 'default-moe-q8_0.gguf'), DEFAULT_MODEL_FILE);
  console.log(`shipped ${DEFAULT_MODEL_FILE}`);
}
