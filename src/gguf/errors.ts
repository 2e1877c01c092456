/**
 * The one error type of the GGUF layer. Every failure to read (or write) a
 * GGUF file is a GgufError naming what went wrong (`code`), which field of the
 * file it concerns (`field`) and where that field starts (`offset`), so that a
 * caller can react to the kind of failure and a person can find the bad bytes.
 */

export type GgufErrorCode =
  /** The first four bytes are not "GGUF". */
  | 'BAD_MAGIC'
  /** A version other than 2 or 3 (v1 used 32-bit counts and is not read). */
  | 'UNSUPPORTED_VERSION'
  /** The file ends before the bytes the header declares. */
  | 'TRUNCATED'
  /** A count, length, size or nesting depth beyond a configured limit. */
  | 'LIMIT_EXCEEDED'
  /** A malformed metadata key or value (type, UTF-8, duplicate, alignment...). */
  | 'BAD_VALUE'
  /** A malformed tensor info (dims, type, offset, overlap...). */
  | 'BAD_TENSOR'
  /** The byte source itself failed (network, file system, Range unsupported). */
  | 'SOURCE_ERROR'
  /** The files of a split set (gguf-split shards) do not form one whole set. */
  | 'BAD_SPLIT';

/** Offset used when an error is not tied to a position in a file. */
export const NO_OFFSET = -1;

export class GgufError extends Error {
  override readonly name = 'GgufError';
  readonly code: GgufErrorCode;
  /** Path of the offending field, e.g. "metadata[3].value" or "tensor 'x'.dims[1]". */
  readonly field: string;
  /** Byte offset in the file where the offending field starts, or NO_OFFSET (-1). */
  readonly offset: number;
  /** The bare explanation, without field and offset. */
  readonly detail: string;

  constructor(code: GgufErrorCode, field: string, offset: number, detail: string, options?: ErrorOptions) {
    const where = offset === NO_OFFSET ? field : `${field} at byte ${offset}`;
    super(`GGUF ${code}: ${where}: ${detail}`, options);
    this.code = code;
    this.field = field;
    this.offset = offset;
    this.detail = detail;
  }
}

/** Short printable form of a name or key inside a field path (names come from untrusted files). */
export function quoteName(name: string): string {
  const maxChars = 64;
  const shown = name.length > maxChars ? `${name.slice(0, maxChars)}…` : name;
  return `'${shown}'`;
}
