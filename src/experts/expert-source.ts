/**
 * Where the expert cache reads a routed expert's weights on a miss: one
 * (layer, expert) at a time, as its gate, up and down matrices in their
 * stored block formats (what an expert slot holds, src/kernels/expert-slots.ts).
 *
 * - `ggufExpertSource`: a model opened directly from a GGUF file (any
 *   ByteSource: bytes, a File, a URL with Range requests, a Node file);
 *   three reads per expert, one per matrix slice.
 * - `storedExpertSource`: a model imported into the WeightStore (IndexedDB in
 *   browsers, a directory in Node); one record read per expert, cut into its
 *   gate, up and down slices without copying.
 */

import type { ByteSource } from '../gguf/source';
import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import type { ExpertTensors } from '../kernels/expert-slots';
import type { StoredModel } from '../store/weight-store';

export interface ExpertSource {
  /** Where the bytes come from, for messages. */
  readonly name: string;
  /** Expert `expert` of layer `layer`: its gate, up and down bytes. */
  readExpert(layer: number, expert: number): Promise<ExpertTensors>;
}

/** The GGUF names of one layer's routed expert tensors ([cols, rows, experts] each). */
export interface ExpertTensorNames {
  gate: string;
  up: string;
  down: string;
}

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
  return {
    name: source.name,
    async readExpert(layer, expert) {
      const names = layers.get(layer);
      if (!names) throw new RangeError(`layer ${layer} has no routed experts`);
      if (!Number.isInteger(expert) || expert < 0 || expert >= nExperts) throw new RangeError(`expert ${expert} is not in 0..${nExperts - 1}`);
      const [gate, up, down] = await Promise.all([slice(info(names.gate), expert), slice(info(names.up), expert), slice(info(names.down), expert)]);
      return { gate, up, down };
    },
  };
}

/**
 * Reads experts from a model in the WeightStore: one record per expert, cut
 * into gate, up and down slices by tensor name (default: every expert layer's
 * blk.L.ffn_{gate,up,down}_exps.weight).
 */
export function storedExpertSource(model: StoredModel, layers: ReadonlyMap<number, ExpertTensorNames> = standardExpertNames(model)): ExpertSource {
  const offsets = new Map<number, { gate: [number, number]; up: [number, number]; down: [number, number] }>();
  for (const [layer, names] of layers) {
    const parts = model.expertLayer(layer).parts;
    const find = (tensor: string): [number, number] => {
      const part = parts.find((p) => p.tensor === tensor);
      if (!part) throw new Error(`${model.modelId}: layer ${layer}'s expert records hold no slice of ${tensor}`);
      return [part.recordOffset, part.bytes];
    };
    offsets.set(layer, { gate: find(names.gate), up: find(names.up), down: find(names.down) });
  }
  return {
    name: `store:${model.modelId}`,
    async readExpert(layer, expert) {
      const at = offsets.get(layer);
      if (!at) throw new RangeError(`layer ${layer} has no routed experts`);
      const record = await model.readExpert(layer, expert);
      const cut = ([offset, bytes]: [number, number]) => record.subarray(offset, offset + bytes);
      return { gate: cut(at.gate), up: cut(at.up), down: cut(at.down) };
    },
  };
}

function standardExpertNames(model: StoredModel): Map<number, ExpertTensorNames> {
  const names = (l: number): ExpertTensorNames => ({
    gate: `blk.${l}.ffn_gate_exps.weight`,
    up: `blk.${l}.ffn_up_exps.weight`,
    down: `blk.${l}.ffn_down_exps.weight`,
  });
  return new Map(model.expertLayers.map((l) => [l.layer, names(l.layer)]));
}
