/**
 * Typed errors of the text layer: every failure to build a tokenizer or to
 * render a chat template says what is wrong and, where it can, what would work.
 */

export type TextErrorCode =
  /** A tokenizer model or pre-tokenizer this runtime does not implement. */
  | 'UNSUPPORTED_TOKENIZER'
  /** The vocabulary metadata is inconsistent (missing merges, short arrays...). */
  | 'BAD_VOCAB'
  /** The model carries no chat template (or not the named one). */
  | 'NO_CHAT_TEMPLATE'
  /** The chat template failed to parse or to render. */
  | 'TEMPLATE_ERROR';

export class TextError extends Error {
  override name = 'TextError';
  readonly code: TextErrorCode;

  constructor(code: TextErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export class UnsupportedTokenizerError extends TextError {
  override name = 'UnsupportedTokenizerError';
  declare readonly code: 'UNSUPPORTED_TOKENIZER';

  /**
   * @param kind which GGUF key holds the unsupported value
   * @param value the value found (tokenizer.ggml.model or tokenizer.ggml.pre)
   * @param supported the values that would work
   */
  constructor(
    readonly kind: 'model' | 'pre-tokenizer',
    readonly value: string,
    supported: readonly string[],
  ) {
    const key = kind === 'model' ? 'tokenizer.ggml.model' : 'tokenizer.ggml.pre';
    super('UNSUPPORTED_TOKENIZER', `unsupported ${kind} '${value}' (${key}); supported: ${supported.join(', ')}`);
  }
}

export class NoChatTemplateError extends TextError {
  override name = 'NoChatTemplateError';
  declare readonly code: 'NO_CHAT_TEMPLATE';

  constructor(message = 'the model has no chat template (tokenizer.chat_template); pass a template string to ChatTemplate') {
    super('NO_CHAT_TEMPLATE', message);
  }
}

/**
 * Why a chat template gave no prompt: it does not parse, it refused the
 * conversation (called raise_exception), it failed while rendering (a type
 * error, an undefined value used), or it ran past the renderer's limits.
 */
export type ChatTemplateFailure = 'parse' | 'refused' | 'render' | 'limit';

export class ChatTemplateError extends TextError {
  override name = 'ChatTemplateError';
  declare readonly code: 'TEMPLATE_ERROR';

  /**
   * @param failure which way the template failed
   * @param refusal the template's own raise_exception message, when it refused
   */
  constructor(
    readonly failure: ChatTemplateFailure,
    message: string,
    readonly refusal?: string,
    options?: ErrorOptions,
  ) {
    super('TEMPLATE_ERROR', message, options);
  }
}
