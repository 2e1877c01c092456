/**
 * Random-access byte sources for GGUF files: in-memory bytes, a Blob/File
 * (sliced, never read whole) and an HTTP URL (Range requests). The reader asks
 * for exact ranges only; each source either returns exactly the bytes asked
 * for or throws a GgufError with code SOURCE_ERROR. Node file paths live in
 * source-node.ts so that browser bundles never pull in node:* modules.
 * Also the buffered cursor the header reader parses through.
 */

import { GgufError } from './errors';

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Exactly `length` bytes starting at `offset`; rejects when the range is
   * outside [0, size). The result may share memory with the source.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Human-readable origin (file name, URL) for messages. */
  readonly name: string;
}

/** Throws SOURCE_ERROR unless [offset, offset + length) is a valid range of a source of `size` bytes. */
export function checkReadRange(name: string, size: number, offset: number, length: number): void {
  const valid =
    Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && length <= size - offset;
  if (!valid) {
    throw new GgufError('SOURCE_ERROR', 'source', offset, `read of ${length} bytes at ${offset} is outside ${name} (${size} bytes)`);
  }
}

/** A source over bytes already in memory; reads are views, not copies. */
export function sourceFromBytes(data: ArrayBuffer | Uint8Array, name = 'bytes'): ByteSource {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return {
    size: bytes.byteLength,
    name,
    read(offset, length) {
      checkReadRange(name, bytes.byteLength, offset, length);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

/** A source over a Blob or File; each read slices the blob, so a multi-GB file is never loaded whole. */
export function sourceFromBlob(blob: Blob): ByteSource {
  const name = typeof (blob as { name?: unknown }).name === 'string' ? (blob as File).name : 'blob';
  return {
    size: blob.size,
    name,
    async read(offset, length) {
      checkReadRange(name, blob.size, offset, length);
      let buffer: ArrayBuffer;
      try {
        buffer = await blob.slice(offset, offset + length).arrayBuffer();
      } catch (cause) {
        throw new GgufError('SOURCE_ERROR', 'source', offset, `reading ${name} failed: ${String(cause)}`, { cause });
      }
      if (buffer.byteLength !== length) {
        // A File whose underlying file changed size since it was picked.
        throw new GgufError('SOURCE_ERROR', 'source', offset, `${name} returned ${buffer.byteLength} bytes, expected ${length}`);
      }
      return new Uint8Array(buffer);
    },
  };
}

export interface UrlSourceOptions {
  /** fetch implementation (defaults to the global fetch). */
  fetch?: typeof fetch;
  /** Extra request headers (e.g. Authorization); Range is set by the source. */
  headers?: Record<string, string>;
  /** Bytes asked for by the first request, which also learns the total size. */
  probeBytes?: number;
}

const DEFAULT_PROBE_BYTES = 256 * 1024;

/**
 * A source over an HTTP(S) URL using Range requests. The first request asks
 * for the first `probeBytes` and learns the total size from Content-Range;
 * those bytes are kept and answer reads that fall inside them. A server that
 * ignores Range is an error unless the whole file fits in the probe.
 */
export async function sourceFromUrl(url: string, options: UrlSourceOptions = {}): Promise<ByteSource> {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const probeBytes = Math.max(1, options.probeBytes ?? DEFAULT_PROBE_BYTES);
  const headers = options.headers ?? {};
  const response = await fetchRange(fetchFn, url, headers, 0, probeBytes);

  if (response.status === 200) {
    // Range ignored: acceptable only when the whole file is no larger than the probe.
    const whole = await readBodyAtMost(response, probeBytes, url);
    return sourceFromBytes(whole, url);
  }
  if (response.status === 416) {
    const size = totalFromContentRange(response.headers.get('content-range'));
    await response.body?.cancel();
    if (size === 0) return sourceFromBytes(new Uint8Array(0), url);
    throw sourceError(url, 0, `server answered 416 to a Range request for the first ${probeBytes} bytes`);
  }
  if (response.status !== 206) {
    await response.body?.cancel();
    throw sourceError(url, 0, `HTTP ${response.status} ${response.statusText}`);
  }
  const size = totalFromContentRange(response.headers.get('content-range'));
  if (size === undefined) {
    await response.body?.cancel();
    throw sourceError(url, 0, `total size unknown: Content-Range is ${JSON.stringify(response.headers.get('content-range'))}`);
  }
  const probe = await readPartialBody(response, url, 0, Math.min(probeBytes, size));
  return new UrlSource(url, size, probe, fetchFn, headers);
}

class UrlSource implements ByteSource {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly prefix: Uint8Array,
    private readonly fetchFn: typeof fetch,
    private readonly headers: Record<string, string>,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkReadRange(this.name, this.size, offset, length);
    if (offset + length <= this.prefix.byteLength) return this.prefix.subarray(offset, offset + length);
    if (length === 0) return new Uint8Array(0);
    const response = await fetchRange(this.fetchFn, this.name, this.headers, offset, length);
    if (response.status !== 206) {
      await response.body?.cancel();
      throw sourceError(this.name, offset, `expected 206 Partial Content for a Range request, got HTTP ${response.status}`);
    }
    const total = totalFromContentRange(response.headers.get('content-range'));
    if (total !== this.size) {
      await response.body?.cancel();
      throw sourceError(this.name, offset, `the file changed size on the server (${this.size} → ${total ?? 'unknown'} bytes)`);
    }
    return readPartialBody(response, this.name, offset, length);
  }
}

function sourceError(url: string, offset: number, detail: string, cause?: unknown): GgufError {
  return new GgufError('SOURCE_ERROR', 'source', offset, `${url}: ${detail}`, cause === undefined ? undefined : { cause });
}

async function fetchRange(
  fetchFn: typeof fetch,
  url: string,
  headers: Record<string, string>,
  offset: number,
  length: number,
): Promise<Response> {
  const range = `bytes=${offset}-${offset + Math.max(length, 1) - 1}`;
  try {
    return await fetchFn(url, { headers: { ...headers, Range: range } });
  } catch (cause) {
    throw sourceError(url, offset, `request for ${range} failed: ${String(cause)}`, cause);
  }
}

/** Total size from a Content-Range header ("bytes 0-99/1234", or the star form of a 416), or undefined. */
function totalFromContentRange(header: string | null): number | undefined {
  const match = header === null ? null : /^bytes\s+(?:\d+-\d+|\*)\/(\d+)\s*$/i.exec(header.trim());
  if (!match) return undefined;
  const total = Number(match[1]);
  return Number.isSafeInteger(total) ? total : undefined;
}

/** First byte of a "bytes a-b/total" Content-Range, or undefined. */
function startFromContentRange(header: string | null): number | undefined {
  const match = header === null ? null : /^bytes\s+(\d+)-\d+\//i.exec(header.trim());
  return match ? Number(match[1]) : undefined;
}

async function readPartialBody(response: Response, url: string, offset: number, length: number): Promise<Uint8Array> {
  const start = startFromContentRange(response.headers.get('content-range'));
  if (start !== offset) {
    await response.body?.cancel();
    throw sourceError(url, offset, `server sent a range starting at ${start ?? 'unknown'}, asked for ${offset}`);
  }
  const body = await readBodyAtMost(response, length, url, offset);
  if (body.byteLength !== length) {
    throw sourceError(url, offset, `server sent ${body.byteLength} bytes, asked for ${length}`);
  }
  return body;
}

/** The response body, failing as soon as it grows past `maxBytes` (so an ignored Range never downloads a whole model). */
async function readBodyAtMost(response: Response, maxBytes: number, url: string, offset = 0): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw sourceError(url, offset, rangeIgnoredDetail(response, maxBytes));
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let receivedBytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      receivedBytes += value.byteLength;
      if (receivedBytes > maxBytes) {
        await reader.cancel();
        throw sourceError(url, offset, rangeIgnoredDetail(response, maxBytes));
      }
      chunks.push(value);
    }
  } catch (cause) {
    if (cause instanceof GgufError) throw cause;
    throw sourceError(url, offset, `reading the response body failed: ${String(cause)}`, cause);
  }
  return concatChunks(chunks, receivedBytes);
}

