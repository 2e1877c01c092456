/**
 * `webmoe chat`: a conversation in the terminal, each reply streamed as it
 * is generated; or, with stdin not a terminal, one reply per input line.
 */
import { createInterface } from 'node:readline';
import { toWebMoeError } from '../api/errors';
import { createEngine } from '../api/node';
import type { ChatCompletionMessageParam, CompletionUsage, EngineStats, SamplingParams, WebMoeEngine } from '../api/types';
import { defaultModelPath } from '../default-model';
import type { POLICY_NAMES } from '../experts/policies';
import { formatBytes } from '../store/errors';
import { prefetched, withRoomLeft } from '../server/handlers';
import { CliError, intOption, parseCommand } from './args';
import { MODEL_HELP, openModelArg, progress } from './model';
import { parsePrefetch, parseSampling, parseStreamingOptions } from './run';

const DEFAULT_MAX_TOKENS = 256;
const DEFAULT_TEMPERATURE = 0.8;
/** A second Ctrl-C this soon after the one that stopped a reply quits. */
const DOUBLE_INTERRUPT_MS = 1000;

export const CHAT_HELP = `usage: webmoe chat [--model <file.gguf|stored-id>] [--system TEXT] [options]

${MODEL_HELP}
  --system TEXT      a system message that opens the conversation
  --max-tokens N     most tokens per reply (default ${DEFAULT_MAX_TOKENS}; fewer when the context has less room left)
  --temperature T    default ${DEFAULT_TEMPERATURE}; 0 is greedy
  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --seed S   sampling, as in webmoe run
  --context N        KV cache positions (default min(model context, 4096))
  --expert-budget-mb N  --host-budget-mb N  --expert-policy P  --prefetch PRED[:D]   expert streaming, as in webmoe run

In the conversation:
  /stats   expert telemetry of the last finished reply: hits, misses, hit rate,
           bytes streamed, stall time, host memory and store reads, resident experts
  /reset   forget the conversation (the system message stays)
  /help    these commands
  /quit    quit (as Ctrl-D)
Ctrl-C stops a reply (what it had said stays in the conversation); at the
prompt, or twice within a second, Ctrl-C quits.

A model without a chat template runs in completion mode: there are no
roles; each line is appended to the transcript (after a newline) and the
model continues the transcript from there.
With stdin not a terminal (a pipe, a file), each line is answered in turn
and the command ends at the end of the input.`;

export interface ChatArgs {
  model: string | undefined;
  store?: string;
  system?: string;
  maxTokens: number;
  sampling: Pick<SamplingParams, 'temperature' | 'top_k' | 'top_p' | 'min_p' | 'repetition_penalty' | 'seed'>;
  context?: number;
  expertBudgetMB?: number;
  hostBudgetMB?: number;
  expertPolicy?: (typeof POLICY_NAMES)[number];
  prefetch?: ReturnType<typeof parsePrefetch>;
}

export function parseChatArgs(argv: string[]): ChatArgs | undefined {
  const parsed = parseCommand(argv, {
    model: { type: 'string' }, store: { type: 'string' }, system: { type: 'string' }, 'max-tokens': { type: 'string' },
    temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
    'repeat-penalty': { type: 'string' }, seed: { type: 'string' }, context: { type: 'string' },
    'expert-budget-mb': { type: 'string' }, 'host-budget-mb': { type: 'string' }, 'expert-policy': { type: 'string' }, prefetch: { type: 'string' },
  }, CHAT_HELP);
  if (!parsed) return undefined;
  if (parsed.positionals.length > 0) throw new CliError(`unexpected argument '${parsed.positionals[0]}'\n\n${CHAT_HELP}`);
  const v = parsed.values as Record<string, string | undefined>;
  const s = parseSampling(v);
  const maxTokens = intOption(v['max-tokens'], 'max-tokens') ?? DEFAULT_MAX_TOKENS;
  if (maxTokens === 0) throw new CliError('--max-tokens must be at least 1');
  const { budgetMb, hostBudgetMb, policy, context } = parseStreamingOptions(v);
  return {
    model: v.model,
    store: v.store,
    system: v.system,
    maxTokens,
    sampling: {
      temperature: s.temperature ?? DEFAULT_TEMPERATURE, top_k: s.topK, top_p: s.topP, min_p: s.minP, repetition_penalty: s.repeatPenalty, seed: s.seed,
    },
    context,
    expertBudgetMB: budgetMb,
    hostBudgetMB: hostBudgetMb,
    expertPolicy: policy,
    prefetch: v.prefetch === undefined ? undefined : parsePrefetch(v.prefetch),
  };
}

