/**
 * The weights of the CPU reference forward pass: every tensor named in the
 * config's tensor table, dequantized to f32 with src/quant. Matrices keep the
 * GGUF layout (ggml dims [cols, rows]: each output row contiguous) and the
 * type they were stored in; a 3-D expert tensor [cols, rows, experts] is
 * `experts` such matrices back to back. Meant for small models: everything is
 * held in f32 at once.
 */

import type { GgufFile } from '../gguf/types';
import type { ModelConfig } from '../models/config';
import { dequantize } from '../quant/dequant';
import { ModelConfigError } from '../models/config';
import type { GgmlType } from '../quant/formats';

/** A weight matrix, dequantized, with the GGML type it is stored in. */
export interface Matrix {
  data: Float32Array;
  type: GgmlType;
}

export interface MoeWeights {
  kind: 'moe';
  router: Matrix; // (nExpert, hidden)
  routerBias?: Float32Array; // (nExpert)
  gateExps: Matrix; // (nExpert, expertFF, hidden)
  upExps: Matrix; // (nExpert, expertFF, hidden)
  downExps: Matrix; // (nExpert, hidden, expertFF)
  expertBiases?: {
    gate: Float32Array; // (nExpert, expertFF)
    up: Float32Array; // (nExpert, expertFF)
    down: Float32Array; // (nExpert, hidden)
  };
  shared?: {
    gateInp?: Float32Array; // (hidden): the sigmoid gate's weights, when the shared expert is gated
    gate: Matrix; // (sharedFF, hidden)
    up: Matrix; // (sharedFF, hidden)
    down: Matrix; // (hidden, sharedFF)
  };
}

export interface DenseWeights {
  kind: 'dense';
  gate: Matrix; // (denseFF, hidden)
  up: Matrix; // (denseFF, hidden)
  down: Matrix; // (hidden, denseFF)
}

export interface LayerWeights {
  attnNorm: Float32Array; // (hidden)
  wq: Matrix; // (nHead * headDim, hidden)
  wk: Matrix; // (nHeadKv * headDim, hidden)
  wv: Matrix; // (nHeadKv * headDim, hidden)
  bq?: Float32Array; // (nHead * headDim)
  bk?: Float32Array; // (nHeadKv * headDim)
  bv?: Float32Array; // (nHeadKv * headDim)
  qNorm?: Float32Array; // (headDim) per-head, or (nHead * headDim) whole
  kNorm?: Float32Array; // (headDim) per-head, or (nHeadKv * headDim) whole
  wo: Matrix; // (hidden, nHead * headDim)
  bo?: Float32Array; // (hidden)
  sinks?: Float32Array; // (nHead)
  ffnNorm: Float32Array; // (hidden)
  ffn: MoeWeights | DenseWeights;
}

export interface ModelWeights {
  tokenEmbd: Float32Array; // (vocab, hidden)
  outputNorm: Float32Array; // (hidden)
  output: Matrix; // (vocab, hidden), the same data as tokenEmbd when tied
  ropeFreqs?: Float32Array; // (headDim / 2)
  layers: LayerWeights[];
}

/** Dequantizes every tensor of the table from the file's bytes (the whole GGUF file). */
export function loadWeights(file: GgufFile, bytes: Uint8Array, config: ModelConfig): ModelWeights {
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  const cache = new Map<string, Float32Array>();
  const get = (name: string): Float32Array => {
    let data = cache.get(name);
    if (!data) {
      data = dequantizeTensor(file, bytes, name);
      cache.set(name, data);
    }
    return data;
  };
  const opt = (name: string | undefined): Float32Array | undefined => (name === undefined ? undefined : get(name));
  const matrix = (name: string): Matrix => ({ data: get(name), type: infos.get(name)?.type as GgmlType });
  const t = config.tensors;
  return {
    tokenEmbd: get(t.tokenEmbd),
    outputNorm: get(t.outputNorm),
    output: matrix(t.output),
    ropeFreqs: opt(t.ropeFreqs),
    layers: t.layers.map((l) => ({
      attnNorm: get(l.attnNorm),
      wq: matrix(l.q),
      wk: matrix(l.k),
      wv: matrix(l.v),
      bq: opt(l.qBias),
      bk: opt(l.kBias),
      bv: opt(l.vBias),
      qNorm: opt(l.qNorm),
      kNorm: opt(l.kNorm),
      wo: matrix(l.attnOut),
      bo: opt(l.attnOutBias),
      sinks: opt(l.attnSinks),
      ffnNorm: get(l.ffnNorm),
      ffn:
        l.ffn.kind === 'dense'
          ? { kind: 'dense', gate: matrix(l.ffn.gate), up: matrix(l.ffn.up), down: matrix(l.ffn.down) }
          : {
              kind: 'moe',
              router: matrix(l.ffn.router),
              routerBias: opt(l.ffn.routerBias),
              gateExps: matrix(l.ffn.gateExps),
              upExps: matrix(l.ffn.upExps),
              downExps: matrix(l.ffn.downExps),
              expertBiases: l.ffn.expertBiases && {
                gate: get(l.ffn.expertBiases.gate),
                up: get(l.ffn.expertBiases.up),
                down: get(l.ffn.expertBiases.down),
              },
              shared: l.ffn.shared && {
                gateInp: opt(l.ffn.shared.gateInp),
                gate: matrix(l.ffn.shared.gate),
                up: matrix(l.ffn.shared.up),
                down: matrix(l.ffn.shared.down),
              },
            },
    })),
  };
}

function dequantizeTensor(file: GgufFile, bytes: Uint8Array, name: string): Float32Array {
  const info = file.tensors.find((t) => t.name === name);
  if (!info) throw new ModelConfigError('MISSING_TENSOR', `tensor ${name} is missing`);
  const start = file.dataOffset + info.offset;
  if (start + info.nBytes > bytes.length) {
    throw new ModelConfigError('BAD_SHAPE', `tensor ${name} runs past the end of the ${bytes.length}-byte file`);
  }
  return dequantize(info.type as GgmlType, bytes.subarray(start, start + info.nBytes), info.nElements);
}
