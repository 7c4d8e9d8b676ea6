import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectBody } from '@authmd/core';

/** Headers about this connection, not the message: the body is handed over whole. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length']);

export type WebHandler = (request: Request) => Promise<Response>;

export interface NodeListenerOptions {
  /** The origin requests are resolved against; the Host header is never trusted. */
  origin: string;
  /** Bodies beyond this are refused with 413. Default 64 KiB. */
  maxBodyBytes?: number;
}

/**
 * A node:http listener around a Web-standard handler: enough to serve the provider (and small hosts
 * such as the demo) with `http.createServer(toNodeListener(handler, { origin }))`.
 */
export function toNodeListener(handler: WebHandler, options: NodeListenerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  return (req, res) => {
    void (async () => {
      const target = req.url ?? '/';
      if (!target.startsWith('/') || target.startsWith('//')) return send(res, plain(400, 'bad request target'));
      // A path no handler could decode (`%zz`, a lone `%`, escapes that are not UTF-8) is the client's
      // error, answered here once rather than as a 500 wherever a route decodes a segment.
      if (malformedPath(target)) return send(res, plain(400, MALFORMED_PATH));
      const method = req.method ?? 'GET';
      let body: Buffer | undefined;
      if (method !== 'GET' && method !== 'HEAD') {
        const read = await collectBody(req, maxBodyBytes);
        if (read === 'too_large') return send(res, plain(413, 'request body too large'));
        body = read;
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue;
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      const request = new Request(new URL(target, options.origin), { method, headers, body: body?.length ? new Uint8Array(body) : undefined });
      await send(res, await handler(request));
    })().catch((error: unknown) => {
      if (res.headersSent) return void res.destroy(error as Error);
      void send(res, plain(500, 'internal error'));
    });
  };
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length) headers['set-cookie'] = cookies;
  headers['content-length'] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(body);
}

export const MALFORMED_PATH = 'The request path has a malformed percent-encoding.';

/**
 * Whether the path of a request target (the query aside) has a percent-encoding that does not decode:
 * a `%` not followed by two hex digits, or escaped bytes that are not UTF-8.
 */
export function malformedPath(target: string): boolean {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (!path.includes('%')) return false;
  try {
    decodeURIComponent(path);
    return false;
  } catch {
    return true;
  }
}

function plain(status: number, text: string): Response {
  const error = status === 413 ? 'request_too_large' : status === 500 ? 'internal_error' : 'invalid_request';
  return new Response(JSON.stringify({ error, error_description: text, message: text }), {
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
  });
}

