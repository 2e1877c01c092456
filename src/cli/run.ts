/** `webmoe run`: generate text from a prompt, streamed to stdout, or one JSON object with --json. */
import { Engine } from '../engine/engine';
import type { GenerateResult } from '../engine/engine';
import { EngineError } from '../engine/errors';
import { checkSamplingOptions } from '../engine/sampler';
import type { SamplingOptions } from '../engine/sampler';
import { POLICY_NAMES, isPolicyName } from '../experts/policies';
import type { PolicyName } from '../experts/policies';
import { writeTraceFile } from '../experts/analysis/trace-node';
import { MAX_PREFETCH_LOOKAHEAD } from '../experts/scheduler';
import type { PrefetchOptions } from '../experts/scheduler';
import { routingKnobsProblem } from '../kernels/router';
import type { RoutingKnobs } from '../kernels/router';
import { CliError, floatOption, intOption, parseCommand } from './args';
import type { OptionSpec } from './args';
import { MODEL_HELP, nodeDevice, openModelArg, progress } from './model';

const DEFAULT_MAX_TOKENS = 128;

export const RUN_HELP = `usage: webmoe run [--model <file.gguf|stored-id>] --prompt "<text>" [options]

${MODEL_HELP}
  --prompt           the prompt text (BOS added as the model asks; special-token texts recognised)
  --chat             write the prompt as a user message with the model's chat template
  --max-tokens N     most tokens to generate (default ${DEFAULT_MAX_TOKENS}); ends earlier at an end-of-generation token
  --temperature T    0 (default) is greedy: the most likely token every time
  --top-k K          keep the K most likely tokens (0: off)
  --top-p P          nucleus sampling mass in (0, 1] (1: off)
  --min-p P          drop tokens below P times the best one's probability (0: off)
  --repeat-penalty R llama.cpp's repetition penalty over the last 64 tokens (1: off)
  --seed S           sampling seed (default random): same seed, same output
  --stop TEXT        stop before this text (may be repeated)
  --context N        KV cache positions (default min(model context, 4096))
  --expert-budget-mb N  GPU memory for routed experts, in MiB (default: all of them); less streams them
  --host-budget-mb N host memory for expert records when streaming, in MiB: a GPU miss is served from there
                     before the store (default: a quarter of this machine's memory, at most every expert; 0: none)
  --expert-policy P  replacement policy of the expert cache when streaming: ${POLICY_NAMES.join(', ')} (default next-use)
  --prefetch PRED[:D]  when streaming, load predicted experts D MoE layers ahead (D 1..${MAX_PREFETCH_LOOKAHEAD}, default 1):
                     pregate (the next layers' routers applied to this layer's input, on the GPU) or
                     affinity (P(experts at l+D | experts at l), learned from the routing so far; guesses below 0.45 confidence are not loaded);
                     none; default affinity:1
  --min-expert-weight X  skip routed experts whose routing weight is below X, in [0, 1) (0: off, the default)
  --routing-top-p P  keep the fewest routed experts, heaviest first, whose weights reach P of the top-k's sum,
                     in (0, 1] (1: off, the default); with either knob the heaviest expert is always kept and
                     the kept weights are not renormalised
  --trace FILE       record the routing of every token to FILE (webmoe trace JSONL, for webmoe simulate)
  --json             print only one JSON object at the end:
                     {"promptTokens":[...],"tokens":[...],"text":"...","stats":{...}}
Progress goes to stderr; stdout carries only the generated text (or the JSON).`;

