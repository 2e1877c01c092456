/**
 * The weight store's specification, independent of the backend: the Node
 * project runs it on the filesystem backend (fs.test.ts), the store-browser
 * project on IndexedDB in Chromium (test/browser/store-idb.test.ts).
 */

import { describe, expect, it } from 'vitest';
import { GgufError } from '../../../src/gguf/errors';
import { sourceFromUrl } from '../../../src/gguf/source';
import { GgufValueType } from '../../../src/gguf/types';
import type { GgufFile } from '../../../src/gguf/types';
import { kvString, kvU32, writeGguf } from '../../../src/gguf/writer';
import type { StoreBackend } from '../../../src/store/backend';
import { StoreError } from '../../../src/store/errors';
import type { ImportOptions, ImportProgress } from '../../../src/store/import';
import { decodeMetadata, expertKey, manifestRecords } from '../../../src/store/manifest';
import { createWeightStore } from '../../../src/store/weight-store';
import { GgmlType } from '../../../src/quant/formats';
import { TINY_ARCHS } from '../../../src/tiny/archs';
import { tinyWeightTypesFor } from '../../../src/tiny/make-tiny';
import {
  InjectedFailure, backendContents, bind, expectSameBytes, expectedExpert, failingBackend, failingSource, namedSource,
  parseGguf, quotaLimitedBackend, rangeFetch, smallEstimateBackend, snapshot, tensorSlice, tiny,
} from './helpers';
import type { FailurePlan } from './helpers';

/** Makes an empty backend for one test. */
export type BackendFactory = () => Promise<StoreBackend>;

const FFN_PARTS = ['ffn_gate_exps.weight', 'ffn_up_exps.weight', 'ffn_down_exps.weight'];
/** Every stacked expert tensor a layer has, in record order: gate, up, down, each weight then bias (gpt-oss has biases). */
const ALL_FFN_PARTS = ['ffn_gate_exps.weight', 'ffn_gate_exps.bias', 'ffn_up_exps.weight', 'ffn_up_exps.bias', 'ffn_down_exps.weight', 'ffn_down_exps.bias'];
const partsOf = (file: GgufFile, layer: number): string[] => ALL_FFN_PARTS.filter((p) => file.tensors.some((t) => t.name === `blk.${layer}.${p}`));
/** Small batches and chunks so that tiny models still make many batches. */
const SMALL: ImportOptions = { batchBytes: 8 * 1024, sharedChunkBytes: 16 * 1024 };

async function expectStoreError(promise: Promise<unknown>, code: string): Promise<StoreError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error, `expected a StoreError ${code}`).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe(code);
  return error as StoreError;
}

