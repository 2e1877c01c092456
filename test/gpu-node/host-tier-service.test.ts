/**
 * The host tier through the service (createEngine's hostBudgetMB, as the
 * worker takes it): it reaches the same tier, reports it in usage.moe, and
 * refuses a negative budget as BAD_REQUEST. The tier's own behaviour under a
 * streamed engine is tested in test/gpu/host-tier.test.ts (Node and Chromium).
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const LAYERS = 2;
const EXPERTS = 8;

describe('host tier through the service', () => {
  it('takes hostBudgetMB through the service, as the worker does, and reports the tiers in usage.moe', async () => {
    const bytes = makeTinyModel({ arch: 'olmoe', seed: 11, layers: LAYERS, type: 'q8_0', experts: EXPERTS, topK: 2 });
    const file = await readGguf(sourceFromBytes(bytes));
    const routedBytes = file.tensors.filter((t) => /_exps\./.test(t.name)).reduce((sum, t) => sum + t.nBytes, 0);
    const dir = mkdtempSync(join(tmpdir(), 'webmoe-host-tier-'));
    const path = join(dir, 'tiny.gguf');
    writeFileSync(path, bytes);
    const hostBudgetMB = 1;
    const api = await createEngine({ model: path, storeDir: join(dir, 'store'), contextLength: 64, expertBudgetMB: routedBytes / 4 / 2 ** 20, hostBudgetMB });
    try {
      const reply = await api.completions.create({ prompt: 'The river', max_tokens: 4, temperature: 0 });
      const moe = reply.usage.moe;
      expect(moe.host_budget_bytes).toBe(hostBudgetMB * 2 ** 20);
      expect(routedBytes).toBeLessThan(moe.host_budget_bytes); // room for every expert: each is read from the store once at most
      expect(moe.store_reads).toBeGreaterThan(0);
      expect(moe.store_reads).toBeLessThanOrEqual(LAYERS * EXPERTS);
      expect(moe.expert_hits + moe.expert_misses).toBeGreaterThan(0);
    } finally {
      await api.unload();
    }
    const refused = await createEngine({ model: path, storeDir: join(dir, 'store'), contextLength: 64, hostBudgetMB: -1 }).then(
      () => undefined,
      (error: unknown) => error as { code?: string; message?: string },
    );
    rmSync(dir, { recursive: true, force: true });
    expect(refused?.code).toBe('BAD_REQUEST');
    expect(refused?.message).toMatch(/hostBudgetMB must be a number >= 0, got -1/);
  });
});