const OPTIONS: OptionSpec = {
  model: { type: 'string' },
  store: { type: 'string' },
  prompt: { type: 'string' },
  chat: { type: 'boolean' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  context: { type: 'string' },
  'expert-budget-mb': { type: 'string' },
  'host-budget-mb': { type: 'string' },
  'expert-policy': { type: 'string' },
  prefetch: { type: 'string' },
  'min-expert-weight': { type: 'string' },
  'routing-top-p': { type: 'string' },
  trace: { type: 'string' },
  json: { type: 'boolean' },
};

export interface RunArgs {
  /** A GGUF path or stored id; undefined: the built-in default model. */
  model: string | undefined;
  store?: string;
  prompt: string;
  chat: boolean;
  maxTokens: number;
  sampling: SamplingOptions;
  stop: string[];
  context?: number;
  expertBudgetBytes?: number;
  hostBudgetBytes?: number;
  expertPolicy?: PolicyName;
  prefetch?: PrefetchOptions;
  /** Routing knobs; undefined: both off. */
  routing?: RoutingKnobs;
  /** Where to write the routing trace. */
  trace?: string;
  json: boolean;
}

/** The run command's options, checked; CliError on anything wrong; undefined after --help. */
export function parseRunArgs(argv: string[]): RunArgs | undefined {
  const parsed = parseCommand(argv, OPTIONS, RUN_HELP);
  if (!parsed) return undefined;
  if (parsed.positionals.length > 0) throw new CliError(`unexpected argument '${parsed.positionals[0]}'\n\n${RUN_HELP}`);
  const v = parsed.values as Record<string, string | undefined>;
  if (v.prompt === undefined) throw new CliError(`--prompt is required\n\n${RUN_HELP}`);
  const sampling = parseSampling(v);
  const { budgetMb, hostBudgetMb, policy, context } = parseStreamingOptions(v);
  return {
    model: v.model,
    store: v.store,
    prompt: v.prompt,
    chat: parsed.values.chat === true,
    maxTokens: intOption(v['max-tokens'], 'max-tokens') ?? DEFAULT_MAX_TOKENS,
    sampling,
    stop: (parsed.values.stop as unknown as string[] | undefined) ?? [],
    context,
    expertBudgetBytes: budgetMb === undefined ? undefined : Math.floor(budgetMb * 2 ** 20),
    hostBudgetBytes: hostBudgetMb === undefined ? undefined : Math.floor(hostBudgetMb * 2 ** 20),
    expertPolicy: policy,
    prefetch: v.prefetch === undefined ? undefined : parsePrefetch(v.prefetch),
    routing: parseRoutingKnobs(v),
    trace: v.trace,
    json: parsed.values.json === true,
  };
}

/** --expert-budget-mb, --host-budget-mb, --expert-policy and --context, shared by the commands that load a model. */
export function parseStreamingOptions(v: Record<string, string | undefined>): { budgetMb?: number; hostBudgetMb?: number; policy?: PolicyName; context?: number } {
  const budgetMb = floatOption(v['expert-budget-mb'], 'expert-budget-mb');
  if (budgetMb !== undefined && budgetMb < 0) throw new CliError(`--expert-budget-mb must be >= 0, got '${v['expert-budget-mb']}'`);
  const hostBudgetMb = floatOption(v['host-budget-mb'], 'host-budget-mb');
  if (hostBudgetMb !== undefined && hostBudgetMb < 0) throw new CliError(`--host-budget-mb must be >= 0, got '${v['host-budget-mb']}'`);
  const policy = v['expert-policy'];
  if (policy !== undefined && !isPolicyName(policy)) throw new CliError(`--expert-policy must be one of ${POLICY_NAMES.join(', ')}, got '${policy}'`);
  const context = intOption(v.context, 'context');
  if (context === 0) throw new CliError('--context must be at least 1');
  return { budgetMb, hostBudgetMb, policy, context };
}

/** --min-expert-weight and --routing-top-p, checked as the engine checks them; undefined when neither is given. */
export function parseRoutingKnobs(v: Record<string, string | undefined>): RoutingKnobs | undefined {
  const knobs: RoutingKnobs = {
    minExpertWeight: floatOption(v['min-expert-weight'], 'min-expert-weight'),
    topP: floatOption(v['routing-top-p'], 'routing-top-p'),
  };
  if (knobs.minExpertWeight === undefined && knobs.topP === undefined) return undefined;
  const problem = routingKnobsProblem(knobs);
  if (problem) {
    const flag = problem.startsWith('minExpertWeight') ? '--min-expert-weight' : '--routing-top-p';
    throw new CliError(problem.replace(/^\w+/, flag));
  }
  return knobs;
}

/** --temperature, --top-k, --top-p, --min-p, --repeat-penalty and --seed, checked as the sampler checks them. */
export function parseSampling(v: Record<string, string | undefined>): SamplingOptions {
  const sampling: SamplingOptions = {
    temperature: floatOption(v.temperature, 'temperature'),
    topK: intOption(v['top-k'], 'top-k'),
    topP: floatOption(v['top-p'], 'top-p'),
    minP: floatOption(v['min-p'], 'min-p'),
    repeatPenalty: floatOption(v['repeat-penalty'], 'repeat-penalty'),
    seed: intOption(v.seed, 'seed'),
  };
  try {
    checkSamplingOptions(sampling);
  } catch (error) {
    if (error instanceof EngineError) {
      const names: Record<string, string> = { temperature: '--temperature', topK: '--top-k', topP: '--top-p', minP: '--min-p', repeatPenalty: '--repeat-penalty', seed: '--seed' };
      throw new CliError(error.message.replace(/^sampling: (\w+)/, (_, name: string) => names[name] ?? name));
    }
    throw error;
  }
  return sampling;
}

/** `pregate`, `affinity`, or either with `:lookahead` (1..MAX_PREFETCH_LOOKAHEAD). */
export function parsePrefetch(text: string): PrefetchOptions {
  if (text === 'none') return { predictor: 'none' };
  const match = /^(pregate|affinity)(?::(\d+))?$/.exec(text);
  const lookahead = match?.[2] === undefined ? 1 : Number(match[2]);
  if (!match || lookahead < 1 || lookahead > MAX_PREFETCH_LOOKAHEAD) {
    throw new CliError(`--prefetch must be pregate or affinity (or none), optionally with :lookahead in 1..${MAX_PREFETCH_LOOKAHEAD} (e.g. affinity:2), got '${text}'`);
  }
  return { predictor: match[1] as PrefetchOptions['predictor'], lookahead };
}

/** Where a streamed request's expert loads came from: GPU slots, host memory, the store. */
export function tierLine(s: Pick<GenerateResult['stats'], 'gpuHits' | 'expertMisses' | 'hostHits' | 'storeReads' | 'storeBytes' | 'hostBudgetBytes' | 'hostHeldBytes' | 'hostWarmReads'>): string {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const host = s.hostBudgetBytes > 0 ? `host tier ${mib(s.hostBudgetBytes)} (holding ${mib(s.hostHeldBytes)})` : 'no host tier';
  return (
    `experts: ${s.gpuHits} GPU hits, ${s.expertMisses} GPU misses; ${host}: ${s.hostHits} host hits; ` +
    `${s.storeReads} store reads (${mib(s.storeBytes)}, ${s.hostWarmReads} of them warming host memory)`
  );
}

/** The --json output: exactly these four fields. */
export function runJson(result: GenerateResult): string {
  const { promptTokens, tokens, text, stats } = result;
  return JSON.stringify({ promptTokens, tokens, text, stats });
}

export async function runCommand(argv: string[]): Promise<void> {
  const args = parseRunArgs(argv);
  if (!args) return;
  const opened = await openModelArg(args.model, args.store);
  const gpu = await nodeDevice();
  let engine: Engine | undefined;
  try {
    engine = await Engine.fromGguf(gpu.device, opened.file, opened.source, {
      maxContext: args.context,
      expertBudgetBytes: args.expertBudgetBytes,
      hostBudgetBytes: args.hostBudgetBytes,
      expertPolicy: args.expertPolicy,
      prefetch: args.prefetch,
      routing: args.routing,
      onProgress: progress,
    });
    if (args.trace) engine.model.startRoutingTrace(opened.name);
    const prompt = args.chat ? { messages: [{ role: 'user', content: args.prompt }] } : { prompt: args.prompt };
    const result = await engine.generate({
      ...prompt,
      maxTokens: args.maxTokens,
      sampling: args.sampling,
      stop: args.stop,
      onToken: args.json ? undefined : (event) => process.stdout.write(event.text),
    });
    const trace = engine.model.takeRoutingTrace();
    if (args.trace && trace) await writeTraceFile(args.trace, [trace]);
    if (args.json) process.stdout.write(`${runJson(result)}\n`);
    else process.stdout.write('\n');
    const s = result.stats;
    progress(
      `${result.promptTokens.length} prompt tokens, ${result.tokens.length} generated (${result.finishReason}, seed ${result.seed}); ` +
        `prefill ${s.prefillTokPerS.toFixed(1)} tok/s, decode ${s.decodeTokPerS.toFixed(1)} tok/s, expert hits ${s.expertHits}`,
    );
    if (engine.model.memory().streaming) progress(tierLine(s));
  } finally {
    engine?.destroy();
    await opened.close();
    gpu.device.destroy();
  }
}
