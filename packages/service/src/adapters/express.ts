import type { IncomingMessage, ServerResponse } from 'node:http';
import { protocolError, type ProtocolError } from '@authmd/protocol';
import { bodyTooLarge } from '../http/request.ts';
import type { Guard } from '../protect.ts';
import type { AuthmdService } from '../service.ts';
import { nodeGuard, nodeHandler, type NodeAdapterOptions, type Next } from './node.ts';

type ParsedRequest = IncomingMessage & { body?: unknown };

/**
 * Express middleware: `app.use(authmd(service))`, in any order with the app's body parsers. Two
 * handlers in one array: the service itself, and an error handler for the service's paths. If a
 * parser such as `express.json()` ran first, the parsed body is re-serialised so the service still
 * sees it; if the parser refused the body (malformed JSON, too large, an unknown charset), the agent
 * gets the protocol's JSON error for a body that cannot be read, not Express's HTML error page.
 */
export function authmd(service: AuthmdService, options: Omit<NodeAdapterOptions, 'preparsedBody'> = {}) {
  const serve = nodeHandler(service, { clientIp: expressClientIp, ...options, preparsedBody: reserialise });
  const middleware = (req: IncomingMessage, res: ServerResponse, next: Next): void => serve(req, res, next);
  // Four parameters: that is how Express tells an error handler from a middleware.
  const bodyParserErrors = (error: unknown, req: IncomingMessage, res: ServerResponse, next: Next): void => {
    const refusal = bodyParserRefusal(error, req);
    if (!refusal) return next(error);
    serve(req, res, () => next(error), (maxBytes) => Promise.reject(refusal === 'too_large' ? bodyTooLarge(maxBytes) : refusal));
  };
  const handlers: [typeof middleware, typeof bodyParserErrors] = [middleware, bodyParserErrors];
  return handlers;
}

/** Express route guard: `app.get('/api/notes', requireToken(service.protect({scopes: ['notes.read']})), …)`; sets `req.authmd`. */
export const requireToken = (guard: Guard) => nodeGuard(guard);

/**
 * Express's `req.ip`: the socket peer, or the client its `trust proxy` setting reads from
 * X-Forwarded-For. An app that set `trust proxy` gets the same address in authmd's limits as in its
 * own code; setting the service's `trustProxy` as well would apply the proxies twice.
 */
function expressClientIp(req: IncomingMessage): string | undefined {
  const { ip } = req as IncomingMessage & { ip?: unknown };
  return typeof ip === 'string' && ip !== '' ? ip : req.socket.remoteAddress;
}

/**
 * When a body parser consumed the stream first, rebuild the bytes from what it left in `req.body`:
 * a Buffer (`express.raw()`) or string (`express.text()`) as is, a form object as a query string
 * (repeated members stay repeated, so duplicates are still refused), anything else as JSON.
 */
function reserialise(req: ParsedRequest): Buffer | undefined {
  if (!req.readableEnded) return undefined;
  const { body } = req;
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded' && typeof body === 'object') {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(body)) {
      for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item));
    }
    return Buffer.from(params.toString());
  }
  try {
    return Buffer.from(JSON.stringify(body));
  } catch {
    // JSON.parse took it, JSON.stringify overflows the stack (thousands of nested levels).
    throw protocolError('invalid_request', 'body: is nested too deeply.');
  }
}

/**
 * What a body parser's failure means to an agent (body-parser marks its errors with `type` and a 4xx
 * `status`); undefined for any other error, which stays the app's to answer.
 */
function bodyParserRefusal(error: unknown, req: IncomingMessage): ProtocolError | 'too_large' | undefined {
  const { type, status, charset, encoding } = (error ?? {}) as { type?: unknown; status?: unknown; charset?: unknown; encoding?: unknown };
  if (typeof type !== 'string' || typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  switch (type) {
    case 'entity.too.large':
      return 'too_large';
    case 'entity.parse.failed': {
      const json = /json/i.test(String(req.headers['content-type'] ?? ''));
      return protocolError('invalid_request', json ? 'body: is not valid UTF-8 JSON.' : 'body: could not be parsed.');
    }
    case 'charset.unsupported':
      return protocolError('invalid_request', `body: the charset ${String(charset ?? '')} is not supported; send UTF-8.`);
    case 'encoding.unsupported':
      return protocolError('invalid_request', `body: the Content-Encoding ${String(encoding ?? '')} is not supported; send it uncompressed.`);
    case 'parameters.too.many':
      return protocolError('invalid_request', 'body: has too many parameters.');
    case 'request.size.invalid':
      return protocolError('invalid_request', 'body: its length does not match Content-Length.');
    default:
      return undefined; // the app's own verify function, an aborted request, another middleware's error
  }
}
