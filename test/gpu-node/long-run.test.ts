/**
 * Long runs leave nothing behind. Requests in a row on two engines (one with
 * every expert resident, one streaming experts from the store under a small
 * budget), of seeded mixed lengths, streamed or whole, one in ten aborted
 * after its first piece; then load/unload cycles. Measured at request 0
 * (after a first one), at 100 and at the end: GPU buffers alive on the
 * engines' devices, open file descriptors, JS heap (after a collection) and
 * the store's size. Buffers, descriptors and store size must not change from
 * 100 on, the heap may not grow by more than HEAP_GROWTH_BOUND, and every
 * unloaded engine's buffers are destroyed and its file closed.
 * WEBMOE_LONG_RUN_REQUESTS and WEBMOE_LONG_RUN_CYCLES set the counts
 * (default 120 and 10; `npm run test:long-run` runs 1,000 and 50).
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { WebMoeError } from '../../src/api/errors';
import { createClient } from '../../src/api/openai';
import type { WebMoeEngine } from '../../src/api/types';
import { serviceLoadOptions } from '../../src/api/worker-client';
import { EngineService } from '../../src/engine/service';
import { mulberry32 } from '../../src/quant/random';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { countingPlatform } from '../support/gpu-buffers';
import type { DeviceBuffers } from '../support/gpu-buffers';

const REQUESTS = Number(process.env.WEBMOE_LONG_RUN_REQUESTS ?? 120);
const CYCLES = Number(process.env.WEBMOE_LONG_RUN_CYCLES ?? 10);
/** JS heap growth allowed from request 100 to the end (garbage the collection left, caches of tokenizer pieces). */
const HEAP_GROWTH_BOUND = 8 * 2 ** 20;
const WORDS = ['the', 'river', 'mill', 'water', 'wheel', 'song', 'children', 'evening', 'light', 'fish', 'bank', 'old'];

const dir = mkdtempSync(join(tmpdir(), 'webmoe-long-'));
const storeDir = join(dir, 'store');
const modelPath = join(dir, 'tiny.gguf');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

function directoryBytes(path: string): number {
  return readdirSync(path, { withFileTypes: true }).reduce((sum, e) => {
    const child = join(path, e.name);
    return sum + (e.isDirectory() ? directoryBytes(child) : statSync(child).size);
  }, 0);
}

interface Snapshot {
  request: number;
  liveBuffers: number;
  descriptors: number;
  heapMiB: number;
  storeBytes: number;
}

/** An engine whose devices' buffers are counted. */
async function countedEngine(devices: DeviceBuffers[], options: { model: string; expertBudgetMB?: number }): Promise<WebMoeEngine> {
  const core = new EngineService(countingPlatform(devices));
  const loaded = await core.load(options.model, serviceLoadOptions({ ...options, storeDir, contextLength: 128 }));
  return createClient(core, loaded.model);
}

