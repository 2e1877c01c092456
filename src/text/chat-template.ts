/**
 * Chat templates: the Jinja program a model ships (GGUF
 * `tokenizer.chat_template`) that writes a conversation as the exact prompt
 * text the model was trained on, rendered with our bounded Jinja renderer
 * (jinja-render.ts).
 *
 * The variables are the ones llama.cpp's and Hugging Face's template runners
 * give: `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, `tools`
 * and `documents` when given, `date_string` ("26 Jul 2024") and `datetime`
 * ("Jul 26 2024") of today as llama.cpp gives every template, `functions`
 * (the tools as JSON, '' without tools, as llama.cpp gave firefunction-v2),
 * the functions `strftime_now(format)` and `raise_exception(message)`, plus
 * anything the caller adds (e.g. `enable_thinking`, `reasoning_effort`).
 *
 * Without tools, `tools` stays undefined, as in llama.cpp: a loop over it runs
 * no times and `tools | length` is 0 (Jinja's Undefined), while templates that
 * test `tools is not none` keep their plain form. (An empty list would not:
 * Llama 3.x would announce "Environment: ipython" and Mistral an empty
 * [AVAILABLE_TOOLS] block.) A template that still breaks for want of a list
 * (it sets `tools = none` and filters it) is rendered again with an empty one.
 *
 * Templates without a system role refuse a system message with
 * raise_exception (Gemma 2: "System role not supported"). Such a refusal is
 * retried once with the system text folded into the first user turn
 * ("<system>\n\n<user>"), which is how those models' cards and Gemma's later
 * templates place instructions; `foldSystem: false` turns this off. A refusal
 * that remains is a ChatTemplateError naming the template's own message.
 */

import { optKv, optString, optStringArray } from '../gguf/metadata';
import { GgufValueType } from '../gguf/types';
import type { GgufArray, GgufFile } from '../gguf/types';
import { ChatTemplateError, NoChatTemplateError } from './errors';
import { JinjaTemplate } from './jinja-render';
import { Callable, DEFAULT_LIMITS, fromJs, JinjaError, str, toJson } from './jinja-values';
import type { RenderLimits } from './jinja-values';

export interface ChatMessage {
  role: string;
  content: string;
  /** Templates may read other fields (tool_calls, name, thinking...). */
  [field: string]: unknown;
}

export interface ChatRenderOptions {
  /** End with the opening of an assistant turn, for generation. Default true. */
  addGenerationPrompt?: boolean;
  /** Overrides the BOS text taken from the model. */
  bosToken?: string;
  /** Overrides the EOS text taken from the model. */
  eosToken?: string;
  /** Tool definitions (OpenAI's function shape); `tools` is undefined in the template when none are given. */
  tools?: readonly unknown[];
  /** Documents for retrieval templates (Command R, Granite); not defined when none are given. */
  documents?: readonly unknown[];
  /** The time strftime_now() and date_string tell. Default: now. */
  now?: Date;
  /** Retry a refused conversation with its system message folded into the first user turn. Default true. */
  foldSystem?: boolean;
  /** More template variables (enable_thinking, reasoning_effort, ...); they override the defaults above. */
  variables?: Record<string, unknown>;
}

export type { RenderLimits };

const TEMPLATE_KEY = 'tokenizer.chat_template';

export class ChatTemplate {
  private readonly program: JinjaTemplate;

  /**
   * @param source the Jinja template text
   * @param specialTexts BOS/EOS texts used when render() is not given them
   * @param limits the steps and built characters one render may take
   */
  constructor(
    readonly source: string,
    private readonly specialTexts: { bosToken?: string; eosToken?: string } = {},
    private readonly limits: RenderLimits = DEFAULT_LIMITS,
  ) {
    try {
      this.program = new JinjaTemplate(source);
    } catch (cause) {
      throw templateError(cause, 'the chat template does not parse');
    }
  }

  /**
   * The model's chat template, or its named variant (GGUF
   * `tokenizer.chat_template.<name>`, e.g. "tool_use"); throws
   * NoChatTemplateError when the file has none.
   */
  static fromGguf(file: GgufFile, name?: string): ChatTemplate {
    const key = name === undefined ? TEMPLATE_KEY : `${TEMPLATE_KEY}.${name}`;
    const source = optString(file, key);
    if (source === undefined) {
      const named = optStringArray(file, 'tokenizer.chat_templates') ?? [];
      const hint = named.length > 0 ? ` (named templates: ${named.join(', ')})` : '';
      throw new NoChatTemplateError(
        name === undefined
          ? `the model has no chat template (${TEMPLATE_KEY})${hint}; pass a template string to new ChatTemplate()`
          : `the model has no chat template named '${name}' (${key})${hint}`,
      );
    }
    return new ChatTemplate(source, {
      bosToken: tokenTextOf(file, 'tokenizer.ggml.bos_token_id'),
      eosToken: tokenTextOf(file, 'tokenizer.ggml.eos_token_id'),
    });
  }

  /**
   * The prompt text of `messages`. Throws ChatTemplateError: failure 'refused'
   * with the template's own message when it raises on the conversation even
   * after the fallbacks (tools as an empty list, the system message folded).
   */
  render(messages: readonly ChatMessage[], options: ChatRenderOptions = {}): string {
    let variables = this.variables(messages, options);
    const errors: JinjaError[] = [];
    for (;;) {
      try {
        return this.program.render(variables, this.limits);
      } catch (error) {
        if (!(error instanceof JinjaError)) throw templateError(error, 'the chat template failed to render');
        errors.push(error);
        const next = fallback(error, variables, messages, options);
        if (!next) throw renderError(errors, variables.messages !== messages);
        variables = next;
      }
    }
  }

