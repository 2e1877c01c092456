/**
 * Importing a multi-GB GGUF into the filesystem store holds a bounded amount
 * of memory: the importer reads, hashes and writes about two batches at a
 * time (16 MiB each by default), whatever the file's size. The file is a
 * sparse 2.1 GB GGUF (a real header whose expert tensors have OLMoE-1B-7B's
 * shapes, data all zeros, taking no disk until imported); JS heap plus
 * ArrayBuffer memory is sampled every 2 ms through the import and its peak
 * held to PEAK_BOUND_BYTES above the level before it.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { sourceFromPath } from '../../../src/gguf/source-node';
import { openFsWeightStore } from '../../../src/store/fs-node';
import { makeTinyModel } from '../../../src/tiny/make-tiny';
import { specOf, writeHeader } from '../models/support/mutant-gguf';

/**
 * Stated bound on what an import holds above the level before it: eight
 * default batches. Measured 90 MiB for this file, garbage not yet collected
 * included (the samples take no collection: they see what the process holds).
 */
const PEAK_BOUND_BYTES = 128 * 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'webmoe-big-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A collection now, so the samples measure what is held rather than garbage not yet collected. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const heldBytes = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('importing a multi-GB file', () => {
  it(`holds at most ${PEAK_BOUND_BYTES / 2 ** 20} MiB more than before, from a 2.1 GB sparse GGUF`, async () => {
    const base = makeTinyModel({ arch: 'olmoe', type: 'q8_0', seed: 1, layers: 5, experts: 64, topK: 8 });
    const spec = specOf(await readGguf(sourceFromBytes(base)));
    // OLMoE-1B-7B's expert tensors: hidden 2048, expert FFN 1024, 64 experts (ggml order: row length first).
    for (const t of spec.tensors) {
      if (/ffn_(gate|up)_exps/.test(t.name)) t.dims = [2048, 1024, 64];
      if (/ffn_down_exps/.test(t.name)) t.dims = [1024, 2048, 64];
    }
    const { header, size } = writeHeader(spec);
    const path = join(dir, 'big.gguf');
    writeFileSync(path, header);
    truncateSync(path, size);
    expect(size).toBeGreaterThan(2e9);

    const store = await openFsWeightStore(join(dir, 'store'));
    const source = await sourceFromPath(path);
    collectGarbage();
    const before = heldBytes();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, heldBytes())), 2);
    let phases = new Set<string>();
    try {
      const result = await store.importModel(source, { modelId: 'big', onProgress: (p) => (phases = phases.add(p.phase)) });
      expect(result.manifest.state).toBe('complete');
      expect(result.bytesWritten).toBeGreaterThan(2e9);
    } finally {
      clearInterval(sampler);
      await source.close();
    }
    peak = Math.max(peak, heldBytes());
    console.log(`import of ${(size / 1e9).toFixed(2)} GB (${[...phases].join(', ')}): peak ${((peak - before) / 2 ** 20).toFixed(1)} MiB above the ${(before / 2 ** 20).toFixed(1)} MiB before`);
    expect(peak - before).toBeLessThanOrEqual(PEAK_BOUND_BYTES);
    expect((await store.listModels()).find((m) => m.modelId === 'big')?.storedBytes).toBeGreaterThan(2e9);
  }, 300_000);
});
