/** Child processes the pack tests run: npm, node, and Vite's command line. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/** Runs npm in `cwd` and returns its stdout (no update check: it would reach for the registry). */
export async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, maxBuffer: 64 * 2 ** 20, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return stdout;
}

/**
 * The environment of a command a user would run by hand: without the
 * variables Vitest sets for its own workers (NODE_ENV=test would turn a
 * production `vite build` into a development one) and without colours, so
 * output can be matched.
 */
export function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' };
  for (const name of Object.keys(env)) if (name === 'NODE_ENV' || name === 'TEST' || name.startsWith('VITEST')) delete env[name];
  return env;
}
