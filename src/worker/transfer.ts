/**
 * Errors across the worker boundary: comlink's own handler would send only
 * message and name. This one sends a thrown value as a WebMoeError's plain
 * data and rebuilds the WebMoeError on the other side, so `code` and
 * `details` survive. Installed on both sides (worker and page).
 */
import * as Comlink from 'comlink';
import { WebMoeError, toWebMoeError } from '../engine/webmoe-error';
import type { SerializedWebMoeError } from '../engine/webmoe-error';

const INSTALLED = Symbol.for('webmoe.errorTransfer');

export function installErrorTransfer(): void {
  const original = Comlink.transferHandlers.get('throw') as (Comlink.TransferHandler<unknown, unknown> & { [INSTALLED]?: true }) | undefined;
  if (!original || original[INSTALLED]) return;
  const handler: Comlink.TransferHandler<{ value: unknown }, SerializedWebMoeError> & { [INSTALLED]: true } = {
    [INSTALLED]: true,
    canHandle: original.canHandle as (value: unknown) => value is { value: unknown },
    serialize: ({ value }) => [toWebMoeError(value).toJSON(), []],
    deserialize: (data) => {
      throw WebMoeError.fromJSON(data);
    },
  };
  Comlink.transferHandlers.set('throw', handler as Comlink.TransferHandler<unknown, unknown>);
}
