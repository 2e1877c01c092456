/** `webmoe tokenize`: the token ids of a text, as `webmoe run --prompt` feeds them to the model. */
import { encodePrompt } from '../engine/prompt';
import { Tokenizer } from '../text/tokenizer';
import { CliError, parseCommand } from './args';
import { MODEL_HELP, openModelArg } from './model';

const HELP = `usage: webmoe tokenize [--model <file.gguf>] --text "<text>"

${MODEL_HELP}
  --text       the text to tokenize
Prints the ids comma-separated, as llama.cpp tokenizes a prompt: BOS only
when the model's tokenizer adds one (tokenizer.ggml.add_bos_token), and
special-token texts such as <|im_start|> recognised as their tokens.`;

export async function tokenizeCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, { model: { type: 'string' }, store: { type: 'string' }, text: { type: 'string' } }, HELP);
  if (!parsed) return;
  const v = parsed.values as Record<string, string | undefined>;
  if (parsed.positionals.length > 0) throw new CliError(`unexpected argument '${parsed.positionals[0]}'\n\n${HELP}`);
  if (v.text === undefined) throw new CliError(`--text is required\n\n${HELP}`);
  const opened = await openModelArg(v.model, v.store);
  try {
    const tokenizer = Tokenizer.fromGguf(opened.file);
    process.stdout.write(`${encodePrompt(tokenizer, v.text).join(',')}\n`);
  } finally {
    await opened.close();
  }
}
