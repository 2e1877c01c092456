import { writeFileSync } from 'node:fs';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { writeGguf } from '../../src/gguf/writer';
import { GgmlType } from '../../src/quant/formats';
import { dequantize } from '../../src/quant/dequant';
import { loadReference } from '../../tools/reference/llama-cpp';

const variant = process.argv[2];
const type = process.argv[3] as 'f16';
const bytes = makeTinyModel({ arch: 'deepseek2', type, seed: 3 });
const file = await readGguf(sourceFromBytes(bytes));
const keepF32 = (name: string) => variant.split(',').some((v) => name.includes(v));
const tensors = file.tensors.map((t) => {
  const start = file.dataOffset + t.offset;
  const data = bytes.subarray(start, start + t.nBytes);
  if (variant !== 'none' && keepF32(t.name) && t.type !== GgmlType.F32) {
    const f = dequantize(t.type as GgmlType, data, t.nElements);
    return { name: t.name, type: GgmlType.F32, dims: [...t.dims], data: new Uint8Array(f.buffer) };
  }
  return { name: t.name, type: t.type, dims: [...t.dims], data };
});
writeFileSync('/tmp/ds-test.gguf', writeGguf({ metadata: [...file.metadata.values()], tensors }));
const llama = await loadReference('/tmp/ds-test.gguf', 128);
const toks = llama.tokenize('The river ran past the old mill').slice(0, 8);
const logits = await llama.logits(toks);
console.log(variant, type, 'ok', Math.max(...logits[7].map(Math.abs)), logits[7].slice(0, 3));
await llama.dispose();
