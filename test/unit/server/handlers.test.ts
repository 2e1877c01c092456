/** The server's request queue and error mapping, without a model. */
import { describe, expect, it } from 'vitest';
import { WebMoeError } from '../../../src/api/errors';
import { ContextOverflowError, EngineError } from '../../../src/engine/errors';
import { ApiError, RequestQueue, apiErrorOf, withRoomLeft } from '../../../src/server/handlers';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('RequestQueue', () => {
  it('runs one job at a time in arrival order, refuses past maxWaiting with 429, and drops a waiting job whose signal fires', async () => {
    const queue = new RequestQueue(2);
    const order: string[] = [];
    const gate = deferred();
    const signal = new AbortController().signal;
    const first = queue.run(signal, async () => {
      order.push('first');
      await gate.promise;
    });
    const leaving = new AbortController();
    const second = queue.run(leaving.signal, async () => order.push('second'));
    const third = queue.run(signal, async () => order.push('third'));
    expect(queue.length).toBe(2);
    const refused = await queue.run(signal, async () => order.push('fourth')).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect([(refused as ApiError).status, (refused as ApiError).code, (refused as ApiError).type]).toEqual([429, 'QUEUE_FULL', 'rate_limit_error']);
    leaving.abort();
    await expect(second).rejects.toMatchObject({ code: 'ABORTED' });
    expect(queue.length).toBe(1);
    const idle = queue.idle();
    gate.resolve();
    await Promise.all([first, third, idle]);
    expect(order).toEqual(['first', 'third']);
  });
});

describe('apiErrorOf', () => {
  it('keeps webmoe\'s code, picks the status, and names the request field the engine complains about', () => {
    const badTokens = apiErrorOf(new WebMoeError('BAD_REQUEST', 'max_tokens must be an integer >= 0, got -1'));
    expect(badTokens.body()).toEqual({ error: { message: 'max_tokens must be an integer >= 0, got -1', type: 'invalid_request_error', param: 'max_tokens', code: 'BAD_REQUEST' } });
    expect(apiErrorOf(new EngineError('BAD_REQUEST', 'sampling: topP must be in (0, 1], got 5')).param).toBe('top_p');
    expect(apiErrorOf(new WebMoeError('BAD_REQUEST', 'a model is already loaded')).param).toBe(null);
    const overflow = apiErrorOf(new ContextOverflowError(100, 50, 128));
    expect([overflow.status, overflow.code]).toEqual([400, 'CONTEXT_OVERFLOW']);
    expect([apiErrorOf(new WebMoeError('DEVICE_LOST', 'lost')).status, apiErrorOf(new WebMoeError('MODEL_NOT_FOUND', 'x')).status]).toEqual([503, 404]);
    const internal = apiErrorOf(new TypeError('boom'));
    expect([internal.status, internal.code, internal.type]).toEqual([500, 'INTERNAL', 'server_error']);
  });
});

describe('withRoomLeft', () => {
  it('asks for the limit, and for the rest of the context when the engine says the limit does not fit', async () => {
    const asked: (number | undefined)[] = [];
    const engine = async (maxTokens: number | undefined) => {
      asked.push(maxTokens);
      if (maxTokens !== undefined && 120 + maxTokens > 128) throw new ContextOverflowError(120, maxTokens, 128);
      return maxTokens ?? 128 - 120;
    };
    expect(await withRoomLeft(16, 128, engine)).toBe(8);
    expect(asked).toEqual([16, undefined]);
    expect(await withRoomLeft(4, 128, engine)).toBe(4);
    expect(await withRoomLeft(512, 128, engine)).toBe(8);
    await expect(withRoomLeft(4, 128, async () => {
      throw new WebMoeError('BAD_REQUEST', 'no');
    })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});