function rangeIgnoredDetail(response: Response, askedBytes: number): string {
  return response.status === 200
    ? `server ignored the Range header (HTTP 200 with a body larger than the ${askedBytes} bytes asked for); it must support Range requests`
    : `server sent more than the ${askedBytes} bytes asked for`;
}

function concatChunks(chunks: Uint8Array[], totalBytes: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(totalBytes);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------- buffered cursor

/** Thrown by the cursor when a field lies in the source but past the buffered bytes. */
export class NeedMoreBytes {
  constructor(readonly endOffset: number) {}
}

export interface ByteCursorOptions {
  /** No byte at or past this offset is read; fields reaching past it are LIMIT_EXCEEDED. */
  limitBytes: number;
  /** Name of the limit, for messages. */
  limitName: string;
  /** Size of the first read; each later read doubles it (up to 64 MiB). */
  initialChunkBytes: number;
}

const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Sequential little-endian reads over a ByteSource through a growing buffer.
 * Reads are synchronous: need() throws NeedMoreBytes when a field lies past
 * the buffer, and parseWithRefill() fetches more and parses the item again.
 */
export class ByteCursor {
  /** Absolute offset of the next byte to parse. */
  pos = 0;
  private buffer = new Uint8Array(0);
  private view = new DataView(this.buffer.buffer);
  /** Absolute offset of buffer[0]. */
  private bufferStart = 0;
  private chunkBytes: number;
  private readonly readableEnd: number;

  constructor(private readonly source: ByteSource, private readonly options: ByteCursorOptions) {
    this.chunkBytes = Math.max(1, options.initialChunkBytes);
    this.readableEnd = Math.min(source.size, options.limitBytes);
  }

  /** Whether `n` bytes at pos are buffered. */
  has(n: number): boolean {
    return this.pos + n <= this.bufferStart + this.buffer.byteLength;
  }

  /** Ensures `n` bytes at pos are buffered; `field` and `fieldOffset` name them in errors. */
  need(n: number, field: string, fieldOffset = this.pos): void {
    if (this.has(n)) return;
    this.checkAvailable(n, field, fieldOffset);
    throw new NeedMoreBytes(this.pos + n);
  }

  /** Throws TRUNCATED or LIMIT_EXCEEDED unless `n` more bytes after pos exist in the source and fit in the limit. */
  checkAvailable(n: number, field: string, fieldOffset = this.pos): void {
    if (n > this.source.size - this.pos) {
      throw new GgufError('TRUNCATED', field, fieldOffset,
        `needs ${n} bytes from byte ${this.pos}, but the file ends at byte ${this.source.size}`);
    }
    if (n > this.options.limitBytes - this.pos) {
      throw new GgufError('LIMIT_EXCEEDED', field, fieldOffset,
        `needs ${n} bytes from byte ${this.pos}, past ${this.options.limitName} (${this.options.limitBytes})`);
    }
  }

  /** Buffers bytes up to at least `endOffset`, dropping those before `keepFrom`. */
  async fetch(endOffset: number, keepFrom: number): Promise<void> {
    const bufferEnd = this.bufferStart + this.buffer.byteLength;
    const newEnd = Math.min(this.readableEnd, Math.max(endOffset, bufferEnd + this.chunkBytes));
    this.chunkBytes = Math.min(this.chunkBytes * 2, MAX_CHUNK_BYTES);
    const fresh = await this.readSource(bufferEnd, newEnd - bufferEnd);
    const kept = this.buffer.subarray(keepFrom - this.bufferStart);
    const merged = new Uint8Array(kept.byteLength + fresh.byteLength);
    merged.set(kept);
    merged.set(fresh, kept.byteLength);
    this.buffer = merged;
    this.view = new DataView(merged.buffer);
    this.bufferStart = keepFrom;
  }

  private async readSource(offset: number, length: number): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await this.source.read(offset, length);
    } catch (cause) {
      if (cause instanceof GgufError) throw cause;
      throw new GgufError('SOURCE_ERROR', 'source', offset, `reading ${this.source.name} failed: ${String(cause)}`, { cause });
    }
    if (bytes.byteLength !== length) {
      throw new GgufError('SOURCE_ERROR', 'source', offset, `${this.source.name} returned ${bytes.byteLength} bytes, asked for ${length}`);
    }
    return bytes;
  }

  private advance(n: number): number {
    const at = this.pos - this.bufferStart;
    this.pos += n;
    return at;
  }

  u8(): number { return this.buffer[this.advance(1)]; }
  i8(): number { return this.view.getInt8(this.advance(1)); }
  u16(): number { return this.view.getUint16(this.advance(2), true); }
  i16(): number { return this.view.getInt16(this.advance(2), true); }
  u32(): number { return this.view.getUint32(this.advance(4), true); }
  i32(): number { return this.view.getInt32(this.advance(4), true); }
  u64(): bigint { return this.view.getBigUint64(this.advance(8), true); }
  /** A u64 as a number, or -1 when above 2^53 - 1 (cheaper than a bigint for the many lengths). */
  u64Size(): number {
    const at = this.advance(8);
    const high = this.view.getUint32(at + 4, true);
    return high > 0x1fffff ? -1 : high * 0x100000000 + this.view.getUint32(at, true);
  }
  i64(): bigint { return this.view.getBigInt64(this.advance(8), true); }
  f32(): number { return this.view.getFloat32(this.advance(4), true); }
  f64(): number { return this.view.getFloat64(this.advance(8), true); }
  take(n: number): Uint8Array {
    const at = this.advance(n);
    return this.buffer.subarray(at, at + n);
  }
  /** The u64 just before pos, exactly (for messages about values too large for u64Size). */
  previousU64(): bigint { return this.view.getBigUint64(this.pos - this.bufferStart - 8, true); }
}

/** Runs a synchronous parse of one item, fetching more bytes and retrying from its start until it fits. */
export async function parseWithRefill<T>(cur: ByteCursor, parse: () => T): Promise<T> {
  const start = cur.pos;
  for (;;) {
    try {
      return parse();
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      cur.pos = start;
      await cur.fetch(e.endOffset, start);
    }
  }
}
