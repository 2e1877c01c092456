/**
 * Public API of the text layer: the tokenizer built from GGUF metadata, chat
 * templates, streaming detokenization and stop strings.
 */

export { Tokenizer } from './tokenizer';
export type { EncodeOptions, DecodeOptions } from './tokenizer';
export { TokenType } from './vocab';
export { SUPPORTED_PRE_TOKENIZERS } from './pre-tokenizers';
export { ChatTemplate } from './chat-template';
export type { ChatMessage, ChatRenderOptions, RenderLimits } from './chat-template';
export { StreamingDetokenizer, StopMatcher } from './streaming';
export type { StopResult } from './streaming';
export { TextError, UnsupportedTokenizerError, NoChatTemplateError, ChatTemplateError } from './errors';
export type { TextErrorCode, ChatTemplateFailure } from './errors';
