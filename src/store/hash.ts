/**
 * Hashes used by the store.
 *
 * Records carry xxHash32 (seed 0, as `xxhsum -H0` prints it): a fast
 * non-cryptographic hash in plain JS. Why not SHA-256 through WebCrypto:
 *   - what it guards against is accidental damage (a torn or lost write, a
 *     disk or browser bug), never tampering: the hashes sit in the same
 *     storage as the records, so whoever could rewrite a record could rewrite
 *     its hash too, and collision resistance would buy nothing;
 *   - speed decides whether reads can afford to verify: measured in the same
 *     Chromium run (bench:store), xxHash32 hashed 5 MB expert records at
 *     about 1.7 GB/s, WebCrypto SHA-256 at about 0.2 GB/s, which is slower than
 *     IndexedDB delivers them;
 *   - a damaged record passes with probability 2^-32.
 * It blocks the calling thread (about 3 ms per 5 MB record), which is the
 * engine's worker, not the page.
 *
 * The source fingerprint (deciding whether an import may resume from an
 * earlier one) uses SHA-256: it is computed once per import, over the header
 * and a few samples, and must tell different files apart.
 */

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

export const RECORD_HASH_ALGORITHM = 'xxh32';

/** xxHash32 (seed 0) of the bytes as 8 lowercase hex digits. */
export function recordHash(bytes: Uint8Array): string {
  return xxh32(bytes).toString(16).padStart(8, '0');
}

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const round = (acc: number, lane: number): number => Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);

/** xxHash32 with seed 0, as an unsigned 32-bit number. */
export function xxh32(input: Uint8Array): number {
  // Little-endian 32-bit lanes need a 4-byte-aligned view; an unaligned view is copied once.
  const bytes = input.byteOffset % 4 === 0 ? input : input.slice();
  const n = bytes.byteLength;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2);
  let h: number;
  let i = 0;
  if (n >= 16) {
    let v1 = (P1 + P2) | 0;
    let v2 = P2;
    let v3 = 0;
    let v4 = -P1 | 0;
    const stripeWords = (n >>> 4) << 2;
    for (let w = 0; w < stripeWords; w += 4) {
      v1 = round(v1, words[w]);
      v2 = round(v2, words[w + 1]);
      v3 = round(v3, words[w + 2]);
      v4 = round(v4, words[w + 3]);
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
    i = stripeWords * 4;
  } else {
    h = P5;
  }
  h = (h + n) | 0;
  for (; i + 4 <= n; i += 4) h = Math.imul(rotl((h + Math.imul(words[i >>> 2], P3)) | 0, 17), P4);
  for (; i < n; i++) h = Math.imul(rotl((h + Math.imul(bytes[i], P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

/** SHA-256 through WebCrypto (browsers in secure contexts and workers; Node 20 as a global), as hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
