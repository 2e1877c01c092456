/**
 * An OpenAI-compatible HTTP server over one loaded engine, on node:http:
 *
 *   POST /v1/chat/completions   messages → chat.completion (or SSE chunks with stream: true)
 *   POST /v1/completions        prompt → text_completion (or SSE chunks)
 *   GET  /v1/models             the loaded model as OpenAI's model object
 *   GET  /v1/models/{id}
 *
 * Requests run one at a time (see RequestQueue); a client that disconnects
 * aborts its request. Errors are OpenAI's `{ error: { message, type, param,
 * code } }` with webmoe's stable codes (handlers.ts).
 */

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebMoeEngine } from '../api/types';
import { modelIdFromName } from '../store/model-id';
import { ApiError, RequestQueue, apiErrorOf, runCompletion } from './handlers';
import type { CompletionKind, CompletionOutcome, CompletionSettings } from './handlers';

export { ApiError, RequestQueue } from './handlers';

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_MAX_QUEUE = 16;
export const DEFAULT_MAX_TOKENS_LIMIT = 1024;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface ServerOptions {
  /** The loaded model's engine; the server does not unload it (its owner does, after close()). */
  engine: WebMoeEngine;
  /** The id /v1/models reports and responses carry (default: the engine's model, as a store id would name it). */
  modelId?: string;
  /** Default 127.0.0.1: only this machine can connect. */
  host?: string;
  /** Default 8080; 0 picks a free port (see RunningServer.port). */
  port?: number;
  /** Requests that may wait behind the running one; more are refused with 429 QUEUE_FULL (default 16). */
  maxQueue?: number;
  /** The most max_tokens a request may ask for (more is 400), and what a request without max_tokens gets (default 1024). */
  maxTokensLimit?: number;
  /** Largest request body; more is 413 BODY_TOO_LARGE (default 1 MiB). */
  maxBodyBytes?: number;
  /** One line per finished request (method, path, status, milliseconds). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** `http://host:port`, the API under `${url}/v1`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops accepting, aborts running and queued requests, and resolves once every connection is closed. */
  close(): Promise<void>;
}

interface OpenAiModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: 'webmoe';
  architecture: string | null;
  context_length: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, signal: AbortSignal) => Promise<void>;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { engine } = options;
  const stats = await engine.stats();
  const modelId = options.modelId ?? modelIdFromName(stats.model ?? 'model');
  const stored = (await engine.models.list().catch(() => undefined))?.data.find((m) => m.id === stats.model);
  const model: OpenAiModel = {
    id: modelId,
    object: 'model',
    created: stored?.created || Math.floor(Date.now() / 1000),
    owned_by: 'webmoe',
    architecture: stats.architecture,
    context_length: stats.context_length,
  };
  const settings: CompletionSettings = {
    engine, modelId, maxTokensLimit: options.maxTokensLimit ?? DEFAULT_MAX_TOKENS_LIMIT, contextLength: stats.context_length,
  };
  const queue = new RequestQueue(options.maxQueue ?? DEFAULT_MAX_QUEUE);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const completion = (kind: CompletionKind): Handler => async (req, res, signal) => {
    const body = await readJson(req, maxBodyBytes);
    await queue.run(signal, async () => writeOutcome(res, await runCompletion(kind, body, settings, signal), signal));
  };
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    '/v1/chat/completions': { POST: completion('chat') },
    '/v1/completions': { POST: completion('text') },
    '/v1/models': { GET: async (_req, res) => sendJson(res, 200, { object: 'list', data: [model] }) },
    [`/v1/models/${modelId}`]: { GET: async (_req, res) => sendJson(res, 200, model) },
  };

  const active = new Set<AbortController>();
  const server = createServer((req, res) => {
    const controller = new AbortController();
    active.add(controller);
    const startedMs = performance.now();
    // 'close' before the response finished: the client went away, so its generation stops.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
      active.delete(controller);
      options.log?.(`${req.method} ${req.url} ${res.writableFinished ? res.statusCode : 'disconnected'} ${Math.round(performance.now() - startedMs)} ms`);
    });
    void route(routes, modelId, req, res, controller.signal).catch((error: unknown) => {
      if (controller.signal.aborted) return;
      sendError(res, apiErrorOf(error));
    });
  });

  const port = options.port ?? DEFAULT_PORT;
  const host = options.host ?? DEFAULT_HOST;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    host: address.address,
    port: address.port,
    close: () => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const controller of active) controller.abort();
      await queue.idle();
      server.closeAllConnections();
      await closed;
    })()),
  };
}

async function route(routes: Record<string, Partial<Record<string, Handler>>>, modelId: string, req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
  const methods = routes[path];
  if (!methods) {
    if (path.startsWith('/v1/models/')) {
      throw new ApiError(404, 'MODEL_NOT_FOUND', `no model '${decodeURIComponent(path.slice('/v1/models/'.length))}' here: this server serves '${modelId}'`, 'model');
    }
    throw new ApiError(404, 'NOT_FOUND', `no route ${path}: this server has POST /v1/chat/completions, POST /v1/completions and GET /v1/models`);
  }
  const handler = methods[req.method ?? ''];
  if (!handler) {
    res.setHeader('Allow', Object.keys(methods).join(', '));
    throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${Object.keys(methods).join(' or ')}`);
  }
  await handler(req, res, signal);
}

/** The body as JSON: 413 above `maxBytes`, 400 when it is not JSON. */
async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.byteLength;
    // Past the limit the rest is read and dropped, so the client sees the 413 rather than a reset connection.
    if (bytes <= maxBytes) chunks.push(chunk);
  }
  if (bytes > maxBytes) throw new ApiError(413, 'BODY_TOO_LARGE', `the request body has ${bytes} bytes; this server takes at most ${maxBytes}`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (error) {
    throw new ApiError(400, 'BAD_REQUEST', `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

async function writeOutcome(res: ServerResponse, outcome: CompletionOutcome, signal: AbortSignal): Promise<void> {
  if (!outcome.stream) {
    sendJson(res, 200, outcome.body);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  // Chunks are small and at most max_tokens of them: written without waiting for 'drain'.
  for await (const chunk of outcome.chunks) {
    if (signal.aborted) return;
    res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }
  res.end('data: [DONE]\n\n');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** A JSON error, or an error event when a stream had already begun (headers sent). */
function sendError(res: ServerResponse, error: ApiError): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.end(`data: ${JSON.stringify(error.body())}\n\ndata: [DONE]\n\n`);
    return;
  }
  sendJson(res, error.status, error.body());
}
