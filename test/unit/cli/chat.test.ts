/** `webmoe chat`'s conversation bookkeeping, /stats text and options, without a model. */
import { describe, expect, it } from 'vitest';
import { CliError } from '../../../src/cli/args';
import { Conversation, formatStats, parseChatArgs } from '../../../src/cli/chat';
import type { CompletionUsage } from '../../../src/api/types';

describe('Conversation', () => {
  it('chat mode: role messages after the system message; reset keeps the system message', () => {
    const c = new Conversation('chat', 'Be brief.');
    c.add('Hi', 'Hello.');
    expect(c.input('And?')).toEqual({ messages: [
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'And?' },
    ] });
    c.reset();
    expect(c.input('x')).toEqual({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'x' }] });
  });

  it('completion mode: one transcript, each line after a newline, the model\'s text appended as it came', () => {
    const c = new Conversation('completion', undefined);
    expect(c.input('The river')).toEqual({ prompt: 'The river' });
    c.add('The river', ' ran');
    expect(c.input('on and on')).toEqual({ prompt: 'The river ran\non and on' });
    expect(new Conversation('completion', 'Notes:').input('one')).toEqual({ prompt: 'Notes:\none' });
  });
});

describe('chat options and /stats', () => {
  it('defaults and checks', () => {
    const args = parseChatArgs(['--system', 'S'])!;
    expect([args.maxTokens, args.sampling.temperature, args.system]).toEqual([256, 0.8, 'S']);
    expect(parseChatArgs(['--temperature', '0', '--top-p', '0.9'])!.sampling).toMatchObject({ temperature: 0, top_p: 0.9 });
    expect(() => parseChatArgs(['--top-p', '2'])).toThrow(/--top-p must be in \(0, 1\]/);
    expect(() => parseChatArgs(['--max-tokens', '0'])).toThrow(CliError);
  });

  it('reports the last reply\'s usage and the resident experts', () => {
    const usage: CompletionUsage = {
      prompt_tokens: 40, completion_tokens: 8, total_tokens: 48, cached_prompt_tokens: 30, prefill_tokens_per_s: 120.04, decode_tokens_per_s: 31.46,
      moe: { expert_hits: 90, expert_misses: 10, hit_rate: 0.9, prefetch_precision: 0.5, prefetch_recall: 0.25, bytes_streamed: 3 * 2 ** 20, stall_ms: 12.34,
        host_hits: 6, store_reads: 5, store_bytes: 2 ** 20, host_budget_bytes: 64 * 2 ** 20 },
    };
    const memory = { shared_weight_bytes: 1, expert_bytes: 2, kv_cache_bytes: 3, expert_slots: 6, total_experts: 16, resident_experts_per_layer: [3, 3], streaming: true };
    expect(formatStats(usage, memory)).toBe([
      'tokens: 40 prompt (30 reused from the previous turn), 8 generated; prefill 120.0 tok/s, decode 31.5 tok/s',
      'experts: 90 hits, 10 misses, hit rate 90.0%',
      'streamed: 3.00 MiB, stalled 12.3 ms; prefetch precision 0.500, recall 0.250',
      'host memory: 64.00 MiB budget, 6 hits; store: 5 reads, 1.00 MiB',
      'resident experts: 6 of 16 (streaming, 6 slots); per layer 3 3',
    ].join('\n'));
    expect(formatStats(undefined, memory)).toBe('no finished reply yet');
  });
});
