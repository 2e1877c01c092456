/**
 * One import of a model at a time. Two tabs (or a tab and a worker) that
 * import the same model into the same origin must not interleave: both would
 * plan from the same manifest, number their journals alike and overwrite
 * each other's bookkeeping, and a fresh start by one deletes what the other
 * is writing. The second import waits for the first and then finds the model
 * complete (nothing to do) or half-imported (it resumes).
 *
 * Browsers (windows and workers) have the Web Locks API, whose locks hold
 * across every tab and worker of the origin and are released when the
 * holder's context goes away (a closed tab, a terminated worker), so a
 * crashed import never blocks the next one. Where the API is missing (Node
 * 20), an in-process lock serialises the imports of one process; separate
 * processes importing one model into one directory are not serialised.
 * The name holds the model id only: imports of one id into two different
 * databases wait for each other needlessly, which is harmless.
 */

/** The lock an import of `modelId` holds; other code of the origin may request it to wait for imports. */
export const importLockName = (modelId: string): string => `webmoe-import:${modelId}`;

interface LockManagerLike {
  request<T>(name: string, options: { mode: 'exclusive'; signal?: AbortSignal }, callback: () => Promise<T>): Promise<T>;
}

/** Runs `work` holding the exclusive lock `name`; waits for an earlier holder first. Aborting `signal` stops the wait. */
export async function withLock<T>(name: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  signal?.throwIfAborted();
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (locks) return locks.request(name, signal ? { mode: 'exclusive', signal } : { mode: 'exclusive' }, work);
  return withLocalLock(name, work, signal);
}

/** Tails of the in-process lock queues, by lock name. */
const localTails = new Map<string, Promise<void>>();

async function withLocalLock<T>(name: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const previous = localTails.get(name) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  // The queue advances past us only once the holder before us is done and we are done (or gave up).
  const tail = previous.then(() => mine);
  localTails.set(name, tail);
  try {
    await waitOrAbort(previous, signal);
    return await work();
  } finally {
    release();
    if (localTails.get(name) === tail) localTails.delete(name);
  }
}

function waitOrAbort(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}