export type ChatMode = 'chat' | 'completion';

/** What is sent for the next reply and kept afterwards: role messages with a chat template, one growing text without. */
export class Conversation {
  private messages: ChatCompletionMessageParam[] = [];
  private transcript = '';

  constructor(readonly mode: ChatMode, private readonly system: string | undefined) {
    this.reset();
  }

  reset(): void {
    this.messages = this.system === undefined ? [] : [{ role: 'system', content: this.system }];
    this.transcript = this.system ?? '';
  }

  /** The request's input for a reply to `line`. */
  input(line: string): { messages: ChatCompletionMessageParam[] } | { prompt: string } {
    if (this.mode === 'chat') return { messages: [...this.messages, { role: 'user', content: line }] };
    return { prompt: this.transcript === '' ? line : `${this.transcript}\n${line}` };
  }

  /** Keeps `line` and the reply to it. */
  add(line: string, reply: string): void {
    if (this.mode === 'chat') this.messages.push({ role: 'user', content: line }, { role: 'assistant', content: reply });
    else this.transcript = `${(this.input(line) as { prompt: string }).prompt}${reply}`;
  }
}

/** The /stats report of a reply's usage and the engine's GPU memory now. */
type ExpertMemory = Pick<NonNullable<EngineStats['memory']>, 'resident_experts_per_layer' | 'total_experts' | 'expert_slots' | 'streaming'>;

export function formatStats(usage: CompletionUsage | undefined, memory: ExpertMemory | null): string {
  if (!usage) return 'no finished reply yet';
  const m = usage.moe;
  const lines = [
    `tokens: ${usage.prompt_tokens} prompt (${usage.cached_prompt_tokens} reused from the previous turn), ${usage.completion_tokens} generated; ` +
      `prefill ${usage.prefill_tokens_per_s.toFixed(1)} tok/s, decode ${usage.decode_tokens_per_s.toFixed(1)} tok/s`,
    `experts: ${m.expert_hits} hits, ${m.expert_misses} misses, hit rate ${(100 * m.hit_rate).toFixed(1)}%`,
    `streamed: ${formatBytes(m.bytes_streamed)}, stalled ${m.stall_ms.toFixed(1)} ms; prefetch precision ${m.prefetch_precision.toFixed(3)}, recall ${m.prefetch_recall.toFixed(3)}`,
    `host memory: ${m.host_budget_bytes > 0 ? `${formatBytes(m.host_budget_bytes)} budget, ${m.host_hits} hits` : 'none'}; store: ${m.store_reads} reads, ${formatBytes(m.store_bytes)}`,
  ];
  if (memory) {
    const resident = memory.resident_experts_per_layer.reduce((a, b) => a + b, 0);
    lines.push(`resident experts: ${resident} of ${memory.total_experts} (${memory.streaming ? `streaming, ${memory.expert_slots} slots` : 'all resident'}); ` +
      `per layer ${memory.resident_experts_per_layer.join(' ')}`);
  }
  return lines.join('\n');
}

const COMMANDS_TEXT = '/stats  expert telemetry of the last reply\n/reset  forget the conversation\n/help   this list\n/quit   quit (also Ctrl-D)';

/** Whether the model has a chat template, read from its header (as the engine reads it). */
async function chatModeOf(model: string | undefined, store: string | undefined): Promise<ChatMode> {
  const opened = await openModelArg(model, store);
  try {
    return opened.file.metadata.has('tokenizer.chat_template') ? 'chat' : 'completion';
  } finally {
    await opened.close();
  }
}

