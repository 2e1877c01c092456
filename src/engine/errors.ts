/**
 * Typed errors of the generation engine: each says what was asked, what the
 * limit is, and what to change.
 */

export type EngineErrorCode =
  /** Prompt plus requested tokens do not fit the KV cache. */
  | 'CONTEXT_OVERFLOW'
  /** A request field is missing, contradictory or out of range. */
  | 'BAD_REQUEST'
  /** generate() was called while another generate() on the same engine was running. */
  | 'BUSY'
  /** The engine was destroyed. */
  | 'DESTROYED';

export class EngineError extends Error {
  override name = 'EngineError';
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export class ContextOverflowError extends EngineError {
  override name = 'ContextOverflowError';
  declare readonly code: 'CONTEXT_OVERFLOW';

  constructor(
    readonly promptTokens: number,
    readonly maxTokens: number,
    readonly maxContext: number,
  ) {
    super(
      'CONTEXT_OVERFLOW',
      promptTokens > maxContext
        ? `the prompt has ${promptTokens} tokens but the context holds ${maxContext}; shorten the prompt or load the model with a larger maxContext`
        : `the prompt (${promptTokens} tokens) plus maxTokens (${maxTokens}) exceed the context of ${maxContext}; ask for at most ${maxContext - promptTokens} tokens or load the model with a larger maxContext`,
    );
  }
}
