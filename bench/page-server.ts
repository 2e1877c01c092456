/**
 * The Vite dev server a browser benchmark's page is served from: on
 * 127.0.0.1 (a secure context, so navigator.gpu exists), any free port,
 * reading files anywhere in the repository, and cross-origin isolated
 * (COOP/COEP), which gives performance.now() microsecond resolution and
 * SharedArrayBuffer (multi-threaded WebAssembly).
 */

import { resolve } from 'node:path';
import { createServer } from 'vite';
import type { ViteDevServer } from 'vite';

const repositoryRoot = resolve(import.meta.dirname, '..');

/** Started and listening; its URL is `server.resolvedUrls!.local[0]`. */
export async function startBenchPageServer(root: string): Promise<ViteDevServer> {
  const server = await createServer({
    configFile: false,
    root,
    logLevel: 'warn',
    server: {
      host: '127.0.0.1',
      port: 0,
      hmr: false,
      fs: { allow: [repositoryRoot] },
      headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
    },
  });
  await server.listen();
  return server;
}
