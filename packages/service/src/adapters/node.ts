import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectBody } from '@authmd/core';
import { protocolError } from '@authmd/protocol';
import type { HttpRequest, HttpResponse } from '../http/env.ts';
import { bodyTooLarge } from '../http/request.ts';
import { errorResponse } from '../http/responses.ts';
import type { Guard, Principal, Refusal } from '../protect.ts';
import type { AuthmdService } from '../service.ts';

export interface NodeAdapterOptions {
  /**
   * The address of the request's sender. Default: the socket's peer (Express: `req.ip`). Behind
   * proxies, set the service's `trustProxy` rather than reading their header here.
   */
  clientIp?: (req: IncomingMessage) => string | undefined;
  /** A body some earlier middleware already consumed, as bytes (see the Express adapter). */
  preparsedBody?: (req: IncomingMessage) => Buffer | undefined;
}

export type Next = (error?: unknown) => void;

/**
 * Connect-style middleware for node:http (and anything built on it): serves the service's paths and
 * passes everything else to `next`, or answers 404 JSON when there is no `next`. No Web Request or
 * Response is built: the service reads the message and writes the answer directly.
 */
export function nodeMiddleware(service: AuthmdService, options: NodeAdapterOptions = {}) {
  const serve = nodeHandler(service, options);
  return (req: IncomingMessage, res: ServerResponse, next?: Next): void => serve(req, res, next);
}

/** Reads the request body up to `maxBytes`, or rejects with the protocol error to answer. */
export type BodyReader = (maxBytes: number) => Promise<Uint8Array>;

/**
 * The middleware's work, with the body reader an adapter may replace: the Express adapter answers a
 * body parser's failure through the service, as a body that could not be read.
 */
export function nodeHandler(service: AuthmdService, options: NodeAdapterOptions = {}) {
  const origin = new URL(service.config.issuer).origin;
  return (req: IncomingMessage, res: ServerResponse, next: Next | undefined, body?: BodyReader): void => {
    const url = serviceUrl(req.url, origin);
    if (next && (!url || !service.handles(url.pathname))) return next();
    if (!url) return writeResponse(res, errorResponse(protocolError('invalid_request', 'The request target is not a valid path.')));
    const request: HttpRequest = {
      method: req.method ?? 'GET',
      pathname: url.pathname,
      query: (name) => url.searchParams.get(name) ?? undefined,
      header: (name) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value.join(', ') : value;
      },
      body: body ?? ((maxBytes) => readBody(req, maxBytes, options.preparsedBody?.(req))),
      clientIp: options.clientIp ? options.clientIp(req) : req.socket.remoteAddress,
    };
    service
      .dispatch(request)
      .then((response) => writeResponse(res, response))
      .catch((error: unknown) => (next ? next(error) : failed(res, error)));
  };
}

/**
 * The URL a request target names, resolved against the service's own origin (the Host header is
 * never trusted). Origin-form (`/path`) and absolute-form (`http://host/path`, RFC 9112 §3.2.2)
 * targets are understood; `//host/path` and anything unparsable are not the service's.
 */
function serviceUrl(target: string | undefined, origin: string): URL | undefined {
  if (!target || target.startsWith('//')) return undefined;
  try {
    if (target.startsWith('/')) return new URL(target, origin);
    const absolute = new URL(target);
    return new URL(absolute.pathname + absolute.search, origin);
  } catch {
    return undefined;
  }
}

/** Reads the body up to `maxBytes`; beyond that, discards the rest and refuses it. */
function readBody(req: IncomingMessage, maxBytes: number, preparsed: Buffer | undefined): Promise<Uint8Array> {
  if (preparsed) return preparsed.length > maxBytes ? Promise.reject(bodyTooLarge(maxBytes)) : Promise.resolve(preparsed);
  return collectBody(req, maxBytes).then((body) => (body === 'too_large' ? Promise.reject(bodyTooLarge(maxBytes)) : body));
}

/** Nothing to hand the error to: answer a bare 500 if nothing was sent yet, else drop the connection. */
function failed(res: ServerResponse, error: unknown): void {
  if (res.headersSent) return void res.destroy(error as Error);
  res.writeHead(500, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end('{"error":"server_error","error_description":"An unexpected error occurred.","message":"An unexpected error occurred."}');
}

export function writeResponse(res: ServerResponse, response: HttpResponse): void {
  const length = response.body === undefined ? 0 : Buffer.byteLength(response.body);
  res.writeHead(response.status, { ...response.headers, 'Content-Length': length });
  res.end(response.body);
}

export function writeRefusal(res: ServerResponse, refusal: Refusal): void {
  writeResponse(res, { status: refusal.status, headers: refusal.headers, body: JSON.stringify(refusal.body) });
}

export type RequestWithPrincipal = IncomingMessage & { authmd?: Principal };

/** Connect-style guard: on success `req.authmd` holds the principal and `next()` runs; otherwise 401/403. */
export function nodeGuard(guard: Guard) {
  return (req: RequestWithPrincipal, res: ServerResponse, next: Next): void => {
    guard.check(req.headers.authorization).then((outcome) => {
      if (!outcome.ok) return writeRefusal(res, outcome.refusal);
      req.authmd = outcome.principal;
      next();
    }, next);
  };
}