export function defineStoreSuite(newBackend: BackendFactory): void {
  describe('round trip', () => {
    const cases = TINY_ARCHS.flatMap((arch) => tinyWeightTypesFor(arch).map((type) => ({ arch, type })));
    it.each(cases)('$arch $type: every record and tensor reads back byte-identical to the GGUF', async ({ arch, type }) => {
      const gguf = tiny({ arch, type, layers: 2, experts: 4, merges: 40 });
      const file = await parseGguf(gguf);
      const store = createWeightStore(await newBackend());
      const progress: ImportProgress[] = [];
      const result = await store.importModel(namedSource(gguf, `${arch}-${type}.gguf`), { ...SMALL, onProgress: (p) => progress.push(p) });
      expect(result.alreadyComplete).toBe(false);
      const model = await store.openModel(`${arch}-${type}.gguf`);

      // deepseek2's first layer has a dense FFN.
      expect(model.expertLayers.map((l) => l.layer)).toEqual(arch === 'deepseek2' ? [1] : [0, 1]);
      for (const layer of model.expertLayers) {
        const parts = partsOf(file, layer.layer);
        expect(parts.length).toBe(arch === 'gpt-oss' ? 6 : 3);
        expect(layer.parts.map((p) => p.tensor)).toEqual(parts.map((p) => `blk.${layer.layer}.${p}`));
        for (let e = 0; e < 4; e++) {
          const expected = expectedExpert(gguf, file, layer.layer, e, parts, 4);
          expectSameBytes(await model.readExpert(layer.layer, e, { verify: true }), expected, `layer ${layer.layer} expert ${e}`);
        }
      }
      const tensors = await model.readTensors(file.tensors.map((t) => t.name), { verify: true });
      for (const t of file.tensors) expectSameBytes(tensors.get(t.name), tensorSlice(gguf, file, t.name), t.name);
      expect(await model.readMetadata({ verify: true })).toEqual(file.metadata);
      expect(model.manifest.chatTemplate).toContain('im_start');
      expect(await model.verify()).toEqual([]);

      const writing = progress.filter((p) => p.phase === 'writing');
      expect(writing.map((p) => p.bytesDone)).toEqual([...writing.map((p) => p.bytesDone)].sort((a, b) => a - b));
      const last = progress[progress.length - 1];
      expect(last).toMatchObject({ phase: 'complete', bytesDone: last.bytesTotal, recordsDone: last.recordsTotal });
      expect(last.bytesTotal).toBe(model.manifest.storedBytes);
      expect(last.recordsTotal).toBe(manifestRecords(model.manifest).length);
    });

    it('keeps 64-bit, non-finite and nested metadata exactly', async () => {
      const gguf = tiny({ arch: 'olmoe', type: 'q8_0', layers: 1, experts: 2, merges: 10 });
      const file = await parseGguf(gguf);
      const extra = writeGguf({
        metadata: [
          ...file.metadata.values(),
          { key: 'test.u64', type: GgufValueType.UINT64, value: 2n ** 64n - 1n },
          { key: 'test.nan', type: GgufValueType.FLOAT32, value: NaN },
          { key: 'test.inf', type: GgufValueType.FLOAT64, value: -Infinity },
          { key: 'test.nested', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.ARRAY, items: [{ itemType: GgufValueType.INT64, items: [-5n] }] } },
        ],
        tensors: file.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], data: tensorSlice(gguf, file, t.name) })),
      });
      const store = createWeightStore(await newBackend());
      await store.importModel(namedSource(extra, 'extra.gguf'));
      const metadata = await (await store.openModel('extra.gguf')).readMetadata();
      expect(metadata).toEqual((await parseGguf(extra)).metadata);
      expect(metadata.get('test.u64')!.value).toBe(2n ** 64n - 1n);
      expect(metadata.get('test.nan')!.value).toBeNaN();
    });

    it('imports from a URL with Range requests, never asking for more than a batch at a time', async () => {
      const gguf = tiny({ arch: 'qwen2moe', type: 'q4_k', layers: 2, experts: 4, merges: 40 });
      const ranges: Array<[number, number]> = [];
      const source = await sourceFromUrl('https://models.example/dir/qwen%20moe.gguf?download=1', { fetch: rangeFetch(gguf, ranges), probeBytes: 4096 });
      const store = createWeightStore(await newBackend());
      const batchBytes = 64 * 1024;
      const { manifest } = await store.importModel(source, { batchBytes, sharedChunkBytes: 32 * 1024 });
      expect(manifest.modelId).toBe('qwen_moe.gguf');
      const file = await parseGguf(gguf);
      const largestRecord = Math.max(...manifestRecords(manifest).map((r) => r.bytes));
      expect(gguf.byteLength).toBeGreaterThan(4 * batchBytes);
      // Reads past the header are the records' (the header reader has its own chunking).
      const recordReads = ranges.filter(([start]) => start >= file.dataOffset);
      expect(recordReads.length).toBeGreaterThan(4);
      for (const [start, end] of recordReads) expect(end - start).toBeLessThanOrEqual(Math.max(batchBytes, largestRecord));
      const model = await store.openModel(manifest.modelId);
      expectSameBytes(await model.readExpert(1, 3, { verify: true }), expectedExpert(gguf, file, 1, 3, FFN_PARTS, 4), 'expert 1.3');
    });
  });

  describe('interruption and resume', () => {
    const gguf = () => tiny({ arch: 'qwen3moe', type: 'q4_0', layers: 2, experts: 4, merges: 40 });
    const ID = 'resume.gguf';

    async function cleanSnapshot() {
      const backend = await newBackend();
      await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      return snapshot(backend, ID);
    }

    async function expectUnusable(backend: StoreBackend) {
      const store = createWeightStore(backend);
      await expectStoreError(store.openModel(ID), 'MODEL_NOT_READY');
      expect((await store.listModels()).map((m) => [m.modelId, m.state])).toEqual([[ID, 'importing']]);
    }

    const backendFailures: Array<[string, FailurePlan]> = [
      ['at the first record batch', { operation: 'putRecords', call: 1 }],
      ['mid-batch, records written but not their journal', { operation: 'putRecords', call: 3, writtenBeforeFailure: 1 }],
      ['in a later batch', { operation: 'putRecords', call: 7, writtenBeforeFailure: 2 }],
      ['while reading records back to verify them', { operation: 'getRecord', call: 5 }],
      ['just before the manifest commit', { operation: 'putManifest', call: 1, onlyCommit: true }],
    ];
    it.each(backendFailures)('a storage failure %s leaves an unusable model that resumes to an identical store', async (_, plan) => {
      const expected = await cleanSnapshot();
      const backend = await newBackend();
      const failing = failingBackend(backend, plan);
      const error = await expectStoreError(createWeightStore(failing).importModel(namedSource(gguf(), ID), SMALL), 'STORAGE_FAILED');
      expect(failing.fired()).toBe(true);
      expect(error.cause).toBeInstanceOf(InjectedFailure);
      await expectUnusable(backend);

      const resumed = await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      expect(resumed.alreadyComplete).toBe(false);
      if (plan.operation !== 'putRecords' || plan.call > 1) expect(resumed.recordsResumed).toBeGreaterThan(0);
      expect(await snapshot(backend, ID)).toEqual(expected);
    });

    it.each([1, 2, 5, 9])('a source failing at record read %i (mid-record: some slices read, not all) resumes to an identical store', async (n) => {
      const expected = await cleanSnapshot();
      const backend = await newBackend();
      const source = failingSource(namedSource(gguf(), ID), n);
      const onProgress = () => source.arm();
      await expect(createWeightStore(backend).importModel(source, { ...SMALL, onProgress })).rejects.toBeInstanceOf(InjectedFailure);
      await expectUnusable(backend);
      await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      expect(await snapshot(backend, ID)).toEqual(expected);
    });

    it('an abort between batches stops the import; the next import resumes and writes only the rest', async () => {
      const expected = await cleanSnapshot();
      const backend = await newBackend();
      const controller = new AbortController();
      let written = 0;
      const onProgress = (p: ImportProgress) => {
        if (p.phase === 'writing' && p.recordsDone >= 4) controller.abort(new Error('user cancelled'));
        written = p.recordsDone;
      };
      await expect(createWeightStore(backend).importModel(namedSource(gguf(), ID), { ...SMALL, onProgress, signal: controller.signal }))
        .rejects.toThrow('user cancelled');
      await expectUnusable(backend);
      const resumed = await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      expect(resumed.recordsResumed).toBe(written);
      expect(resumed.recordsWritten).toBe(manifestRecords(resumed.manifest).length - written);
      expect(await snapshot(backend, ID)).toEqual(expected);
    });

    it('resumes from a source with another name (a URL after a File) when the file is the same', async () => {
      const backend = await newBackend();
      await expect(createWeightStore(failingBackend(backend, { operation: 'putRecords', call: 4 }))
        .importModel(namedSource(gguf(), ID), SMALL)).rejects.toBeInstanceOf(StoreError);
      const resumed = await createWeightStore(backend).importModel(namedSource(gguf(), 'https://x.example/other-name.gguf'), { ...SMALL, modelId: ID });
      expect(resumed.recordsResumed).toBeGreaterThan(0);
      expect(resumed.manifest.source.name).toBe('https://x.example/other-name.gguf');
    });

    it('an unfinished import of another file under the same id is discarded and started over', async () => {
      const backend = await newBackend();
      const other = tiny({ arch: 'qwen3moe', type: 'q4_0', layers: 2, experts: 4, merges: 40, seed: 99 });
      await expect(createWeightStore(failingBackend(backend, { operation: 'putRecords', call: 4 }))
        .importModel(namedSource(other, ID), SMALL)).rejects.toBeInstanceOf(StoreError);
      const result = await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      expect(result.recordsResumed).toBe(0);
      expect(await snapshot(backend, ID)).toEqual(await cleanSnapshot());
    });

    it('a record damaged between runs is caught by the verification, dropped, and rewritten by the next import', async () => {
      const expected = await cleanSnapshot();
      const backend = await newBackend();
      await expect(createWeightStore(failingBackend(backend, { operation: 'putManifest', call: 1, onlyCommit: true }))
        .importModel(namedSource(gguf(), ID), SMALL)).rejects.toBeInstanceOf(StoreError);
      const key = expertKey(1, 2);
      const damaged = (await backend.getRecord(ID, key))!.slice();
      damaged[10] ^= 0xff;
      await backend.putRecords(ID, [{ key, bytes: damaged }]);

      const error = await expectStoreError(createWeightStore(backend).importModel(namedSource(gguf(), ID), { ...SMALL, verify: 'resumed' }), 'CORRUPT_RECORD');
      expect(error).toMatchObject({ modelId: ID, layer: 1, expert: 2 });
      await expectUnusable(backend);
      const resumed = await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      expect(resumed.recordsWritten).toBe(1);
      expect(await snapshot(backend, ID)).toEqual(expected);
    });
  });

  describe('concurrent use (another tab or worker)', () => {
    const gguf = () => tiny({ arch: 'olmoe', type: 'q8_0', layers: 2, experts: 4, merges: 40 });
    const ID = 'shared.gguf';

    it('two imports of one model at once: one writes it, the other waits for it and finds it complete', async () => {
      const backend = await newBackend();
      const expected = await (async () => {
        const clean = await newBackend();
        await createWeightStore(clean).importModel(namedSource(gguf(), ID), SMALL);
        return snapshot(clean, ID);
      })();
      const results = await Promise.all([
        createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL),
        createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL),
      ]);
      expect(results.map((r) => r.alreadyComplete).sort()).toEqual([false, true]);
      expect(results.find((r) => !r.alreadyComplete)!.recordsResumed).toBe(0);
      expect(await snapshot(backend, ID)).toEqual(expected);
    });

    it.each(['all', 'none'] as const)('a model deleted while it is being imported (verify: %s) stops the import with MODEL_NOT_FOUND, leaving nothing behind', async (verify) => {
      const backend = await newBackend();
      let writes = 0;
      // Another tab deletes the model just before this import's third batch is written.
      const deletedUnder: StoreBackend = {
        ...bind(backend),
        async putRecords(modelId, records) {
          if (++writes === 3) await createWeightStore(backend).deleteModel(modelId);
          return backend.putRecords(modelId, records);
        },
      };
      const error = await expectStoreError(createWeightStore(deletedUnder).importModel(namedSource(gguf(), ID), { ...SMALL, verify }), 'MODEL_NOT_FOUND');
      expect(error.message).toMatch(/deleted .*while it was being imported/);
      expect(await createWeightStore(backend).listModels()).toEqual([]);
      expect(await backend.listRecordKeys(ID)).toEqual([]);
      const again = await createWeightStore(backend).importModel(namedSource(gguf(), ID), SMALL);
      expect(again.recordsResumed).toBe(0);
    });

    it('a model deleted while open: its next read is MODEL_NOT_FOUND saying it was deleted, not CORRUPT_RECORD', async () => {
      const backend = await newBackend();
      const store = createWeightStore(backend);
      await store.importModel(namedSource(gguf(), ID), SMALL);
      const model = await store.openModel(ID);
      await model.readExpert(0, 1);
      expect(await createWeightStore(backend).deleteModel(ID)).toBe(true);
      const error = await expectStoreError(model.readExpert(1, 2), 'MODEL_NOT_FOUND');
      expect(error.message).toMatch(/was deleted while in use/);
      await expectStoreError(model.readMetadata(), 'MODEL_NOT_FOUND');
    });
  });

  describe('quota', () => {
    const gguf = () => tiny({ arch: 'llama', type: 'q8_0', layers: 2, experts: 4, merges: 40 });
    const ID = 'quota.gguf';

    it('refuses before writing anything when the estimate shows too little space', async () => {
      const backend = await newBackend();
      const error = await expectStoreError(createWeightStore(smallEstimateBackend(backend, 50_000)).importModel(namedSource(gguf(), ID)), 'QUOTA_EXCEEDED');
      expect(error.availableBytes).toBe(50_000);
      expect(error.neededBytes).toBeGreaterThan(gguf().byteLength * 0.9);
      expect(error.message).toMatch(/needs .* but only 48\.83 KiB is available/);
      expect(await backendContents(backend, [ID])).toEqual({ manifests: 0, records: 0 });
    });

    it('a QuotaExceededError mid-import surfaces typed, leaves nothing usable, and resumes once space is back', async () => {
      const clean = await newBackend();
      await createWeightStore(clean).importModel(namedSource(gguf(), ID), SMALL);
      const expected = await snapshot(clean, ID);

      const backend = await newBackend();
      const limited = quotaLimitedBackend(backend, Math.floor(gguf().byteLength / 2));
      const error = await expectStoreError(createWeightStore(limited).importModel(namedSource(gguf(), ID), SMALL), 'QUOTA_EXCEEDED');
      expect((error.cause as DOMException).name).toBe('QuotaExceededError');
      expect(error.neededBytes).toBeGreaterThan(0);
      expect(error.message).toMatch(/still to write.*import again to resume/);
      await expectStoreError(createWeightStore(backend).openModel(ID), 'MODEL_NOT_READY');

      limited.setLimit(Infinity);
      const resumed = await createWeightStore(limited).importModel(namedSource(gguf(), ID), SMALL);
      expect(resumed.recordsResumed).toBeGreaterThan(0);
      expect(await snapshot(backend, ID)).toEqual(expected);
    });
  });

  describe('integrity', () => {
    const gguf = () => tiny({ arch: 'olmoe', type: 'q6_k', layers: 2, experts: 4, merges: 40 });
    const ID = 'integrity.gguf';

    async function imported() {
      const backend = await newBackend();
      const store = createWeightStore(backend);
      await store.importModel(namedSource(gguf(), ID), SMALL);
      return { backend, model: await store.openModel(ID) };
    }

    it('a flipped byte is a CORRUPT_RECORD naming model, layer and expert when reads verify', async () => {
      const { backend, model } = await imported();
      const bytes = (await backend.getRecord(ID, expertKey(1, 3)))!.slice();
      bytes[bytes.length - 1] ^= 1;
      await backend.putRecords(ID, [{ key: expertKey(1, 3), bytes }]);

      const error = await expectStoreError(model.readExpert(1, 3, { verify: true }), 'CORRUPT_RECORD');
      expect(error).toMatchObject({ modelId: ID, layer: 1, expert: 3, recordKey: 'expert.1.3' });
      expect(error.message).toContain('layer 1, expert 3');
      expect((await model.readExpert(1, 3)).byteLength).toBe(bytes.byteLength);
      expect((await model.verify()).map((e) => e.recordKey)).toEqual(['expert.1.3']);
    });

    it('a truncated or missing record is CORRUPT_RECORD even without verification', async () => {
      const { backend, model } = await imported();
      const bytes = (await backend.getRecord(ID, expertKey(0, 1)))!;
      await backend.putRecords(ID, [{ key: expertKey(0, 1), bytes: bytes.slice(0, 100) }]);
      expect(await expectStoreError(model.readExpert(0, 1), 'CORRUPT_RECORD')).toMatchObject({ layer: 0, expert: 1 });
      await backend.deleteRecords(ID, [expertKey(0, 2)]);
      expect((await expectStoreError(model.readExpert(0, 2), 'CORRUPT_RECORD')).message).toContain('missing');
    });

    it('a damaged shared chunk fails verified tensor reads, naming the chunk', async () => {
      const { backend, model } = await imported();
      const chunk = model.manifest.shared.chunks[0];
      const bytes = (await backend.getRecord(ID, chunk.key))!.slice();
      bytes[0] ^= 0x80;
      await backend.putRecords(ID, [{ key: chunk.key, bytes }]);
      const error = await expectStoreError(model.readTensor('token_embd.weight', { verify: true }), 'CORRUPT_RECORD');
      expect(error.recordKey).toBe(chunk.key);
      expect(error.layer).toBeUndefined();
    });

    it('asking for an expert or tensor the model lacks is NOT_IN_MODEL', async () => {
      const { model } = await imported();
      await expectStoreError(model.readExpert(2, 0), 'NOT_IN_MODEL');
      await expectStoreError(model.readExpert(0, 4), 'NOT_IN_MODEL');
      await expectStoreError(model.readTensor('nope.weight'), 'NOT_IN_MODEL');
    });
  });

  describe('hostile and unsupported files', () => {
    const good = () => tiny({ arch: 'olmoe', type: 'q4_0', layers: 1, experts: 2, merges: 10 });
    const hostile: Array<[string, () => Uint8Array]> = [
      ['a bad magic', () => Uint8Array.from([...good()].map((b, i) => (i === 0 ? 0x58 : b)))],
      ['a truncated file', () => good().subarray(0, good().byteLength - 100)],
      ['a header cut in the metadata', () => good().subarray(0, 200)],
      ['an absurd tensor count', () => {
        const bytes = good().slice();
        new DataView(bytes.buffer).setBigUint64(8, 2n ** 62n, true);
        return bytes;
      }],
    ];
    it.each(hostile)('%s is rejected with the reader GgufError and nothing is written', async (_, make) => {
      const backend = await newBackend();
      await expect(createWeightStore(backend).importModel(namedSource(make(), 'bad.gguf'))).rejects.toBeInstanceOf(GgufError);
      expect(await backendContents(backend, ['bad.gguf'])).toEqual({ manifests: 0, records: 0 });
    });

    it('expert tensors whose last dimension is not the expert count are UNSUPPORTED_MODEL, nothing written', async () => {
      const bytes = writeGguf({
        metadata: [kvString('general.architecture', 'olmoe'), kvU32('olmoe.expert_count', 4)],
        tensors: [{ name: 'blk.0.ffn_up_exps.weight', type: GgmlType.F32, dims: [8, 4, 3], data: new Uint8Array(8 * 4 * 3 * 4) }],
      });
      const backend = await newBackend();
      const error = await expectStoreError(createWeightStore(backend).importModel(namedSource(bytes, 'odd.gguf')), 'UNSUPPORTED_MODEL');
      expect(error.message).toContain('blk.0.ffn_up_exps.weight');
      expect(await backendContents(backend, ['odd.gguf'])).toEqual({ manifests: 0, records: 0 });
    });
  });

  describe('management', () => {
    it('lists models with sizes, reports the total, deletes one model with all its records', async () => {
      const backend = await newBackend();
      const store = createWeightStore(backend);
      const a = await store.importModel(namedSource(tiny({ arch: 'llama', type: 'f16', layers: 1, experts: 2, merges: 10 }), 'a.gguf'));
      const b = await store.importModel(namedSource(tiny({ arch: 'olmoe', type: 'q4_0', layers: 2, experts: 2, merges: 10 }), 'b.gguf'));
      const models = await store.listModels();
      expect(models.map((m) => [m.modelId, m.state, m.architecture, m.storedBytes, m.presentBytes])).toEqual([
        ['a.gguf', 'complete', 'llama', a.manifest.storedBytes, a.manifest.storedBytes],
        ['b.gguf', 'complete', 'olmoe', b.manifest.storedBytes, b.manifest.storedBytes],
      ]);
      expect(a.manifest.storedBytes).toBe(manifestRecords(a.manifest).reduce((n, r) => n + r.bytes, 0));
      expect(await store.totalBytes()).toBe(a.manifest.storedBytes + b.manifest.storedBytes);

      expect(await store.deleteModel('a.gguf')).toBe(true);
      expect(await store.deleteModel('a.gguf')).toBe(false);
      expect(await backend.listRecordKeys('a.gguf')).toEqual([]);
      expect((await store.listModels()).map((m) => m.modelId)).toEqual(['b.gguf']);
      expect(await store.totalBytes()).toBe(b.manifest.storedBytes);
      await expectStoreError(store.openModel('a.gguf'), 'MODEL_NOT_FOUND');
      await store.openModel('b.gguf');
    });

    it('an unfinished import is listed with the bytes it has so far', async () => {
      const backend = await newBackend();
      const gguf = tiny({ arch: 'llama', type: 'q8_0', layers: 2, experts: 4, merges: 40 });
      await expect(createWeightStore(failingBackend(backend, { operation: 'putRecords', call: 4 }))
        .importModel(namedSource(gguf, 'half.gguf'), SMALL)).rejects.toBeInstanceOf(StoreError);
      const [summary] = await createWeightStore(backend).listModels();
      expect(summary.state).toBe('importing');
      expect(summary.presentBytes).toBeGreaterThan(0);
      expect(summary.presentBytes).toBeLessThan(summary.storedBytes);
    });

    it('re-importing the same file is a no-op; another file under the same id needs replace', async () => {
      const store = createWeightStore(await newBackend());
      const first = tiny({ arch: 'olmoe', type: 'f32', layers: 1, experts: 2, merges: 10 });
      const other = tiny({ arch: 'olmoe', type: 'f32', layers: 1, experts: 2, merges: 10, seed: 7 });
      await store.importModel(namedSource(first, 'm.gguf'));
      expect((await store.importModel(namedSource(first, 'm.gguf'))).alreadyComplete).toBe(true);
      await expectStoreError(store.importModel(namedSource(other, 'm.gguf')), 'MODEL_EXISTS');
      const replaced = await store.importModel(namedSource(other, 'm.gguf'), { replace: true });
      expect(replaced.alreadyComplete).toBe(false);
      const model = await store.openModel('m.gguf');
      const file = await parseGguf(other);
      expectSameBytes(await model.readExpert(0, 1), expectedExpert(other, file, 0, 1, FFN_PARTS, 2), 'replaced expert');
    });

    it('rejects model ids that cannot be stored', async () => {
      const store = createWeightStore(await newBackend());
      const gguf = tiny({ arch: 'olmoe', type: 'f32', layers: 1, experts: 2, merges: 10 });
      for (const modelId of ['', '../escape', 'a/b', '.hidden', 'x'.repeat(129)]) {
        await expectStoreError(store.importModel(namedSource(gguf, 'm.gguf'), { modelId }), 'BAD_MODEL_ID');
      }
    });

    it('stores the hyper-parameters, tokenizer and chat template in the manifest and metadata record', async () => {
      const store = createWeightStore(await newBackend());
      const gguf = tiny({ arch: 'qwen2moe', type: 'q8_0', layers: 1, experts: 2, merges: 30 });
      const { manifest } = await store.importModel(namedSource(gguf, 'q.gguf'));
      expect(manifest).toMatchObject({ architecture: 'qwen2moe', expertCount: 2, state: 'complete' });
      expect(manifest.scalars.find((s) => s.key === 'qwen2moe.expert_used_count')?.value).toBe(2);
      const metadata = decodeMetadata((await store.backend.getRecord('q.gguf', manifest.metadata.key))!);
      expect((metadata.get('tokenizer.ggml.tokens')!.value as { items: readonly unknown[] }).items.length).toBeGreaterThan(256);
    });
  });
}