describe('a long run', () => {
  it(`serves ${REQUESTS} mixed requests and ${CYCLES} load/unload cycles with flat buffers, descriptors, heap and store`, async () => {
    writeFileSync(modelPath, makeTinyModel({ arch: 'olmoe', type: 'q8_0', seed: 21, layers: 2, experts: 16, topK: 2, expertFF: 128 }));
    const resident: DeviceBuffers[] = [];
    const streamed: DeviceBuffers[] = [];
    const a = await countedEngine(resident, { model: modelPath });
    // The streaming engine reads the model from the store: import it first (by path), then load it by id.
    await a.models.import(modelPath, { id: 'long-run' });
    const b = await countedEngine(streamed, { model: 'long-run', expertBudgetMB: 0.1 });
    const rng = mulberry32(1000);
    const snapshots: Snapshot[] = [];
    const snapshot = (request: number) => {
      collectGarbage();
      snapshots.push({
        request,
        liveBuffers: resident.at(-1)!.live.size + streamed.at(-1)!.live.size,
        descriptors: openDescriptors(),
        heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
        storeBytes: directoryBytes(storeDir),
      });
    };
    const outcomes = { whole: 0, streamed: 0, aborted: 0, streamedExperts: 0 };
    try {
      for (let i = 0; i <= REQUESTS; i++) {
        const engine = i % 2 ? b : a;
        const prompt = Array.from({ length: 1 + Math.floor(rng() * 12) }, () => WORDS[Math.floor(rng() * WORDS.length)]).join(' ');
        const request = { prompt, max_tokens: 1 + Math.floor(rng() * 8), temperature: rng() < 0.5 ? 0 : 0.8, seed: i };
        if (i % 10 === 5) {
          const controller = new AbortController();
          const error = await (async () => {
            for await (const chunk of await engine.completions.create({ ...request, max_tokens: 24, stream: true, signal: controller.signal })) {
              if (chunk.choices[0]?.text) controller.abort();
            }
          })().then(() => undefined, (e: unknown) => e);
          // A reply that ends before its first piece of text finishes normally.
          if (error !== undefined) {
            expect(error).toBeInstanceOf(WebMoeError);
            expect((error as WebMoeError).code).toBe('ABORTED');
            outcomes.aborted++;
          }
        } else if (i % 3 === 0) {
          let usage;
          for await (const chunk of await engine.completions.create({ ...request, stream: true })) usage = chunk.usage ?? usage;
          // An end token may come first: zero tokens is a valid reply.
          expect(usage?.completion_tokens).toBeLessThanOrEqual(request.max_tokens);
          outcomes.streamed++;
        } else {
          const reply = await engine.completions.create(request);
          expect(['stop', 'length']).toContain(reply.choices[0].finish_reason);
          if (engine === b) outcomes.streamedExperts += reply.usage.moe.expert_misses;
          outcomes.whole++;
        }
        if (i === 0 || i === 100 || i === REQUESTS) snapshot(i);
      }
    } finally {
      await a.unload();
      await b.unload();
    }
    expect(resident.at(-1)!.live.size + streamed.at(-1)!.live.size, 'unload destroys every buffer').toBe(0);
    expect(outcomes.streamedExperts, 'the budgeted engine streamed experts').toBeGreaterThan(0);

    // Load/unload cycles: the model read in place from its file, and from the store.
    const cycled: DeviceBuffers[] = [];
    collectGarbage();
    const descriptorsBefore = openDescriptors();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let c = 0; c < CYCLES; c++) {
      const engine = await countedEngine(cycled, { model: c % 2 ? 'long-run' : modelPath, expertBudgetMB: c % 2 ? 0.1 : undefined });
      await engine.completions.create({ prompt: 'the old mill', max_tokens: 2, temperature: 0 });
      await engine.unload();
      expect(cycled.at(-1)!.live.size, `cycle ${c}`).toBe(0);
    }
    collectGarbage();
    const cycles = { descriptors: openDescriptors() - descriptorsBefore, heapMiB: (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20 };

    console.log(
      `long run: ${REQUESTS} requests (${outcomes.whole} whole, ${outcomes.streamed} streamed, ${outcomes.aborted} aborted; ` +
        `${outcomes.streamedExperts} experts streamed), at ` +
        snapshots.map((s) => `${s.request}: ${s.liveBuffers} buffers, ${s.descriptors} fds, heap ${s.heapMiB.toFixed(1)} MiB, store ${s.storeBytes} B`).join('; ') +
        `; ${CYCLES} load/unload cycles: ${cycles.descriptors} fds and ${cycles.heapMiB.toFixed(1)} MiB of heap more after them, every buffer destroyed`,
    );
    const [, at100, atEnd] = snapshots;
    expect(atEnd.liveBuffers).toBe(at100.liveBuffers);
    expect(atEnd.descriptors).toBe(at100.descriptors);
    expect(atEnd.storeBytes).toBe(at100.storeBytes);
    expect((atEnd.heapMiB - at100.heapMiB) * 2 ** 20).toBeLessThanOrEqual(HEAP_GROWTH_BOUND);
    expect(cycles.descriptors).toBe(0);
    expect(cycles.heapMiB * 2 ** 20).toBeLessThanOrEqual(HEAP_GROWTH_BOUND);
    expect(outcomes.aborted).toBeGreaterThan(0);
  }, 900_000);
});
