/** The public API's error type (defined with the engine service, which throws it). */
export { WebMoeError, toWebMoeError, abortedError } from '../engine/webmoe-error';
export type { WebMoeErrorCode, WebMoeErrorDetails, SerializedWebMoeError } from '../engine/webmoe-error';
