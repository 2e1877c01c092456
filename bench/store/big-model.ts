/**
 * Writes a large GGUF file of random bytes with the tensor layout of an
 * OLMoE-style MoE, streamed to disk (never whole in memory), for the store
 * benchmark. Only the header is built in memory; the data section is random
 * bytes, which is as good as real weights for storing and reading them.
 */

import { randomFillSync } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { GgmlType, tensorBytes } from '../../src/quant/formats';

export interface BigModelShape {
  layers: number;
  experts: number;
  hidden: number;
  expertFF: number;
  vocab: number;
  /** Type of the expert and attention matrices. */
  type: GgmlType;
}

interface TensorDef {
  name: string;
  dims: number[];
  type: GgmlType;
  nBytes: number;
}

const ALIGNMENT = 32;
const alignUp = (n: number) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

export function bigModelTensors(s: BigModelShape): TensorDef[] {
  const defs: Array<[string, number[], GgmlType]> = [['token_embd.weight', [s.hidden, s.vocab], s.type]];
  for (let l = 0; l < s.layers; l++) {
    const b = `blk.${l}.`;
    defs.push(
      [b + 'attn_norm.weight', [s.hidden], GgmlType.F32],
      [b + 'attn_q.weight', [s.hidden, s.hidden], s.type],
      [b + 'attn_k.weight', [s.hidden, s.hidden], s.type],
      [b + 'attn_v.weight', [s.hidden, s.hidden], s.type],
      [b + 'attn_output.weight', [s.hidden, s.hidden], s.type],
      [b + 'ffn_norm.weight', [s.hidden], GgmlType.F32],
      [b + 'ffn_gate_inp.weight', [s.hidden, s.experts], GgmlType.F32],
      [b + 'ffn_gate_exps.weight', [s.hidden, s.expertFF, s.experts], s.type],
      [b + 'ffn_up_exps.weight', [s.hidden, s.expertFF, s.experts], s.type],
      [b + 'ffn_down_exps.weight', [s.expertFF, s.hidden, s.experts], s.type],
    );
  }
  defs.push(['output_norm.weight', [s.hidden], GgmlType.F32]);
  return defs.map(([name, dims, type]) => ({ name, dims, type, nBytes: tensorBytes(type, dims.reduce((a, b) => a * b, 1))! }));
}

/** Bytes of one expert record: its gate, up and down slices. */
export const expertRecordBytes = (s: BigModelShape): number => 3 * tensorBytes(s.type, s.hidden * s.expertFF)!;

class HeaderBytes {
  private chunks: number[] = [];
  get length(): number {
    return this.chunks.length;
  }
  u32(v: number): this {
    this.chunks.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  u64(v: number): this {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  str(s: string): this {
    const utf8 = new TextEncoder().encode(s);
    this.u64(utf8.length);
    this.chunks.push(...utf8);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

const GGUF_UINT32 = 4;
const GGUF_STRING = 8;

function header(s: BigModelShape, tensors: readonly TensorDef[]): { bytes: Uint8Array; offsets: number[] } {
  const kvs: Array<[string, string | number]> = [
    ['general.architecture', 'olmoe'],
    ['general.name', 'webmoe store benchmark (random weights)'],
    ['olmoe.block_count', s.layers],
    ['olmoe.embedding_length', s.hidden],
    ['olmoe.feed_forward_length', s.expertFF],
    ['olmoe.expert_count', s.experts],
    ['olmoe.expert_used_count', 8],
  ];
  const h = new HeaderBytes().u32(0x46554747).u32(3).u64(tensors.length).u64(kvs.length);
  for (const [key, value] of kvs) {
    h.str(key);
    if (typeof value === 'string') h.u32(GGUF_STRING).str(value);
    else h.u32(GGUF_UINT32).u32(value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name).u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type).u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + t.nBytes);
  }
  const raw = h.bytes();
  const padded = new Uint8Array(alignUp(raw.length));
  padded.set(raw);
  return { bytes: padded, offsets };
}

/** Writes the model to `path` unless a file of the right size is already there; returns its size. */
export async function writeBigModel(path: string, shape: BigModelShape): Promise<number> {
  const tensors = bigModelTensors(shape);
  const { bytes: head, offsets } = header(shape, tensors);
  const last = tensors.length - 1;
  const fileBytes = head.byteLength + offsets[last] + tensors[last].nBytes;
  const existing = await stat(path).catch(() => undefined);
  if (existing?.size === fileBytes) return fileBytes;

  const file = await open(path, 'w');
  try {
    await file.write(head);
    const block = new Uint8Array(16 * 1024 * 1024);
    for (let written = head.byteLength; written < fileBytes; written += block.byteLength) {
      const n = Math.min(block.byteLength, fileBytes - written);
      randomFillSync(block, 0, n);
      await file.write(block.subarray(0, n));
    }
  } finally {
    await file.close();
  }
  return fileBytes;
}
