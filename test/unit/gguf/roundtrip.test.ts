/**
 * A file written by writeGguf reads back identically (metadata values and
 * types, tensor infos, tensor bytes) from every kind of source.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf, readTensorData, tensorDataRange } from '../../../src/gguf/reader';
import { sourceFromBlob, sourceFromBytes, sourceFromUrl } from '../../../src/gguf/source';
import type { ByteSource } from '../../../src/gguf/source';
import { sourceFromPath } from '../../../src/gguf/source-node';
import type { GgufFile } from '../../../src/gguf/types';
import { writeGguf } from '../../../src/gguf/writer';
import type { GgufWriteSpec } from '../../../src/gguf/writer';
import { expectGgufError, richSpec } from './fixtures';

const spec = richSpec(7, 64);
const bytes = writeGguf(spec);

async function expectMatchesSpec(source: ByteSource, file: GgufFile, expected: GgufWriteSpec): Promise<void> {
  expect(file.version).toBe(expected.version ?? 3);
  expect(file.fileBytes).toBe(source.size);
  expect([...file.metadata.keys()]).toEqual(expected.metadata.map((kv) => kv.key));
  expect([...file.metadata.values()]).toEqual(expected.metadata);
  expect(file.dataOffset % file.alignment).toBe(0);
  expect(file.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims }))).toEqual(
    expected.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims })),
  );
  for (const [i, tensor] of file.tensors.entries()) {
    expect(tensor.offset % file.alignment).toBe(0);
    expect(tensor.nBytes).toBe(expected.tensors[i].data.byteLength);
    expect(tensor.nElements).toBe(tensor.dims.reduce((a, b) => a * b, 1));
    expect(await readTensorData(source, file, tensor)).toEqual(expected.tensors[i].data);
  }
}

describe('round trip through writeGguf and readGguf', () => {
  it('reads back every value type, nested arrays and all tensors from bytes', async () => {
    const source = sourceFromBytes(bytes);
    const file = await readGguf(source);
    expect(file.alignment).toBe(64);
    await expectMatchesSpec(source, file, spec);
  });

  it('keeps 64-bit integers exact as bigint and multibyte strings intact', async () => {
    const file = await readGguf(sourceFromBytes(bytes));
    expect(file.metadata.get('v.u64max')?.value).toBe(2n ** 64n - 1n);
    expect(file.metadata.get('v.i64')?.value).toBe(-(2n ** 62n) - 3n);
    expect(file.metadata.get('v.utf8')?.value).toBe('héllo wörld, 世界, 🎉');
  });

  it('lays tensor data out in order, each padded to the alignment', async () => {
    const file = await readGguf(sourceFromBytes(bytes));
    let expectedOffset = 0;
    for (const tensor of file.tensors) {
      expect(tensor.offset).toBe(expectedOffset);
      expectedOffset += Math.ceil(tensor.nBytes / 64) * 64;
    }
    expect(file.dataOffset + expectedOffset).toBe(bytes.byteLength);
    const last = file.tensors[file.tensors.length - 1];
    expect(tensorDataRange(file, last)).toEqual({ offset: file.dataOffset + last.offset, length: last.nBytes });
  });

  it('reads version 2 files', async () => {
    const v2 = { ...richSpec(3, 32), version: 2 as const };
    const source = sourceFromBytes(writeGguf(v2));
    const file = await readGguf(source);
    expect(file.version).toBe(2);
    await expectMatchesSpec(source, file, v2);
  });

  it('reads a file with no tensors and no metadata', async () => {
    const file = await readGguf(sourceFromBytes(writeGguf({ metadata: [], tensors: [] })));
    expect(file.metadata.size).toBe(0);
    expect(file.tensors).toEqual([]);
    expect(file.alignment).toBe(32);
    expect(file.dataOffset).toBe(32);
  });

  it('reads from a Blob', async () => {
    const source = sourceFromBlob(new Blob([bytes]));
    await expectMatchesSpec(source, await readGguf(source), spec);
  });

  it('reads from a path and closes the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webmoe-gguf-'));
    try {
      const path = join(dir, 'rich.gguf');
      await writeFile(path, bytes);
      const source = await sourceFromPath(path);
      expect(source.size).toBe(bytes.byteLength);
      await expectMatchesSpec(source, await readGguf(source), spec);
      await source.close();
      await expectGgufError(() => source.read(0, 4), 'SOURCE_ERROR');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('sources reject reads outside the file', async () => {
    const fromBytes = sourceFromBytes(bytes);
    const fromBlob = sourceFromBlob(new Blob([bytes]));
    for (const source of [fromBytes, fromBlob]) {
      await expectGgufError(() => source.read(bytes.byteLength - 4, 5), 'SOURCE_ERROR', 'source', bytes.byteLength - 4);
      await expectGgufError(() => source.read(-1, 2), 'SOURCE_ERROR', 'source');
      expect(await source.read(bytes.byteLength, 0)).toHaveLength(0);
    }
  });

  it('reports a missing path as a SOURCE_ERROR', async () => {
    await expectGgufError(() => sourceFromPath(join(tmpdir(), 'webmoe-no-such-file.gguf')), 'SOURCE_ERROR', 'source');
  });
});

describe('reading over HTTP', () => {
  let server: Server;
  let baseUrl = '';
  const rangesAsked: string[] = [];

  /** Routes: /range (honours Range), /norange (always the whole file), /nototal (Content-Range without a total). */
  function handle(path: string, range: string | undefined): { status: number; headers: Record<string, string>; body: Uint8Array } {
    const match = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (path === '/range' && range) rangesAsked.push(range);
    if ((path === '/range' || path === '/nototal') && match) {
      const start = Number(match[1]);
      const end = Math.min(Number(match[2]), bytes.byteLength - 1);
      const total = path === '/range' ? String(bytes.byteLength) : '*';
      const body = bytes.subarray(start, end + 1);
      return { status: 206, headers: { 'Content-Range': `bytes ${start}-${end}/${total}` }, body };
    }
    return { status: 200, headers: {}, body: bytes };
  }

  beforeAll(async () => {
    server = createServer((req, res) => {
      const { status, headers, body } = handle(req.url ?? '', req.headers.range);
      res.writeHead(status, { ...headers, 'Content-Length': String(body.byteLength) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads with Range requests, learning the size from Content-Range', async () => {
    rangesAsked.length = 0;
    const source = await sourceFromUrl(`${baseUrl}/range`, { probeBytes: 100 });
    expect(source.size).toBe(bytes.byteLength);
    await expectMatchesSpec(source, await readGguf(source), spec);
    expect(rangesAsked[0]).toBe('bytes=0-99');
    expect(rangesAsked.length).toBeGreaterThan(spec.tensors.length);
  });

  it('passes caller headers and uses a custom fetch', async () => {
    const seen: Headers[] = [];
    const spyFetch: typeof fetch = (input, init) => {
      seen.push(new Headers(init?.headers));
      return fetch(input, init);
    };
    const source = await sourceFromUrl(`${baseUrl}/range`, { fetch: spyFetch, headers: { Authorization: 'Bearer t' } });
    await readGguf(source);
    expect(seen[0].get('authorization')).toBe('Bearer t');
    expect(seen[0].get('range')).toMatch(/^bytes=0-\d+$/);
  });

  it('rejects a server that ignores Range for a file larger than the first request', async () => {
    const error = await expectGgufError(() => sourceFromUrl(`${baseUrl}/norange`, { probeBytes: 1024 }), 'SOURCE_ERROR', 'source', 0);
    expect(error.message).toMatch(/ignored the Range header/);
  });

  it('accepts a server that ignores Range when the whole file fits in the first request', async () => {
    const source = await sourceFromUrl(`${baseUrl}/norange`, { probeBytes: bytes.byteLength });
    await expectMatchesSpec(source, await readGguf(source), spec);
  });

  it('rejects a Content-Range without a total size', async () => {
    const error = await expectGgufError(() => sourceFromUrl(`${baseUrl}/nototal`), 'SOURCE_ERROR');
    expect(error.message).toMatch(/size unknown/);
  });

  it('turns a network failure into a SOURCE_ERROR', async () => {
    const failingFetch: typeof fetch = () => Promise.reject(new TypeError('fetch failed'));
    const error = await expectGgufError(() => sourceFromUrl('http://example.invalid/x.gguf', { fetch: failingFetch }), 'SOURCE_ERROR');
    expect(error.cause).toBeInstanceOf(TypeError);
  });
});
