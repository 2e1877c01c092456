/**
 * A ByteSource over a local file, for Node: positional reads through one
 * FileHandle, so reading a header never loads the tensor data. Every node:*
 * import of the GGUF layer lives in this file; browser code never imports it.
 */

import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { GgufError } from './errors';
import { checkReadRange } from './source';
import type { ByteSource } from './source';

export interface FileSource extends ByteSource {
  /** Closes the file handle; later reads fail. */
  close(): Promise<void>;
}

/** Opens `path` for reading; call close() when done. */
export async function sourceFromPath(path: string): Promise<FileSource> {
  let handle: FileHandle;
  let size: number;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw new GgufError('SOURCE_ERROR', 'source', 0, `cannot open ${path}: ${String(cause)}`, { cause });
  }
  try {
    size = (await handle.stat()).size;
  } catch (cause) {
    await handle.close();
    throw new GgufError('SOURCE_ERROR', 'source', 0, `cannot stat ${path}: ${String(cause)}`, { cause });
  }
  return {
    size,
    name: path,
    read: (offset, length) => readExactly(handle, path, size, offset, length),
    close: () => handle.close(),
  };
}

async function readExactly(handle: FileHandle, path: string, size: number, offset: number, length: number): Promise<Uint8Array> {
  checkReadRange(path, size, offset, length);
  const out = new Uint8Array(length);
  let filledBytes = 0;
  try {
    // A positional read may return fewer bytes than asked; loop until full.
    while (filledBytes < length) {
      const { bytesRead } = await handle.read(out, filledBytes, length - filledBytes, offset + filledBytes);
      if (bytesRead === 0) {
        throw new GgufError('SOURCE_ERROR', 'source', offset + filledBytes, `${path} ended early (it shrank after opening?)`);
      }
      filledBytes += bytesRead;
    }
  } catch (cause) {
    if (cause instanceof GgufError) throw cause;
    throw new GgufError('SOURCE_ERROR', 'source', offset, `reading ${path} failed: ${String(cause)}`, { cause });
  }
  return out;
}
