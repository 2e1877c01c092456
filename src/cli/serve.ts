/** `webmoe serve`: an OpenAI-compatible HTTP server for one model (src/server). */
import { createEngine } from '../api/node';
import type { CreateEngineOptions } from '../api/types';
import { defaultModelPath } from '../default-model';
import { POLICY_NAMES } from '../experts/policies';
import { MAX_PREFETCH_LOOKAHEAD } from '../experts/scheduler';
import { DEFAULT_HOST, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_QUEUE, DEFAULT_MAX_TOKENS_LIMIT, DEFAULT_PORT, startServer } from '../server/index';
import type { ServerOptions } from '../server/index';
import { CliError, intOption, parseCommand } from './args';
import { MODEL_HELP, progress } from './model';
import { parsePrefetch, parseStreamingOptions } from './run';

export const SERVE_HELP = `usage: webmoe serve [--model <file.gguf|stored-id>] [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}] [options]

${MODEL_HELP}
  --port N             TCP port (default ${DEFAULT_PORT}; 0 picks a free one, printed at start)
  --host H             address to listen on (default ${DEFAULT_HOST}: this machine only)
  --context N          KV cache positions (default min(model context, 4096))
  --expert-budget-mb N GPU memory for routed experts, in MiB (default: all of them); less streams them
  --host-budget-mb N   host memory for expert records when streaming, in MiB (default: a quarter of this machine's memory,
                       at most every expert; 0: none)
  --expert-policy P    replacement policy of the expert cache when streaming: ${POLICY_NAMES.join(', ')} (default next-use)
  --prefetch PRED[:D]  when streaming, load predicted experts D MoE layers ahead: pregate, affinity (D 1..${MAX_PREFETCH_LOOKAHEAD}) or none; default affinity:1
  --max-queue N        requests that may wait behind the running one (default ${DEFAULT_MAX_QUEUE}); more get 429
  --max-tokens-limit N most max_tokens a request may ask for (default ${DEFAULT_MAX_TOKENS_LIMIT}); more is 400;
                       a request without max_tokens gets this many, or what the context has left
  --max-body-kb N      largest request body in KiB (default ${DEFAULT_MAX_BODY_BYTES / 1024}); more is 413
  --quiet              no log line per request

Endpoints (OpenAI's API; point any OpenAI client at http://HOST:PORT/v1):
  POST /v1/chat/completions  POST /v1/completions  GET /v1/models
Requests run one at a time, in order. A client that disconnects stops its
generation. The request's "model" field is ignored: the server serves the
one model it loaded. usage.moe carries the expert telemetry of each request.
Ctrl-C (SIGINT) or SIGTERM stops the server and unloads the model.`;

export interface ServeArgs {
  engine: CreateEngineOptions;
  server: Omit<ServerOptions, 'engine'>;
}

/** The serve command's options, checked; CliError on anything wrong; undefined after --help. */
export function parseServeArgs(argv: string[]): ServeArgs | undefined {
  const parsed = parseCommand(argv, {
    model: { type: 'string' }, store: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, context: { type: 'string' },
    'expert-budget-mb': { type: 'string' }, 'host-budget-mb': { type: 'string' }, 'expert-policy': { type: 'string' }, prefetch: { type: 'string' },
    'max-queue': { type: 'string' }, 'max-tokens-limit': { type: 'string' }, 'max-body-kb': { type: 'string' }, quiet: { type: 'boolean' },
  }, SERVE_HELP);
  if (!parsed) return undefined;
  if (parsed.positionals.length > 0) throw new CliError(`unexpected argument '${parsed.positionals[0]}'\n\n${SERVE_HELP}`);
  const v = parsed.values as Record<string, string | undefined>;
  const port = intOption(v.port, 'port');
  if (port !== undefined && port > 65535) throw new CliError(`--port must be in 0..65535, got ${port}`);
  const { budgetMb, hostBudgetMb, policy, context } = parseStreamingOptions(v);
  const maxTokensLimit = intOption(v['max-tokens-limit'], 'max-tokens-limit');
  if (maxTokensLimit === 0) throw new CliError('--max-tokens-limit must be at least 1');
  const bodyKb = intOption(v['max-body-kb'], 'max-body-kb');
  if (bodyKb === 0) throw new CliError('--max-body-kb must be at least 1');
  return {
    engine: {
      model: v.model ?? defaultModelPath(),
      storeDir: v.store,
      contextLength: context,
      expertBudgetMB: budgetMb,
      hostBudgetMB: hostBudgetMb,
      expertPolicy: policy,
      prefetch: v.prefetch === undefined ? undefined : parsePrefetch(v.prefetch),
    },
    server: {
      port: port ?? DEFAULT_PORT,
      host: v.host ?? DEFAULT_HOST,
      maxQueue: intOption(v['max-queue'], 'max-queue'),
      maxTokensLimit,
      maxBodyBytes: bodyKb === undefined ? undefined : bodyKb * 1024,
      log: parsed.values.quiet === true ? undefined : progress,
    },
  };
}

export async function serveCommand(argv: string[]): Promise<void> {
  const args = parseServeArgs(argv);
  if (!args) return;
  const engine = await createEngine({ ...args.engine, onProgress: (p) => progress(p.text) });
  let server;
  try {
    server = await startServer({ ...args.server, engine });
  } catch (error) {
    await engine.unload();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') throw new CliError(`cannot listen on ${args.server.host}:${args.server.port}: ${code}; choose another --port`);
    throw error;
  }
  progress(`listening on ${server.url} (OpenAI API at ${server.url}/v1)`);
  const running = server;
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      progress(`${signal}: stopping`);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await running.close();
  await engine.unload();
  progress('stopped');
}