  private variables(messages: readonly ChatMessage[], options: ChatRenderOptions): Record<string, unknown> {
    const now = options.now ?? new Date();
    const variables: Record<string, unknown> = {
      date_string: strftime('%d %b %Y', now),
      datetime: strftime('%b %d %Y', now),
      functions: options.tools?.length ? toJson(fromJs(options.tools), { indent: '  ' }) : '',
      strftime_now: new Callable('strftime_now', ([format]) => strftime(str(format ?? ''), now)),
      raise_exception: new Callable('raise_exception', ([message]) => {
        throw new JinjaError('raise', str(message ?? 'raise_exception() was called'));
      }),
      ...options.variables,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: options.bosToken ?? this.specialTexts.bosToken ?? '',
      eos_token: options.eosToken ?? this.specialTexts.eosToken ?? '',
    };
    if (options.tools !== undefined) variables.tools = options.tools;
    if (options.documents !== undefined) variables.documents = options.documents;
    return variables;
  }
}

/**
 * The variables to render again with after `error`, or undefined when there is
 * nothing left to try: a template that breaks without a tools list (it
 * filters `none`) gets an empty one; a refusal with a system message leading
 * gets the system text folded into the first user turn.
 */
function fallback(error: JinjaError, variables: Record<string, unknown>, messages: readonly ChatMessage[], options: ChatRenderOptions): Record<string, unknown> | undefined {
  if (error.kind === 'render' && variables.tools === undefined) return { ...variables, tools: [] };
  if (error.kind !== 'raise' || options.foldSystem === false || variables.messages !== messages) return undefined;
  const folded = foldSystem(messages);
  return folded && { ...variables, messages: folded };
}

/** The conversation with a leading system message merged into the first user turn, or undefined when there is none to fold. */
function foldSystem(messages: readonly ChatMessage[]): ChatMessage[] | undefined {
  const [system, ...rest] = messages;
  if (system?.role !== 'system') return undefined;
  const first = rest.findIndex((m) => m.role === 'user');
  if (first < 0) return [{ ...system, role: 'user' }, ...rest];
  const user = rest[first];
  const content = typeof user.content === 'string' ? `${system.content}\n\n${user.content}` : user.content;
  return rest.map((m, i) => (i === first ? { ...user, content } : m));
}

/** The error of a render that failed on every try: the first refusal if the template refused, else the first failure. */
function renderError(errors: JinjaError[], folded: boolean): ChatTemplateError {
  const refusals = errors.filter((e) => e.kind === 'raise');
  const main = refusals[0] ?? errors[0];
  const later = refusals.find((e) => e.message !== main.message);
  const note = !folded || main.kind !== 'raise' ? '' : later ? ` (and with the system message folded into the first user turn: ${later.message})` : ' (also with the system message folded into the first user turn)';
  return templateError(main, 'the chat template failed to render', note);
}

function templateError(error: unknown, context: string, note = ''): ChatTemplateError {
  if (!(error instanceof JinjaError)) {
    const message = error instanceof Error ? error.message : String(error);
    return new ChatTemplateError('render', `${context}: ${message}`, undefined, { cause: error });
  }
  const at = error.line !== undefined ? ` (template line ${error.line})` : '';
  switch (error.kind) {
    case 'raise':
      return new ChatTemplateError('refused', `the chat template refuses this conversation: ${error.message}${note}`, error.message, { cause: error });
    case 'limit':
      return new ChatTemplateError('limit', `${context}: ${error.message}${at}`, undefined, { cause: error });
    case 'syntax':
      return new ChatTemplateError('parse', `${context}: ${error.message}${at}`, undefined, { cause: error });
    default:
      return new ChatTemplateError('render', `${context}: ${error.message}${at}`, undefined, { cause: error });
  }
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** C strftime on local time: %Y %y %m %d %e %H %I %M %S %p %a %A %b %B %j %%, with glibc's %-d style unpadded forms. */
export function strftime(format: string, t: Date): string {
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, unpadded: string, c: string) => {
    const pad = (n: number, width = 2) => (unpadded ? String(n) : String(n).padStart(width, '0'));
    const dayOfYear = Math.round((new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime() - new Date(t.getFullYear(), 0, 1).getTime()) / 86_400_000) + 1;
    switch (c) {
      case 'Y': return String(t.getFullYear());
      case 'y': return pad(t.getFullYear() % 100);
      case 'm': return pad(t.getMonth() + 1);
      case 'd': return pad(t.getDate());
      case 'e': return String(t.getDate()).padStart(2, ' ');
      case 'H': return pad(t.getHours());
      case 'I': return pad(t.getHours() % 12 || 12);
      case 'M': return pad(t.getMinutes());
      case 'S': return pad(t.getSeconds());
      case 'p': return t.getHours() < 12 ? 'AM' : 'PM';
      case 'a': return DAYS[t.getDay()].slice(0, 3);
      case 'A': return DAYS[t.getDay()];
      case 'b': return MONTHS[t.getMonth()].slice(0, 3);
      case 'B': return MONTHS[t.getMonth()];
      case 'j': return pad(dayOfYear, 3);
      case '%': return '%';
      default: return whole;
    }
  });
}

/** The vocabulary text of the token whose id the key holds, without decoding the whole vocabulary. */
function tokenTextOf(file: GgufFile, idKey: string): string | undefined {
  const id = optKv(file, idKey)?.value;
  const tokens = optKv(file, 'tokenizer.ggml.tokens')?.value as GgufArray | undefined;
  if (typeof id !== 'number' || tokens?.itemType !== GgufValueType.STRING) return undefined;
  const text = tokens.items[id];
  return typeof text === 'string' ? text : undefined;
}