export async function chatCommand(argv: string[]): Promise<void> {
  const args = parseChatArgs(argv);
  if (!args) return;
  const interactive = process.stdin.isTTY === true;
  const mode = await chatModeOf(args.model, args.store);
  const engine = await createEngine({
    model: args.model ?? defaultModelPath(),
    storeDir: args.store,
    contextLength: args.context,
    expertBudgetMB: args.expertBudgetMB,
    hostBudgetMB: args.hostBudgetMB,
    expertPolicy: args.expertPolicy,
    prefetch: args.prefetch,
    onProgress: (p) => progress(p.text),
  });
  try {
    if (mode === 'completion') progress('the model has no chat template: completion mode, each line continues the transcript');
    if (interactive) progress(`${mode === 'chat' ? 'chat' : 'completion mode'}; /help for commands, Ctrl-C stops a reply, Ctrl-D quits`);
    await converse(engine, args, new Conversation(mode, args.system), interactive);
  } finally {
    await engine.unload();
  }
}

async function converse(engine: WebMoeEngine, args: ChatArgs, conversation: Conversation, interactive: boolean): Promise<void> {
  const contextLength = (await engine.stats()).context_length;
  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive, prompt: '> ' });
  let replying: AbortController | undefined;
  let lastInterruptMs = -Infinity;
  let quitting = false;
  let lastUsage: CompletionUsage | undefined;
  const quit = () => {
    quitting = true;
    replying?.abort();
    rl.close();
  };
  const interrupt = () => {
    const now = performance.now();
    if (replying && now - lastInterruptMs > DOUBLE_INTERRUPT_MS) {
      lastInterruptMs = now;
      replying.abort();
    } else {
      quit();
    }
  };
  // A terminal delivers Ctrl-C to readline; a pipe leaves the signal to the process.
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);

  const reply = async (line: string) => {
    const controller = new AbortController();
    replying = controller;
    let text = '';
    try {
      const request = { ...args.sampling, stream: true as const, signal: controller.signal };
      const input = conversation.input(line);
      const chunks = await withRoomLeft(args.maxTokens, contextLength, async (maxTokens) => 'messages' in input
        ? prefetched(await engine.chat.completions.create({ ...request, messages: input.messages, max_tokens: maxTokens }), 2)
        : prefetched(await engine.completions.create({ ...request, prompt: input.prompt, max_tokens: maxTokens }), 1));
      for await (const chunk of chunks) {
        const choice = chunk.choices[0];
        const piece = choice === undefined ? '' : 'delta' in choice ? choice.delta.content ?? '' : choice.text;
        text += piece;
        process.stdout.write(piece);
        if (chunk.usage) lastUsage = chunk.usage;
      }
      process.stdout.write('\n');
      conversation.add(line, text);
    } catch (error) {
      const e = toWebMoeError(error);
      if (e.code === 'ABORTED') {
        process.stdout.write('\n');
        conversation.add(line, text);
        if (!quitting) progress('(reply stopped)');
      } else if (e.code === 'CONTEXT_OVERFLOW') {
        progress(`the conversation no longer fits the context of ${contextLength} tokens; /reset starts over`);
      } else {
        throw e;
      }
    } finally {
      replying = undefined;
    }
  };

  const command = async (line: string) => {
    const name = line.split(/\s+/)[0];
    if (name === '/stats') process.stdout.write(`${formatStats(lastUsage, (await engine.stats()).memory)}\n`);
    else if (name === '/reset') {
      conversation.reset();
      lastUsage = undefined;
      progress('conversation reset');
    } else if (name === '/help') process.stdout.write(`${COMMANDS_TEXT}\n`);
    else if (name === '/quit' || name === '/exit') quit();
    else progress(`unknown command ${name}; /help lists them`);
  };

  try {
    if (interactive) rl.prompt();
    // Lines typed (or piped) while a reply runs wait their turn in the iterator.
    for await (const raw of rl) {
      const line = raw.trim();
      if (line.startsWith('/')) await command(line);
      else if (line !== '') await reply(line);
      if (quitting) break;
      if (interactive) rl.prompt();
    }
  } finally {
    process.off('SIGINT', interrupt);
    rl.close();
  }
}
