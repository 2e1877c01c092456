/**
 * A model in the weight store seen as a GGUF file: its metadata and tensor
 * table as a GgufFile whose tensors lie one after another in a virtual data
 * section, and a ByteSource that answers reads of that section from the
 * store's records (a read inside an expert tensor reads only the experts it
 * covers). The model loader reads it as it reads a file.
 */

import { GgufError } from '../gguf/errors';
import type { ByteSource } from '../gguf/source';
import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import type { TensorEntry } from '../store/manifest';
import type { StoredModel } from '../store/weight-store';

const ALIGNMENT = 32;

interface Placed {
  entry: TensorEntry;
  offset: number;
}

/** The stored model as a GgufFile plus the source its tensor reads go to. */
export async function storedModelAsGguf(model: StoredModel): Promise<{ file: GgufFile; source: ByteSource }> {
  const metadata = await model.readMetadata();
  const placed: Placed[] = [];
  let end = 0;
  for (const entry of model.manifest.tensors) {
    placed.push({ entry, offset: end });
    end = Math.ceil((end + entry.nBytes) / ALIGNMENT) * ALIGNMENT;
  }
  const tensors: GgufTensorInfo[] = placed.map(({ entry, offset }) => ({
    name: entry.name,
    dims: entry.dims,
    type: entry.type,
    offset,
    nElements: entry.dims.reduce((a, b) => a * b, 1),
    nBytes: entry.nBytes,
  }));
  const version = model.manifest.ggufVersion === 2 ? 2 : 3;
  const file: GgufFile = { version, alignment: ALIGNMENT, metadata, tensors, dataOffset: 0, fileBytes: end };
  return { file, source: new StoredModelSource(model, placed, end) };
}

class StoredModelSource implements ByteSource {
  readonly name: string;

  constructor(
    private readonly model: StoredModel,
    private readonly placed: readonly Placed[],
    readonly size: number,
  ) {
    this.name = `stored model ${model.modelId}`;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const found = this.placed.find((p) => offset >= p.offset && offset + length <= p.offset + p.entry.nBytes);
    if (!found) {
      throw new GgufError('SOURCE_ERROR', 'source', offset, `read of ${length} bytes at ${offset} does not lie within one tensor of ${this.name}`);
    }
    const { entry } = found;
    const start = offset - found.offset;
    if (entry.location.kind === 'shared') return (await this.model.readTensor(entry.name)).subarray(start, start + length);
    // An expert tensor is its experts' slices one after another: read the records the range covers.
    const { layer, part } = entry.location;
    const slice = this.model.expertLayer(layer).parts[part];
    const out = new Uint8Array(length);
    for (let e = Math.floor(start / slice.bytes); e * slice.bytes < start + length; e++) {
      const record = await this.model.readExpert(layer, e);
      const from = Math.max(start, e * slice.bytes);
      const to = Math.min(start + length, (e + 1) * slice.bytes);
      const at = slice.recordOffset + from - e * slice.bytes;
      out.set(record.subarray(at, at + to - from), from - start);
    }
    return out;
  }
}
