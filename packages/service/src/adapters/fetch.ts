import { declaredTooLarge } from '@authmd/core';
import type { HttpRequest } from '../http/env.ts';
import type { Dispatch } from '../http/handler.ts';
import { bodyTooLarge } from '../http/request.ts';

/** What the host tells the handler about a request that a `Request` cannot carry. */
export interface RequestInfo {
  /**
   * The address of the request's sender (the socket peer), when the host knows it. Behind proxies,
   * the service's `trustProxy` reads their header, with or without it.
   */
  clientIp?: string;
}

/** A Web-standard handler: Bun, Deno, workers, Hono, Next.js route handlers, or Node through an adapter. */
export type FetchHandler = (request: Request, info?: RequestInfo) => Promise<Response>;

export function fetchHandler(dispatch: Dispatch): FetchHandler {
  return async (request, info = {}) => {
    const response = await dispatch(fromRequest(request, info));
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
    }
    return new Response(response.body ?? null, { status: response.status, headers });
  };
}

function fromRequest(request: Request, info: RequestInfo): HttpRequest {
  const url = new URL(request.url);
  return {
    method: request.method,
    pathname: url.pathname,
    query: (name) => url.searchParams.get(name) ?? undefined,
    header: (name) => request.headers.get(name) ?? undefined,
    body: (maxBytes) => readStream(request, maxBytes),
    clientIp: info.clientIp,
  };
}

/** Reads the body with a running total, so an oversized stream is refused without being held whole. */
async function readStream(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (declaredTooLarge(request.headers.get('content-length'), maxBytes)) throw bodyTooLarge(maxBytes);
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw bodyTooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
