/**
 * The import plan: which records a GGUF becomes and where each record's
 * bytes come from, decided from the header alone.
 */

import { describe, expect, it } from 'vitest';
import { kvString, kvU32, writeGguf } from '../../../src/gguf/writer';
import { GgmlType } from '../../../src/quant/formats';
import { StoreError } from '../../../src/store/errors';
import { manifestRecords } from '../../../src/store/manifest';
import { SHARED_ALIGNMENT_BYTES, planImport } from '../../../src/store/plan';
import { parseGguf, tiny } from './helpers';

const options = { modelId: 'm', sourceName: 'm.gguf', fingerprint: 'f' };

function f32Model(tensors: Array<[string, number[]]>, expertCount?: number) {
  return writeGguf({
    metadata: [kvString('general.architecture', 'olmoe'), ...(expertCount === undefined ? [] : [kvU32('olmoe.expert_count', expertCount)])],
    tensors: tensors.map(([name, dims]) => ({ name, type: GgmlType.F32, dims, data: new Uint8Array(dims.reduce((a, b) => a * b, 4)) })),
  });
}

describe('planImport', () => {
  it('makes one record per (layer, expert) holding gate, up and down slices back to back', async () => {
    const file = await parseGguf(tiny({ arch: 'qwen2moe', type: 'q4_0', layers: 3, experts: 4, merges: 10 }));
    const { manifest, expertLayers } = planImport(file, options);
    expect(manifest.expertCount).toBe(4);
    expect(manifest.expertLayers.map((l) => l.layer)).toEqual([0, 1, 2]);
    for (const layer of expertLayers) {
      const tensors = layer.tensors.map((t) => file.tensors.find((x) => x.name === t.name)!);
      expect(layer.tensors.map((t) => t.name.replace(/^blk\.\d+\./, ''))).toEqual(['ffn_gate_exps.weight', 'ffn_up_exps.weight', 'ffn_down_exps.weight']);
      expect(layer.tensors.map((t) => t.sliceBytes)).toEqual(tensors.map((t) => t.nBytes / 4));
      expect(layer.tensors.map((t) => t.recordOffset)).toEqual([0, tensors[0].nBytes / 4, (tensors[0].nBytes + tensors[1].nBytes) / 4]);
      expect(layer.recordBytes).toBe(tensors.reduce((n, t) => n + t.nBytes / 4, 0));
    }
    // The shared expert of qwen2moe (…_shexp) is not an expert tensor.
    expect(manifest.tensors.find((t) => t.name === 'blk.0.ffn_up_shexp.weight')!.location.kind).toBe('shared');
    expect(manifest.tensors.find((t) => t.name === 'blk.2.ffn_down_exps.weight')!.location).toEqual({ kind: 'expert', layer: 2, part: 2 });
  });

  it('packs every other tensor, aligned, into a stream cut into chunks that cover it exactly', async () => {
    const file = await parseGguf(tiny({ arch: 'olmoe', type: 'q8_0', layers: 2, experts: 2, merges: 10 }));
    const chunkBytes = 10_000;
    const { manifest, sharedChunks } = planImport(file, { ...options, sharedChunkBytes: chunkBytes });
    const shared = manifest.tensors.filter((t) => t.location.kind === 'shared');
    let end = 0;
    for (const t of shared) {
      const at = (t.location as { streamOffset: number }).streamOffset;
      expect(at % SHARED_ALIGNMENT_BYTES).toBe(0);
      expect(at).toBeGreaterThanOrEqual(end);
      end = at + t.nBytes;
    }
    expect(manifest.shared.streamBytes).toBe(end);
    expect(sharedChunks.map((c) => c.bytes).reduce((a, b) => a + b)).toBe(end);
    expect(sharedChunks.slice(0, -1).every((c) => c.bytes === chunkBytes)).toBe(true);
    const copied = sharedChunks.flatMap((c) => c.pieces).reduce((n, p) => n + p.length, 0);
    expect(copied).toBe(shared.reduce((n, t) => n + t.nBytes, 0));
    for (const c of sharedChunks) for (const p of c.pieces) expect(p.recordOffset + p.length).toBeLessThanOrEqual(c.bytes);
  });

  it('lists the records in import order with the sizes that add up to the stored size', async () => {
    const file = await parseGguf(tiny({ arch: 'llama', type: 'f16', layers: 2, experts: 3, merges: 10 }));
    const { manifest } = planImport(file, options);
    const records = manifestRecords(manifest);
    expect(records[0].key).toBe('metadata');
    expect(records.at(-1)!.key).toBe('expert.1.2');
    expect(new Set(records.map((r) => r.key)).size).toBe(records.length);
    expect(records.every((r) => r.hash === '')).toBe(true);
    expect(manifest.storedBytes).toBe(records.reduce((n, r) => n + r.bytes, 0));
  });

  it('a model without experts is all shared tensors', async () => {
    const file = await parseGguf(f32Model([['token_embd.weight', [8, 4]], ['blk.0.ffn_up.weight', [8, 16]]]));
    const { manifest } = planImport(file, options);
    expect(manifest.expertCount).toBe(0);
    expect(manifest.expertLayers).toEqual([]);
    expect(manifest.shared.streamBytes).toBe(8 * 4 * 4 + 8 * 16 * 4);
  });

  it('keeps extra expert tensors (biases, other names) after gate, up and down, in a fixed order', async () => {
    const file = await parseGguf(f32Model([
      ['blk.0.ffn_down_exps.bias', [8, 2]],
      ['blk.0.ffn_down_exps.weight', [4, 8, 2]],
      ['blk.0.ffn_gate_up_exps.weight', [8, 8, 2]],
      ['blk.0.ffn_up_exps.weight', [8, 4, 2]],
    ], 2));
    const { manifest } = planImport(file, options);
    expect(manifest.expertLayers[0].parts.map((p) => p.tensor)).toEqual([
      'blk.0.ffn_up_exps.weight', 'blk.0.ffn_down_exps.weight', 'blk.0.ffn_down_exps.bias', 'blk.0.ffn_gate_up_exps.weight',
    ]);
  });

  it.each([
    ['last dim is not the expert count', [['blk.0.ffn_up_exps.weight', [8, 4, 3]]], 4],
    ['expert tensors but no expert count', [['blk.0.ffn_up_exps.weight', [8, 4, 2]]], undefined],
    ['a one-dimensional expert tensor', [['blk.0.ffn_up_exps.weight', [4]]], 4],
  ] as Array<[string, Array<[string, number[]]>, number | undefined]>)('rejects %s as UNSUPPORTED_MODEL', async (_, tensors, experts) => {
    const file = await parseGguf(f32Model(tensors, experts));
    expect(() => planImport(file, options)).toThrow(StoreError);
    try {
      planImport(file, options);
    } catch (e) {
      expect((e as StoreError).code).toBe('UNSUPPORTED_MODEL');
    }
  });
});
