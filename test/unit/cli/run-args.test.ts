/** Options of `webmoe run`, `logits` and `tokenize` as parsed, and the usage errors (exit 2) for bad ones. */
import { describe, expect, it } from 'vitest';
import { CliError } from '../../../src/cli/args';
import { f32LittleEndian } from '../../../src/cli/logits';
import { parseTokenList } from '../../../src/cli/model';
import { RUN_HELP, parseRunArgs, runJson } from '../../../src/cli/run';
import { parseChatArgs } from '../../../src/cli/chat';
import { parseServeArgs } from '../../../src/cli/serve';
import { zeroRequestCost } from '../../../src/engine/engine';
import type { GenerateResult } from '../../../src/engine/engine';

const BASE = ['--model', 'm.gguf', '--prompt', 'Hi'];

function usageError(argv: string[]): string {
  try {
    parseRunArgs(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    return (error as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

describe('webmoe run options', () => {
  it('are read into the engine request, greedy and 128 tokens by default', () => {
    expect(parseRunArgs(BASE)).toEqual({
      model: 'm.gguf', store: undefined, prompt: 'Hi', chat: false, maxTokens: 128,
      sampling: { temperature: undefined, topK: undefined, topP: undefined, minP: undefined, repeatPenalty: undefined, seed: undefined },
      stop: [], context: undefined, expertBudgetBytes: undefined, json: false,
    });
    const args = parseRunArgs([
      ...BASE, '--chat', '--max-tokens', '7', '--temperature', '0.8', '--top-k', '40', '--top-p', '0.9', '--min-p', '0.05',
      '--repeat-penalty', '1.1', '--seed', '3', '--stop', 'a', '--stop', 'bc', '--expert-budget-mb', '1.5', '--context', '256', '--json',
    ])!;
    expect(args.chat).toBe(true);
    expect(args.maxTokens).toBe(7);
    expect(args.sampling).toEqual({ temperature: 0.8, topK: 40, topP: 0.9, minP: 0.05, repeatPenalty: 1.1, seed: 3 });
    expect(args.stop).toEqual(['a', 'bc']);
    expect(args.expertBudgetBytes).toBe(1.5 * 2 ** 20);
    expect(args.context).toBe(256);
    expect(args.json).toBe(true);
  });

  it('leave --model unset when it is not given: the built-in default model runs', () => {
    expect(parseRunArgs(['--prompt', 'Hi'])?.model).toBeUndefined();
  });

  it('that are missing, unknown or out of range are usage errors naming the option', () => {
    expect(usageError(['--model', 'm.gguf'])).toMatch(/--prompt is required/);
    expect(usageError([...BASE, '--temprature', '1'])).toMatch(/Unknown option '--temprature'/);
    expect(usageError([...BASE, 'extra'])).toMatch(/unexpected argument 'extra'/);
    expect(usageError([...BASE, '--temperature', 'hot'])).toMatch(/--temperature must be a number/);
    expect(usageError([...BASE, '--temperature=-1'])).toMatch(/--temperature must be a number >= 0/);
    expect(usageError([...BASE, '--top-p', '2'])).toMatch(/--top-p must be in \(0, 1\]/);
    expect(usageError([...BASE, '--min-p', '1.5'])).toMatch(/--min-p must be in \[0, 1\]/);
    expect(usageError([...BASE, '--top-k', '2.5'])).toMatch(/--top-k must be a non-negative integer/);
    expect(usageError([...BASE, '--repeat-penalty', '0'])).toMatch(/--repeat-penalty must be a number > 0/);
    expect(usageError([...BASE, '--max-tokens=-1'])).toMatch(/--max-tokens must be a non-negative integer/);
    expect(usageError([...BASE, '--seed', 'x'])).toMatch(/--seed must be a non-negative integer/);
    expect(usageError([...BASE, '--expert-budget-mb=-5'])).toMatch(/--expert-budget-mb must be >= 0/);
    expect(usageError([...BASE, '--context', '0'])).toMatch(/--context must be at least 1/);
    expect(usageError([...BASE, '--expert-policy', 'mru'])).toMatch(/--expert-policy must be one of lru, fifo, lfu, lfu-decay, next-use, got 'mru'/);
    expect(usageError([...BASE, '--prefetch', 'oracle'])).toMatch(/--prefetch must be pregate or affinity/);
    expect(usageError([...BASE, '--prefetch', 'pregate:0'])).toMatch(/lookahead in 1\.\.4/);
    expect(usageError([...BASE, '--prefetch', 'affinity:5'])).toMatch(/got 'affinity:5'/);
    expect(usageError([...BASE, '--prefetch', 'affinity:'])).toMatch(/--prefetch must be/);
  });

  it('--expert-policy and --prefetch reach the expert cache options', () => {
    expect(RUN_HELP).toMatch(/--expert-policy P +replacement policy .*: lru, fifo, lfu, lfu-decay/);
    expect(RUN_HELP).toMatch(/--prefetch PRED\[:D\]/);
    expect(parseRunArgs(BASE)).toMatchObject({ expertPolicy: undefined, prefetch: undefined });
    for (const policy of ['lru', 'lfu', 'lfu-decay', 'fifo']) expect(parseRunArgs([...BASE, '--expert-policy', policy])!.expertPolicy).toBe(policy);
    expect(parseRunArgs([...BASE, '--prefetch', 'pregate'])!.prefetch).toEqual({ predictor: 'pregate', lookahead: 1 });
    expect(parseRunArgs([...BASE, '--prefetch', 'affinity:3'])!.prefetch).toEqual({ predictor: 'affinity', lookahead: 3 });
    expect(parseRunArgs([...BASE, '--prefetch=pregate:4', '--expert-policy=lfu-decay', '--expert-budget-mb', '2'])).toMatchObject({
      prefetch: { predictor: 'pregate', lookahead: 4 }, expertPolicy: 'lfu-decay', expertBudgetBytes: 2 * 2 ** 20,
    });
  });

  it('--host-budget-mb reaches the host tier of run, chat and serve alike, checked for range', () => {
    expect(RUN_HELP).toMatch(/--host-budget-mb N +host memory for expert records/);
    expect(parseRunArgs(BASE)!.hostBudgetBytes).toBeUndefined();
    expect(parseRunArgs([...BASE, '--host-budget-mb', '64'])!.hostBudgetBytes).toBe(64 * 2 ** 20);
    expect(parseRunArgs([...BASE, '--host-budget-mb', '0'])!.hostBudgetBytes).toBe(0);
    expect(parseChatArgs(['--host-budget-mb', '1.5'])!.hostBudgetMB).toBe(1.5);
    expect(parseServeArgs(['--host-budget-mb', '0'])!.engine.hostBudgetMB).toBe(0);
    expect(usageError([...BASE, '--host-budget-mb=-1'])).toMatch(/--host-budget-mb must be >= 0/);
    expect(usageError([...BASE, '--host-budget-mb', 'lots'])).toMatch(/--host-budget-mb must be a number/);
  });

  it('--min-expert-weight and --routing-top-p reach the routing knobs, checked for range', () => {
    expect(parseRunArgs(BASE)!.routing).toBeUndefined();
    expect(parseRunArgs([...BASE, '--min-expert-weight', '0.05'])!.routing).toEqual({ minExpertWeight: 0.05, topP: undefined });
    expect(parseRunArgs([...BASE, '--routing-top-p=0.8', '--min-expert-weight=0'])!.routing).toEqual({ minExpertWeight: 0, topP: 0.8 });
    expect(parseRunArgs([...BASE, '--routing-top-p', '1'])!.routing).toEqual({ minExpertWeight: undefined, topP: 1 });
    expect(usageError([...BASE, '--min-expert-weight', '1'])).toMatch(/^--min-expert-weight must be in \[0, 1\), got 1$/);
    expect(usageError([...BASE, '--min-expert-weight=-0.1'])).toMatch(/--min-expert-weight must be in \[0, 1\)/);
    expect(usageError([...BASE, '--routing-top-p', '0'])).toMatch(/^--routing-top-p must be in \(0, 1\], got 0$/);
    expect(usageError([...BASE, '--routing-top-p', '1.5'])).toMatch(/--routing-top-p must be in \(0, 1\]/);
    expect(usageError([...BASE, '--routing-top-p', 'most'])).toMatch(/--routing-top-p must be a number/);
  });

  it('--json writes exactly promptTokens, tokens, text and stats', () => {
    const layer = { hits: 3, misses: 0, prefetchLoads: 0, prefetchUsed: 0, bytesStreamed: 0, stallMs: 0 };
    const stats = { prefillTokPerS: 1, decodeTokPerS: 2, expertHits: 3, expertMisses: 0, bytesStreamed: 0, stallMs: 0, prefetchPrecision: 0, prefetchRecall: 0, expertLayers: [layer], cost: zeroRequestCost(),
      gpuHits: 3, hostHits: 0, storeReads: 0, storeBytes: 0, hostWarmReads: 0, hostBudgetBytes: 0, hostHeldBytes: 0 };
    const result: GenerateResult = { promptTokens: [1], tokens: [2, 3], text: 'ab', finishReason: 'length', stats, seed: 5, reusedTokens: 0 };
    expect(JSON.parse(runJson(result))).toEqual({ promptTokens: [1], tokens: [2, 3], text: 'ab', stats });
    expect(Object.keys(JSON.parse(runJson(result)))).toEqual(['promptTokens', 'tokens', 'text', 'stats']);
  });
});

describe('token lists and logits files', () => {
  it('--tokens takes comma-separated non-negative integers', () => {
    expect(parseTokenList('1,2, 30', 'tokens')).toEqual([1, 2, 30]);
    expect(() => parseTokenList(undefined, 'tokens')).toThrow(/--tokens is required/);
    expect(() => parseTokenList('1,,2', 'tokens')).toThrow(CliError);
    expect(() => parseTokenList('1,-2', 'tokens')).toThrow(/'-2' is not a token id/);
    expect(() => parseTokenList('1,2.5', 'tokens')).toThrow(/'2.5' is not a token id/);
  });

  it('logits are written little-endian f32, row after row, no header', () => {
    const bytes = f32LittleEndian([Float32Array.of(1, -2.5), Float32Array.of(0.1, 3)], 2);
    expect(bytes.byteLength).toBe(16);
    const view = new DataView(bytes.buffer);
    expect([0, 1, 2, 3].map((i) => view.getFloat32(i * 4, true))).toEqual([1, -2.5, Math.fround(0.1), 3]);
    expect([...bytes.subarray(0, 4)]).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });
});
