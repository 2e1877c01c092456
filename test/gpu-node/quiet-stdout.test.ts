/**
 * stdout carries only what the command or the program writes there. Dawn
 * prints start-up warnings from native code (on lavapipe, which advertises a
 * million dynamic buffers: "maxDynamicUniformBuffersPerPipelineLayout
 * artificially reduced from 1000000 to 16 ..."): they must stay on stderr,
 * where the CLI's progress goes too, and never reach a pipe reading stdout.
 * Each case runs in a child process with its own Dawn instance, since the
 * warnings come once per process, at its first adapter request: `webmoe run`
 * with the built-in model, and a program on the Node API (src/node.ts, the
 * package's Node entry) that prints one line.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import { defaultModelPath } from '../../src/default-model';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-quiet-stdout-'));
const env = { ...process.env, WEBMOE_STORE: join(dir, 'store') };
const REQUEST = { prompt: 'The river', max_tokens: 4, temperature: 0 } as const;
/** What this process's engine generates for REQUEST on the built-in model. */
let expected: string;

beforeAll(async () => {
  const engine = await createEngine({ model: defaultModelPath(), storeDir: join(dir, 'store'), contextLength: 64 });
  try {
    expected = (await engine.completions.create(REQUEST)).choices[0].text;
  } finally {
    await engine.unload();
  }
  expect(expected.length).toBeGreaterThan(0);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stdout holds only the output, Dawn's start-up warnings stay off it", () => {
  it('webmoe run prints exactly the generated text', async () => {
    const { stdout, stderr } = await run(process.execPath, [join(root, 'bin', 'webmoe.js'), 'run', '--prompt', REQUEST.prompt, '--max-tokens', String(REQUEST.max_tokens)], { cwd: dir, env });
    expect(stdout).toBe(`${expected}\n`);
    // The progress lines are there, on the other stream: the child did run the engine.
    expect(stderr).toMatch(/webmoe: loaded qwen2moe/);
  });

  it('a program on the Node API prints exactly its one line', async () => {
    const program = join(dir, 'program.mts');
    writeFileSync(program, `
      import { createEngine } from ${JSON.stringify(join(root, 'src', 'node.ts'))};
      const engine = await createEngine({ model: ${JSON.stringify(defaultModelPath())}, storeDir: ${JSON.stringify(join(dir, 'store'))}, contextLength: 64 });
      const out = await engine.completions.create(${JSON.stringify(REQUEST)});
      await engine.unload();
      console.log(JSON.stringify(out.choices[0].text));
    `);
    // tsx runs the sources as the repository's own CLI does; cwd is the root so that --import finds it.
    const { stdout } = await run(process.execPath, ['--import', 'tsx', program], { cwd: root, env, timeout: 120_000 });
    expect(stdout).toBe(`${JSON.stringify(expected)}\n`);
  });
});
