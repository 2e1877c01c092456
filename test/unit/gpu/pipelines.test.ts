/** Pipeline keys, their labels, and the cache's build-once behaviour (no GPU needed). */

import { describe, expect, it, vi } from 'vitest';
import { PipelineCache, pipelineLabel } from '../../../src/gpu/pipelines';

const fakePipeline = (label: string) => ({ label }) as unknown as GPUComputePipeline;

describe('pipelineLabel', () => {
  it('writes the op, string parts as values, numbers with their name, true flags by name', () => {
    expect(pipelineLabel({ op: 'rmsnorm', dtype: 'f32', wg: 64, weight: true })).toBe('rmsnorm_f32_wg64_weight');
  });

  it('leaves out false flags', () => {
    expect(pipelineLabel({ op: 'rmsnorm', dtype: 'f32', wg: 64, weight: false })).toBe('rmsnorm_f32_wg64');
  });

  it('is just the op for a key without parts', () => {
    expect(pipelineLabel({ op: 'argmax' })).toBe('argmax');
  });
});

describe('PipelineCache', () => {
  it('builds a key once and hands every caller the same pipeline, with the label', async () => {
    const cache = new PipelineCache();
    const build = vi.fn(async (label: string) => fakePipeline(label));
    const [a, b] = await Promise.all([
      cache.getOrCreate({ op: 'dequant', type: 'q8_0', wg: 64 }, build),
      cache.getOrCreate({ op: 'dequant', type: 'q8_0', wg: 64 }, build),
    ]);
    expect(build).toHaveBeenCalledTimes(1);
    expect(build).toHaveBeenCalledWith('dequant_q8_0_wg64');
    expect(a).toBe(b);
  });

  it('treats keys with the same parts in another order as the same', async () => {
    const cache = new PipelineCache();
    const build = vi.fn(async (label: string) => fakePipeline(label));
    await cache.getOrCreate({ op: 'x', a: 1, b: 2 }, build);
    await cache.getOrCreate({ b: 2, a: 1, op: 'x' }, build);
    expect(build).toHaveBeenCalledTimes(1);
  });

  it('keeps keys apart that share a label but differ in a false flag vs a missing one', async () => {
    const cache = new PipelineCache();
    const build = vi.fn(async (label: string) => fakePipeline(label));
    await cache.getOrCreate({ op: 'x', flag: false }, build);
    await cache.getOrCreate({ op: 'x' }, build);
    expect(cache.size).toBe(2);
  });

  it('forgets a failed build so that a later call retries', async () => {
    const cache = new PipelineCache();
    const key = { op: 'broken' };
    await expect(cache.getOrCreate(key, async () => Promise.reject(new Error('compile error')))).rejects.toThrow(
      'compile error',
    );
    await expect(cache.getOrCreate(key, async (label) => fakePipeline(label))).resolves.toEqual({ label: 'broken' });
  });
});
