/**
 * Record hashes: SHA-256 through WebCrypto (crypto.subtle, in browsers from
 * secure contexts and workers, and in Node 20 as a global).
 *
 * Why SHA-256 and not a fast non-cryptographic hash: it runs in native code
 * (with the CPU's SHA instructions where present) at well over the speed at
 * which IndexedDB or a disk delivers records, it needs no code of ours, the
 * hashes can be checked with any tool (`sha256sum` of a GGUF slice), and a
 * collision-resistant hash also rules out a record from another file or
 * another import passing for the right one.
 */

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
