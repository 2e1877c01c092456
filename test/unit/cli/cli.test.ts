/** The `webmoe` command line, run as a user runs it (bin/webmoe.js in a child process). */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { formatF32 } from '../../../src/cli/inspect';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const bin = resolve(import.meta.dirname, '../../../bin/webmoe.js');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function webmoe(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('webmoe make-tiny', () => {
  it('writes the same file as the library for the same options', async () => {
    const out = join(dir, 'a.gguf');
    const r = await webmoe('make-tiny', '--arch', 'qwen3moe', '--type', 'q4_k', '--seed', '5', '--layers', '3', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*a\.gguf/);
    const expected = makeTinyModel({ arch: 'qwen3moe', type: 'q4_k', seed: 5, layers: 3 });
    expect(Buffer.compare(readFileSync(out), expected)).toBe(0);
  }, 30_000);

  it('exits 2 with a usage message on bad options', async () => {
    const r = await webmoe('make-tiny', '--arch', 'gpt2', '--out', join(dir, 'b.gguf'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--arch must be one of llama, qwen2moe, qwen3moe, olmoe/);
    expect((await webmoe('make-tiny', '--arch', 'llama', '--layers', 'two', '--out', 'x')).stderr).toMatch(/--layers must be a non-negative integer/);
    expect((await webmoe('frobnicate')).code).toBe(2);
  }, 30_000);
});

describe('webmoe inspect', () => {
  it('prints metadata and, with --tensors, the tensor table', async () => {
    const out = join(dir, 'c.gguf');
    await webmoe('make-tiny', '--arch', 'olmoe', '--out', out);
    const r = await webmoe('inspect', out, '--tensors');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('general.architecture = "olmoe"');
    expect(r.stdout).toContain('olmoe.attention.layer_norm_rms_epsilon = 0.000001');
    expect(r.stdout).toMatch(/blk\.1\.ffn_down_exps\.weight\s+F32\s+\[64, 64, 8\]/);
  }, 30_000);

  it('reports a bad file with the reader\'s typed error, naming field and offset', async () => {
    const r = await webmoe('inspect', join(dir, 'missing.gguf'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ENOENT|no such file/);
    const bad = join(dir, 'bad.gguf');
    const bytes = makeTinyModel({ arch: 'llama' }).subarray(0, 200);
    (await import('node:fs')).writeFileSync(bad, bytes);
    const t = await webmoe('inspect', bad);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/GgufError: GGUF TRUNCATED: header\.\w+ at byte \d+/);
  }, 30_000);
});

describe('formatF32', () => {
  it('prints the shortest decimal that reads back as the same f32', () => {
    expect(formatF32(Math.fround(1e-6))).toBe('0.000001');
    expect(formatF32(Math.fround(10000))).toBe('10000');
    expect(formatF32(Math.fround(0.1))).toBe('0.1');
  });
});
