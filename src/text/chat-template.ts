/**
 * Chat templates: the Jinja program a model ships (GGUF
 * `tokenizer.chat_template`) that writes a conversation as the exact prompt
 * text the model was trained on, rendered with @huggingface/jinja.
 *
 * The variables follow the Hugging Face convention: `messages`,
 * `add_generation_prompt`, `bos_token`, `eos_token`, optional `tools`, plus
 * anything the caller adds (e.g. `enable_thinking`, `reasoning_effort`).
 */

import { Template } from '@huggingface/jinja';
import { optKv, optString, optStringArray } from '../gguf/metadata';
import { GgufValueType } from '../gguf/types';
import type { GgufArray, GgufFile } from '../gguf/types';
import { NoChatTemplateError, TextError } from './errors';

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
  tools?: readonly unknown[];
  /** More template variables (enable_thinking, reasoning_effort, ...). */
  variables?: Record<string, unknown>;
}

const TEMPLATE_KEY = 'tokenizer.chat_template';

export class ChatTemplate {
  private readonly program: Template;

  /**
   * @param source the Jinja template text
   * @param specialTexts BOS/EOS texts used when render() is not given them
   */
  constructor(
    readonly source: string,
    private readonly specialTexts: { bosToken?: string; eosToken?: string } = {},
  ) {
    try {
      this.program = new Template(source);
    } catch (cause) {
      throw new TextError('TEMPLATE_ERROR', `the chat template does not parse: ${messageOf(cause)}`, { cause });
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

  render(messages: readonly ChatMessage[], options: ChatRenderOptions = {}): string {
    const variables: Record<string, unknown> = {
      ...options.variables,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: options.bosToken ?? this.specialTexts.bosToken ?? '',
      eos_token: options.eosToken ?? this.specialTexts.eosToken ?? '',
    };
    if (options.tools !== undefined) variables.tools = options.tools;
    try {
      return this.program.render(variables);
    } catch (cause) {
      throw new TextError('TEMPLATE_ERROR', `the chat template failed to render: ${messageOf(cause)}`, { cause });
    }
  }
}

/** The vocabulary text of the token whose id the key holds, without decoding the whole vocabulary. */
function tokenTextOf(file: GgufFile, idKey: string): string | undefined {
  const id = optKv(file, idKey)?.value;
  const tokens = optKv(file, 'tokenizer.ggml.tokens')?.value as GgufArray | undefined;
  if (typeof id !== 'number' || tokens?.itemType !== GgufValueType.STRING) return undefined;
  const text = tokens.items[id];
  return typeof text === 'string' ? text : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
