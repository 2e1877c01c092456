/**
 * Where a routed expert's weights are read: one (layer, expert) at a time,
 * as its gate, up and down matrices in their stored block formats, with its
 * f32 biases when the model has them (what an expert slot holds,
 * src/kernels/expert-slots.ts).
 *
 * - `ggufExpertSource`: a model opened directly from a GGUF file (any
 *   ByteSource: bytes, a File, a URL with Range requests, a Node file);
 *   one read per tensor slice.
 * - `storedExpertSource`: a model imported into the WeightStore (IndexedDB in
 *   browsers, a directory in Node); one record read per expert, cut into its
 *   slices.
 */

import type { ByteSource } from '../gguf/source';
import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import type { ExpertTensors } from '../kernels/expert-slots';
import { dequantize } from '../quant/dequant';
import { GgmlType } from '../quant/formats';
import type { StoredModel } from '../store/weight-store';

export interface ExpertSource {
  /** Where the bytes come from, for messages. */
  readonly name: string;
  /** Expert `expert` of layer `layer`: its gate, up and down bytes (and biases). */
  readExpert(layer: number, expert: number): Promise<ExpertTensors>;
}

/** The GGUF names of one layer's routed expert tensors ([cols, rows, experts] each; biases [rows, experts]). */
export interface ExpertTensorNames {
  gate: string;
  up: string;
  down: string;
  biases?: { gate: string; up: string; down: string };
}

type Part = 'gate' | 'up' | 'down';
const PARTS: readonly Part[] = ['gate', 'up', 'down'];

/** Reads experts from a GGUF file: expert e of a [cols, rows, E] tensor is its e-th run of rows * cols elements. */
export function ggufExpertSource(
  file: GgufFile,
  source: ByteSource,
  layers: ReadonlyMap<number, ExpertTensorNames>,
  nExperts: number,
): ExpertSource {
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  const info = (name: string): GgufTensorInfo => {
    const t = infos.get(name);
    if (!t) throw new Error(`${source.name} has no tensor ${name}`);
    return t;
  };
  const slice = (t: GgufTensorInfo, e: number): Promise<Uint8Array> => {
    const perExpert = t.nBytes / nExperts;
    return source.read(file.dataOffset + t.offset + e * perExpert, perExpert);
  };
  // A bias stored in another type than F32 is read and dequantized whole, once.
  const whole = new Map<string, Promise<Float32Array>>();
  const bias = async (t: GgufTensorInfo, e: number): Promise<Float32Array> => {
    const n = t.nElements / nExperts;
    if (t.type === GgmlType.F32) return new Float32Array((await slice(t, e)).slice().buffer);
    let all = whole.get(t.name);
    if (!all) {
      all = source.read(file.dataOffset + t.offset, t.nBytes).then((bytes) => dequantize(t.type as GgmlType, bytes, t.nElements));
      whole.set(t.name, all);
    }
    return (await all).slice(e * n, (e + 1) * n);
  };
  return {
    name: source.name,
    async readExpert(layer, expert) {
      const names = layers.get(layer);
      if (!names) throw new RangeError(`layer ${layer} has no routed experts`);
      if (!Number.isInteger(expert) || expert < 0 || expert >= nExperts) throw new RangeError(`expert ${expert} is not in 0..${nExperts - 1}`);
      const [gate, up, down] = await Promise.all(PARTS.map((p) => slice(info(names[p]), expert)));
      const b = names.biases;
      if (!b) return { gate, up, down };
      const [gateBias, upBias, downBias] = await Promise.all(PARTS.map((p) => bias(info(b[p]), expert)));
      return { gate, up, down, gateBias, upBias, downBias };
    },
  };
}

/**
 * Reads experts from a model in the WeightStore: one record per expert, cut
 * into gate, up and down slices (and bias slices) by tensor name (default:
 * every expert layer's blk.L.ffn_{gate,up,down}_exps.{weight,bias}).
 */
export function storedExpertSource(model: StoredModel, layers: ReadonlyMap<number, ExpertTensorNames> = standardExpertNames(model)): ExpertSource {
  type Range = [offset: number, bytes: number];
  const offsets = new Map<number, { weights: Range[]; biases?: Range[]; biasTypes?: GgmlType[] }>();
  for (const [layer, names] of layers) {
    const parts = model.expertLayer(layer).parts;
    const find = (tensor: string): Range => {
      const part = parts.find((p) => p.tensor === tensor);
      if (!part) throw new Error(`${model.modelId}: layer ${layer}'s expert records hold no slice of ${tensor}`);
      return [part.recordOffset, part.bytes];
    };
    const b = names.biases;
    offsets.set(layer, {
      weights: PARTS.map((p) => find(names[p])),
      biases: b && PARTS.map((p) => find(b[p])),
      biasTypes: b && PARTS.map((p) => model.tensor(b[p]).type as GgmlType),
    });
  }
  return {
    name: `store:${model.modelId}`,
    async readExpert(layer, expert) {
      const at = offsets.get(layer);
      if (!at) throw new RangeError(`layer ${layer} has no routed experts`);
      const record = await model.readExpert(layer, expert);
      const cut = ([offset, bytes]: Range) => record.subarray(offset, offset + bytes);
      const [gate, up, down] = at.weights.map(cut);
      if (!at.biases || !at.biasTypes) return { gate, up, down };
      const types = at.biasTypes;
      const [gateBias, upBias, downBias] = at.biases.map((r, i) => {
        const bytes = cut(r);
        if (types[i] === GgmlType.F32) return new Float32Array(bytes.slice().buffer);
        const elements = (bytes.byteLength * 8) / 16; // F16 and BF16 are the only other types a bias is written in
        return dequantize(types[i], bytes, elements);
      });
      return { gate, up, down, gateBias, upBias, downBias };
    },
  };
}

function standardExpertNames(model: StoredModel): Map<number, ExpertTensorNames> {
  const names = (l: number): ExpertTensorNames => {
    const name = (part: Part, kind: string) => `blk.${l}.ffn_${part}_exps.${kind}`;
    const stored = new Set(model.expertLayer(l).parts.map((p) => p.tensor));
    return {
      gate: name('gate', 'weight'),
      up: name('up', 'weight'),
      down: name('down', 'weight'),
      biases: stored.has(name('gate', 'bias')) ? { gate: name('gate', 'bias'), up: name('up', 'bias'), down: name('down', 'bias') } : undefined,
    };
  };
  return new Map(model.expertLayers.map((l) => [l.layer, names(l.layer)]));
}
