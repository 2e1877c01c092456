/** Small helpers shared by the CLI commands. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage mistake: printed without a stack trace, exit status 2. */
export class CliError extends Error {
  override name = 'CliError';
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommand {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses a command's options; prints its help and returns undefined on --help. */
export function parseCommand(argv: string[], options: OptionSpec, help: string): ParsedCommand | undefined {
  let parsed: ParsedCommand;
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
    parsed = { values: values as ParsedCommand['values'], positionals };
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${help}`);
  }
  if (parsed.values.help) {
    console.log(help);
    return undefined;
  }
  return parsed;
}

export function intOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`--${name} must be a non-negative integer, got '${String(value)}'`);
  return n;
}

export function floatOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got '${String(value)}'`);
  return n;
}
