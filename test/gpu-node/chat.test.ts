/**
 * `webmoe chat` as a user pipes into it (bin/webmoe.js in a child process,
 * stdin not a terminal: one reply per line): greedy replies equal the
 * engine's on the same conversation, history kept across turns, /stats and
 * /reset; a model without a chat template in completion mode; SIGINT stops
 * a reply (and a second one quits).
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/api/node';
import type { ChatCompletionMessageParam, WebMoeEngine } from '../../src/api/types';
import { readGguf, tensorDataRange } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import { writeGguf } from '../../src/gguf/writer';
import { makeTinyModel } from '../../src/tiny/make-tiny';

const bin = resolve(import.meta.dirname, '../../bin/webmoe.js');
const dir = mkdtempSync(join(tmpdir(), 'webmoe-chat-'));
const chatModel = join(dir, 'tiny.gguf');
const plainModel = join(dir, 'plain.gguf');
const storeDir = join(dir, 'store');
const CONTEXT = 128;

/** The same model without tokenizer.chat_template. */
async function withoutChatTemplate(bytes: Uint8Array): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const metadata = [...file.metadata.values()].filter((kv) => kv.key !== 'tokenizer.chat_template');
  const tensors = file.tensors.map((t) => {
    const { offset, length } = tensorDataRange(file, t);
    return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
  });
  return writeGguf({ version: file.version, alignment: file.alignment, metadata, tensors });
}

interface Chat {
  child: ReturnType<typeof spawn>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startChat(...args: string[]): Chat {
  const child = spawn(process.execPath, [bin, 'chat', '--context', String(CONTEXT), '--temperature', '0', ...args], {
    env: { ...process.env, WEBMOE_STORE: storeDir },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function chatWith(input: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const chat = startChat(...args);
  chat.child.stdin!.end(input);
  const code = await chat.exited;
  return { code, stdout: chat.stdout(), stderr: chat.stderr() };
}

describe('webmoe chat', () => {
  let chatEngine: WebMoeEngine;
  let plainEngine: WebMoeEngine;

  beforeAll(async () => {
    const bytes = makeTinyModel({ arch: 'olmoe', seed: 7, layers: 2 });
    writeFileSync(chatModel, bytes);
    writeFileSync(plainModel, await withoutChatTemplate(bytes));
    chatEngine = await createEngine({ model: chatModel, storeDir, contextLength: CONTEXT });
    plainEngine = await createEngine({ model: plainModel, storeDir, contextLength: CONTEXT });
  });
  afterAll(async () => {
    await chatEngine?.unload();
    await plainEngine?.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  const reply = async (messages: ChatCompletionMessageParam[]) =>
    (await chatEngine.chat.completions.create({ messages, max_tokens: 5, temperature: 0 })).choices[0].message.content;
  const continuation = async (prompt: string) => (await plainEngine.completions.create({ prompt, max_tokens: 5, temperature: 0 })).choices[0].text;

  it('answers each piped line with the engine\'s greedy reply to the whole conversation so far; /stats, /reset', async () => {
    const run = await chatWith('Hello\n/stats\nAnd then?\n/reset\nHello\n', '--model', chatModel, '--max-tokens', '5', '--system', 'Be brief.');
    expect(run.code, run.stderr).toBe(0);
    const system = { role: 'system' as const, content: 'Be brief.' };
    const first = await reply([system, { role: 'user', content: 'Hello' }]);
    const second = await reply([system, { role: 'user', content: 'Hello' }, { role: 'assistant', content: first }, { role: 'user', content: 'And then?' }]);
    expect(run.stdout.startsWith(`${first}\n`)).toBe(true);
    // After /reset the conversation starts again from the system message alone.
    expect(run.stdout.endsWith(`\n${second}\n${first}\n`)).toBe(true);
    const stats = run.stdout.slice(first.length + 1, run.stdout.length - second.length - first.length - 2);
    expect(stats).toMatch(/^tokens: \d+ prompt \(0 reused from the previous turn\), 5 generated; prefill [\d.]+ tok\/s, decode [\d.]+ tok\/s\n/);
    expect(stats).toMatch(/\nexperts: [1-9]\d* hits, 0 misses, hit rate 100\.0%\n/);
    expect(stats).toMatch(/\nstreamed: 0 bytes, stalled 0\.0 ms; prefetch precision 0\.000, recall 0\.000\n/);
    expect(stats).toMatch(/\nresident experts: (\d+) of \1 \(all resident\); per layer \d+ \d+\n$/);
    expect(run.stderr).toMatch(/conversation reset/);
    expect(run.stderr).not.toMatch(/completion mode/);
  });

  it('without a chat template: completion mode, each line continues the transcript', async () => {
    const run = await chatWith('The river\nran on\n', '--model', plainModel, '--max-tokens', '5');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/no chat template: completion mode/);
    const first = await continuation('The river');
    const second = await continuation(`The river${first}\nran on`);
    expect(run.stdout).toBe(`${first}\n${second}\n`);
  });

  it('SIGINT stops the running reply and the chat goes on; a second SIGINT right after quits', async () => {
    const chat = startChat('--model', chatModel, '--max-tokens', '100');
    chat.child.stdin!.write('Tell me about the river.\n');
    await new Promise<void>((resolve) => chat.child.stdout!.once('data', () => resolve()));
    chat.child.kill('SIGINT');
    await new Promise<void>((resolve) => chat.child.stderr!.on('data', () => /reply stopped/.test(chat.stderr()) && resolve()));
    chat.child.stdin!.end('/stats\n');
    expect(await chat.exited, chat.stderr()).toBe(0);
    // The only reply was stopped before its end, so none finished.
    expect(chat.stdout()).toMatch(/\nno finished reply yet\n$/);

    const quitting = startChat('--model', chatModel, '--max-tokens', '100');
    quitting.child.stdin!.write('Tell me about the river.\n');
    await new Promise<void>((resolve) => quitting.child.stdout!.once('data', () => resolve()));
    quitting.child.kill('SIGINT');
    // Apart enough to be two signals, within the second that makes them a double interrupt.
    await new Promise((resolve) => setTimeout(resolve, 100));
    quitting.child.kill('SIGINT');
    // stdin stays open: only the second interrupt can end the command.
    expect(await quitting.exited, quitting.stderr()).toBe(0);
  });
});
