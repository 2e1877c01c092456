/**
 * The weights of the CPU reference forward pass: every tensor named in the
 * config's tensor table, dequantized to f32 with src/quant. Matrices keep the
 * GGUF layout (ggml dims [cols, rows]: each output row contiguous) and the
 * type they were stored in; a 3-D expert tensor [cols, rows, experts] is
 * `experts` such matrices back to back. Meant for small models: everything is
 * held in f32 at once.
 */

import type { GgufFile } from '../gguf/types';
import type { LayerTensors, ModelConfig } from '../models/config';
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
  selectionBias?: Float32Array; // (nExpert): added to the scores for choosing experts only
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

export interface StandardAttentionWeights {
  kind: 'standard';
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
}

/** Multi-head latent attention (L = kvLoraRank, r = ropeDim, dk = nope + r, dv = valueDim). */
export interface LatentAttentionWeights {
  kind: 'latent';
  wq?: Matrix; // (nHead * dk, hidden), without a query LoRA
  wqA?: Matrix; // (qLoraRank, hidden)
  qANorm?: Float32Array; // (qLoraRank)
  wqB?: Matrix; // (nHead * dk, qLoraRank)
  wkvA: Matrix; // (L + r, hidden)
  kvANorm: Float32Array; // (L)
  wkB: Matrix; // (nHead, L, nope): head h's rows map q_nope into the latent space
  wvB: Matrix; // (nHead, dv, L): head h's rows map the latent output to values
  wo: Matrix; // (hidden, nHead * dv)
}

export interface LayerWeights {
  attnNorm: Float32Array; // (hidden)
  attention: StandardAttentionWeights | LatentAttentionWeights;
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
      attention: attentionWeights(l.attention, matrix, get, opt),
      ffnNorm: get(l.ffnNorm),
      ffn:
        l.ffn.kind === 'dense'
          ? { kind: 'dense', gate: matrix(l.ffn.gate), up: matrix(l.ffn.up), down: matrix(l.ffn.down) }
          : {
              kind: 'moe',
              router: matrix(l.ffn.router),
              routerBias: opt(l.ffn.routerBias),
              selectionBias: opt(l.ffn.selectionBias),
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

function attentionWeights(
  a: LayerTensors['attention'],
  matrix: (name: string) => Matrix,
  get: (name: string) => Float32Array,
  opt: (name: string | undefined) => Float32Array | undefined,
): LayerWeights['attention'] {
  const optMatrix = (name: string | undefined): Matrix | undefined => (name === undefined ? undefined : matrix(name));
  if (a.kind === 'latent') {
    return {
      kind: 'latent',
      wq: optMatrix(a.q),
      wqA: optMatrix(a.qA),
      qANorm: opt(a.qANorm),
      wqB: optMatrix(a.qB),
      wkvA: matrix(a.kvAMqa),
      kvANorm: get(a.kvANorm),
      wkB: matrix(a.kB),
      wvB: matrix(a.vB),
      wo: matrix(a.attnOut),
    };
  }
  return {
    kind: 'standard',
    wq: matrix(a.q),
    wk: matrix(a.k),
    wv: matrix(a.v),
    bq: opt(a.qBias),
    bk: opt(a.kBias),
    bv: opt(a.vBias),
    qNorm: opt(a.qNorm),
    kNorm: opt(a.kNorm),
    wo: matrix(a.attnOut),
    bo: opt(a.attnOutBias),
    sinks: opt(a.attnSinks),
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
