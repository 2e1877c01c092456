/**
 * `webmoe` command line entry: dispatches to one module per command.
 */
import { makeTinyCommand } from './make-tiny';
import { inspectCommand } from './inspect';
import { simulateCommand } from './simulate';
import { CliError } from './args';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; summary: string }> = {
  'make-tiny': { run: makeTinyCommand, summary: 'write a small random-weight MoE model as GGUF' },
  inspect: { run: inspectCommand, summary: 'print the metadata and tensor table of a GGUF file' },
  simulate: { run: simulateCommand, summary: 'replay routing traces through expert cache policies and prefetch' },
  // The store alone, no GPU; imported when used all the same, to keep start-up short.
  models: { run: async (argv) => (await import('./models')).modelsCommand(argv), summary: 'list, import (resumable, with progress) and delete models in the filesystem store' },
  // Commands that load a model are imported when used: the others start without the GPU code.
  run: { run: async (argv) => (await import('./run')).runCommand(argv), summary: 'generate text from a prompt on the GPU (WebGPU through Dawn)' },
  logits: { run: async (argv) => (await import('./logits')).logitsCommand(argv), summary: 'teacher-force token ids and write every position\'s logits as raw f32' },
  tokenize: { run: async (argv) => (await import('./tokenize')).tokenizeCommand(argv), summary: 'print the token ids of a text' },
  chat: { run: async (argv) => (await import('./chat')).chatCommand(argv), summary: 'an interactive chat in the terminal, replies streamed (or one reply per piped line)' },
  serve: { run: async (argv) => (await import('./serve')).serveCommand(argv), summary: 'an OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models)' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return ['usage: webmoe <command> [options]', '', 'commands:', ...lines, '', 'webmoe <command> --help for its options'].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw new CliError(`unknown command '${name}'\n\n${usage()}`);
  await command.run(rest);
}

// `webmoe inspect x.gguf | head` closes stdout early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CliError) {
    console.error(`webmoe: ${err.message}`);
    process.exitCode = 2;
  } else {
    console.error(err instanceof Error ? `webmoe: ${err.name}: ${err.message}` : err);
    process.exitCode = 1;
  }
});
