/**
 * Expert sources read the same bytes whether the model is opened from its
 * GGUF file or from the filesystem weight store (one record per expert), and
 * the load queue runs demand loads before prefetches, promoting a queued
 * prefetch that becomes needed.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ggufExpertSource, storedExpertSource } from '../../../src/experts/expert-source';
import { LoadQueue } from '../../../src/experts/load-queue';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { openFsWeightStore } from '../../../src/store/fs-node';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('expert sources', () => {
  it('the GGUF file and the filesystem store give every expert the same gate, up and down bytes', async () => {
    const bytes = makeTinyModel({ arch: 'olmoe', type: 'q4_0', layers: 2, experts: 4, merges: 40 });
    const file = await readGguf(sourceFromBytes(bytes));
    const names = new Map([0, 1].map((l) => [l, { gate: `blk.${l}.ffn_gate_exps.weight`, up: `blk.${l}.ffn_up_exps.weight`, down: `blk.${l}.ffn_down_exps.weight` }]));
    const fromFile = ggufExpertSource(file, sourceFromBytes(bytes, 'tiny.gguf'), names, 4);
    const dir = await mkdtemp(join(tmpdir(), 'webmoe-experts-'));
    dirs.push(dir);
    const store = await openFsWeightStore(dir);
    const { manifest } = await store.importModel(sourceFromBytes(bytes, 'tiny.gguf'));
    const fromStore = storedExpertSource(await store.openModel(manifest.modelId));
    for (let l = 0; l < 2; l++) {
      for (let e = 0; e < 4; e++) {
        const [a, b] = [await fromFile.readExpert(l, e), await fromStore.readExpert(l, e)];
        for (const part of ['gate', 'up', 'down'] as const) {
          expect(b[part].byteLength, `layer ${l} expert ${e} ${part}`).toBeGreaterThan(0);
          expect(Buffer.from(b[part]).equals(Buffer.from(a[part])), `layer ${l} expert ${e} ${part}`).toBe(true);
        }
        // Experts differ from each other: a wrong slice would not go unnoticed.
        if (e > 0) expect(Buffer.from(a.gate).equals(Buffer.from((await fromFile.readExpert(l, 0)).gate))).toBe(false);
      }
    }
    await expect(fromFile.readExpert(0, 4)).rejects.toThrow(/expert 4/);
  });

  it('both give gpt-oss experts their own gate, up and down biases', async () => {
    const bytes = makeTinyModel({ arch: 'gpt-oss', type: 'mxfp4', layers: 2, experts: 4, merges: 40 });
    const file = await readGguf(sourceFromBytes(bytes));
    const name = (l: number, part: string, kind: string) => `blk.${l}.ffn_${part}_exps.${kind}`;
    const names = new Map([0, 1].map((l) => [l, {
      gate: name(l, 'gate', 'weight'), up: name(l, 'up', 'weight'), down: name(l, 'down', 'weight'),
      biases: { gate: name(l, 'gate', 'bias'), up: name(l, 'up', 'bias'), down: name(l, 'down', 'bias') },
    }]));
    const fromFile = ggufExpertSource(file, sourceFromBytes(bytes, 'tiny.gguf'), names, 4);
    const dir = await mkdtemp(join(tmpdir(), 'webmoe-experts-'));
    dirs.push(dir);
    const store = await openFsWeightStore(dir);
    const { manifest } = await store.importModel(sourceFromBytes(bytes, 'tiny.gguf'));
    const fromStore = storedExpertSource(await store.openModel(manifest.modelId));
    const whole = (tensor: string): Float32Array => {
      const t = file.tensors.find((x) => x.name === tensor)!;
      const start = file.dataOffset + t.offset;
      return new Float32Array(bytes.slice(start, start + t.nBytes).buffer);
    };
    for (let l = 0; l < 2; l++) {
      for (let e = 0; e < 4; e++) {
        const [a, b] = [await fromFile.readExpert(l, e), await fromStore.readExpert(l, e)];
        for (const [part, key, width] of [['gate', 'gateBias', 64], ['up', 'upBias', 64], ['down', 'downBias', 64]] as const) {
          const expected = whole(name(l, part, 'bias')).slice(e * width, (e + 1) * width);
          expect(Array.from(a[key]!), `file: layer ${l} expert ${e} ${part} bias`).toEqual(Array.from(expected));
          expect(Array.from(b[key]!), `store: layer ${l} expert ${e} ${part} bias`).toEqual(Array.from(expected));
        }
      }
    }
  });
});

describe('load queue', () => {
  it('runs demand loads before prefetches and promotes a queued prefetch', async () => {
    const queue = new LoadQueue(1);
    const order: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const job = (key: number, wait?: Promise<void>) => async () => {
      await wait;
      order.push(key);
    };
    const done = [
      queue.add(1, 'prefetch', job(1, gate)), // runs first, holds the only lane
      queue.add(2, 'prefetch', job(2)),
      queue.add(3, 'prefetch', job(3)),
      queue.add(4, 'demand', job(4)),
    ];
    expect(queue.promote(3)).toBe(true);
    expect(queue.promote(1)).toBe(false); // already running
    expect(queue.pending).toBe(4);
    release();
    await Promise.all(done);
    expect(order).toEqual([1, 4, 3, 2]);
  });
});
