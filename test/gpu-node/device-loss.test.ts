/**
 * A GPU device destroyed in the middle of a streamed reply, while experts
 * stream from the store under a budget (with pre-gating prefetch), ten
 * times over: each stream ends with DEVICE_LOST, the next request recreates
 * the device, reloads the model and answers as before the first loss, and no
 * GPU buffer outlives its device: every buffer created on a lost device has
 * been destroyed, and each new device holds as many buffers as the first.
 * Buffers are counted by wrapping each device's createBuffer.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/api/openai';
import { serviceLoadOptions } from '../../src/api/worker-client';
import { WebMoeError } from '../../src/api/errors';
import { EngineService } from '../../src/engine/service';
import { makeTinyModel } from '../../src/tiny/make-tiny';
import { countingPlatform } from '../support/gpu-buffers';
import type { DeviceBuffers } from '../support/gpu-buffers';

const CYCLES = 10;
const dir = mkdtempSync(join(tmpdir(), 'webmoe-loss-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('device loss while a reply streams, with experts streaming', () => {
  it(`recovers ${CYCLES} times with the same answer and no buffer left behind`, async () => {
    const path = join(dir, 'tiny.gguf');
    // 16 experts of ~100 KB per layer: a 0.5 MB budget keeps a few resident and streams the rest.
    writeFileSync(path, makeTinyModel({ arch: 'qwen3moe', type: 'q8_0', seed: 8, layers: 2, hidden: 128, experts: 16, topK: 2, expertFF: 256 }));
    const devices: DeviceBuffers[] = [];
    const core = new EngineService(countingPlatform(devices));
    const options = { model: path, storeDir: join(dir, 'store'), contextLength: 64, expertBudgetMB: 0.5, prefetch: 'pregate' as const };
    const loaded = await core.load(path, serviceLoadOptions(options));
    const engine = createClient(core, loaded.model);
    try {
      const request = { prompt: 'The river ran past the old mill', max_tokens: 12, temperature: 0 };
      const expected = (await engine.completions.create(request)).choices[0].text;
      expect((await engine.stats()).memory!.streaming).toBe(true);
      const firstDeviceBuffers = devices[0].live.size;

      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        let pieces = 0;
        const error = await (async () => {
          for await (const chunk of await engine.completions.create({ ...request, max_tokens: 40, stream: true })) {
            if (chunk.choices[0]?.text && ++pieces === 2) await engine.simulateDeviceLoss();
          }
        })().then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(WebMoeError);
        expect((error as WebMoeError).code).toBe('DEVICE_LOST');
        const after = await engine.completions.create(request);
        expect(after.choices[0].text, `cycle ${cycle}`).toBe(expected);
        expect(after.usage.moe.expert_misses, 'experts still stream after recovery').toBeGreaterThan(0);
        expect(devices).toHaveLength(cycle + 1);
        // The lost device's buffers were all destroyed; the new one holds what the first did.
        expect(devices[cycle - 1].live.size, `buffers left on lost device ${cycle - 1}`).toBe(0);
        expect(devices[cycle].live.size).toBe(firstDeviceBuffers);
      }
      expect((await engine.stats()).device_losses).toBe(CYCLES);
      console.log(
        `${CYCLES} losses mid-stream with experts streaming: each device created ${devices.map((d) => d.created).join(', ')} buffers; ` +
          `${firstDeviceBuffers} live on each after a request; 0 left on every lost device`,
      );
    } finally {
      await engine.unload();
    }
    expect(devices.at(-1)!.live.size, 'unload destroys every buffer').toBe(0);
  }, 300_000);
});
