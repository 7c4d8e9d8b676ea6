import type { IncomingMessage } from 'node:http';
import type { Guard } from '../protect.ts';
import type { AuthmdService } from '../service.ts';
import { nodeGuard, nodeMiddleware, type NodeAdapterOptions } from './node.ts';

type ParsedRequest = IncomingMessage & { body?: unknown };

/**
 * Express middleware: `app.use(authmd(service))`. Mount it before body parsers; if a parser such as
 * `express.json()` ran first, the parsed body is re-serialised so the service still sees it.
 */
export function authmd(service: AuthmdService, options: Omit<NodeAdapterOptions, 'preparsedBody'> = {}) {
  return nodeMiddleware(service, { ...options, preparsedBody: reserialise });
}

/** Express route guard: `app.get('/api/notes', requireToken(service.protect({scopes: ['notes.read']})), …)`; sets `req.authmd`. */
export const requireToken = (guard: Guard) => nodeGuard(guard);

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
  return Buffer.from(JSON.stringify(body));
}
