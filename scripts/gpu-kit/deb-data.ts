/**
 * Where a .deb keeps its files: the byte range of its data.tar.* member. A
 * .deb is an ar archive (an 8-byte magic, then per member a 60-byte header
 * whose size field is decimal ASCII, then the data, padded to an even
 * length). run.sh cuts that range out with tail and head where the machine
 * has no dpkg-deb, so the kit records it at pack time.
 */

const AR_MAGIC = '!<arch>\n';
const HEADER_BYTES = 60;

export interface DebDataMember {
  /** 'data.tar.xz' and the like: the suffix says how it is compressed. */
  name: string;
  offset: number;
  bytes: number;
}

export class NotADebError extends Error {
  constructor(reason: string) {
    super(`not a Debian package: ${reason}`);
    this.name = 'NotADebError';
  }
}

const ascii = (bytes: Uint8Array, start: number, length: number): string =>
  String.fromCharCode(...bytes.subarray(start, start + length));

export function debDataMember(deb: Uint8Array): DebDataMember {
  if (ascii(deb, 0, AR_MAGIC.length) !== AR_MAGIC) throw new NotADebError('no ar magic');
  let offset = AR_MAGIC.length;
  while (offset + HEADER_BYTES <= deb.length) {
    // GNU ar ends names with '/'; Debian's tools pad them with spaces.
    const name = ascii(deb, offset, 16).trimEnd().replace(/\/$/, '');
    const bytes = Number(ascii(deb, offset + 48, 10).trim());
    if (!Number.isInteger(bytes) || bytes < 0) throw new NotADebError(`bad size field at byte ${offset}`);
    const dataOffset = offset + HEADER_BYTES;
    if (dataOffset + bytes > deb.length) throw new NotADebError(`member ${name} runs past the end`);
    if (name.startsWith('data.tar')) return { name, offset: dataOffset, bytes };
    offset = dataOffset + bytes + (bytes % 2);
  }
  throw new NotADebError('no data.tar member');
}
