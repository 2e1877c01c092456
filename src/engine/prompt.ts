/**
 * Turning a request's prompt into token ids, the way llama.cpp's tools do:
 * text is tokenized with the model's BOS (when tokenizer.ggml.add_bos_token
 * says so) and with special-token texts such as "<|im_start|>" recognised;
 * a rendered chat template is tokenized the same way, after dropping a BOS
 * text the template wrote itself (it would otherwise appear twice).
 */

import type { ChatMessage, ChatRenderOptions } from '../text/chat-template';
import type { ChatTemplate } from '../text/chat-template';
import { NoChatTemplateError } from '../text/errors';
import type { Tokenizer } from '../text/tokenizer';

/** The ids of prompt text: BOS as the model asks, special tokens parsed. */
export function encodePrompt(tokenizer: Tokenizer, text: string): number[] {
  return tokenizer.encode(text, { addSpecial: true, parseSpecial: true });
}

/** The ids of a conversation rendered with `template` (ending with the assistant's turn opened, unless told otherwise). */
export function encodeChat(
  tokenizer: Tokenizer,
  template: ChatTemplate | undefined,
  messages: readonly ChatMessage[],
  options: ChatRenderOptions = {},
): number[] {
  if (!template) throw new NoChatTemplateError('the model has no chat template (tokenizer.chat_template); send a plain prompt instead of messages');
  let text = template.render(messages, options);
  const bos = tokenizer.bos;
  if (tokenizer.addsBos && bos !== undefined) {
    const bosText = tokenizer.tokenText(bos);
    if (text.startsWith(bosText)) text = text.slice(bosText.length);
  }
  return encodePrompt(tokenizer, text);
}
