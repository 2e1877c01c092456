/** What createEngine sends to the engine worker: its load options as plain data (the same object the Node API passes in-thread). */
import { describe, expect, it } from 'vitest';
import { serviceLoadOptions } from '../../../src/api/worker-client';

describe('serviceLoadOptions', () => {
  it('carries the GPU and host budgets, policy, prefetch and context through to the service', () => {
    const options = serviceLoadOptions({
      model: 'stored-id', expertBudgetMB: 96, hostBudgetMB: 512, expertPolicy: 'lru', prefetch: 'affinity', contextLength: 256, databaseName: 'db',
    });
    expect(options).toEqual({
      modelId: undefined, expertBudgetMB: 96, hostBudgetMB: 512, expertPolicy: 'lru', prefetch: { predictor: 'affinity' }, contextLength: 256,
      storeDir: undefined, databaseName: 'db',
    });
    // 0 turns the host tier off: it must arrive as 0, not as unset (the default).
    expect(serviceLoadOptions({ model: 'm', hostBudgetMB: 0 }).hostBudgetMB).toBe(0);
    expect(structuredClone(options)).toEqual(options);
  });
});
