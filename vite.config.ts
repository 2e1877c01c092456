/**
 * Three builds from one config, chosen by --mode:
 *   vite build                    the library (dist/lib), the worker as its own chunk
 *   vite build --mode demo        the demo app (dist/demo)
 *   vite build --mode test-pages  pages used by browser end-to-end tests (dist/test-pages)
 *   vite build --mode cli         the `webmoe` command for Node (dist/cli), WGSL bundled in
 * `vite` (dev server) serves the demo.
 */
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

export default defineConfig(({ mode }) => {
  const worker = { format: 'es' as const };
  if (mode === 'demo' || mode === 'development') {
    return {
      root: resolve(root, 'demo'),
      base: './',
      worker,
      server: { host: '127.0.0.1', fs: { allow: [root] } },
      build: { outDir: resolve(root, 'dist/demo'), emptyOutDir: true, target: 'es2022' },
    };
  }
  if (mode === 'test-pages') {
    return {
      root: resolve(root, 'test/pages'),
      base: './',
      worker,
      build: {
        outDir: resolve(root, 'dist/test-pages'),
        emptyOutDir: true,
        target: 'es2022',
        // index.html: the library as a page imports it; store.html: store operations for the store-fault tests.
        rollupOptions: { input: { index: resolve(root, 'test/pages/index.html'), store: resolve(root, 'test/pages/store.html') } },
      },
    };
  }
  if (mode === 'cli') {
    // An SSR build: Node modules and npm dependencies stay imports, our code
    // (with every shader, through the glob import) becomes one file.
    return {
      build: {
        outDir: resolve(root, 'dist/cli'),
        emptyOutDir: true,
        target: 'node20',
        ssr: resolve(root, 'src/cli/main.ts'),
        rollupOptions: { output: { entryFileNames: 'main.js', chunkFileNames: '[name]-[hash].js' } },
      },
    };
  }
  return {
    // Relative URLs: the worker is found next to the library wherever it is served from.
    base: './',
    worker: { ...worker, rollupOptions: { output: { entryFileNames: 'worker.js' } } },
    build: {
      outDir: resolve(root, 'dist/lib'),
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: true,
      // Two entries: 'webmoe' (browsers and bundlers) and 'webmoe/node' (Dawn, the filesystem store).
      lib: { entry: { webmoe: resolve(root, 'src/index.ts'), node: resolve(root, 'src/node.ts') }, formats: ['es'] },
      rollupOptions: {
        // Node-only modules stay out of the browser library.
        external: [/^node:/, 'webgpu'],
        output: { chunkFileNames: 'shared-[hash].js' },
      },
    },
  };
});
