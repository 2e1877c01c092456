#!/usr/bin/env node
// The webmoe command line. A source checkout runs src/cli through tsx (a dev
// dependency), so no build step is needed and edits take effect at once; an
// installed package, which ships no src/, runs the build in dist/cli.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const source = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(built).href);
}
