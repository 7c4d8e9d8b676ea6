import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Guard, Principal } from '../protect.ts';
import type { AuthmdService } from '../service.ts';
import { nodeHandler } from './node.ts';

// Fastify's shapes as far as the adapter uses them: @authmd/service does not depend on fastify.
interface FastifyRequestLike {
  raw: IncomingMessage;
  ip: string;
  headers: IncomingMessage['headers'];
  authmd?: Principal;
}
interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): void;
  code(status: number): FastifyReplyLike;
  headers(values: Record<string, string | string[]>): FastifyReplyLike;
  send(body: unknown): FastifyReplyLike;
}
interface FastifyInstanceLike {
  route(options: {
    method: string[];
    url: string;
    exposeHeadRoute: boolean;
    onRequest: (request: FastifyRequestLike, reply: FastifyReplyLike, done: () => void) => void;
    handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => void;
  }): unknown;
}

/** Every method Fastify routes by default: the service answers each, with 405 where it has no endpoint. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * A Fastify plugin: `await app.register(authmdFastify(service))` (without a prefix: the paths are the
 * issuer's). Each of the service's paths is a route that hands the untouched request to the service
 * in `onRequest`, before Fastify's body parsers run, so the service reads the bytes it was sent. The
 * client address is Fastify's `request.ip`, which follows its own `trustProxy` setting.
 */
export function authmdFastify(service: AuthmdService) {
  const clientIps = new WeakMap<IncomingMessage, string>();
  const serve = nodeHandler(service, { clientIp: (req) => clientIps.get(req) ?? req.socket.remoteAddress });
  return async function authmdRoutes(fastify: FastifyInstanceLike): Promise<void> {
    for (const url of service.paths) {
      fastify.route({
        method: METHODS,
        url,
        exposeHeadRoute: false,
        onRequest: (request, reply) => {
          clientIps.set(request.raw, request.ip);
          reply.hijack();
          serve(request.raw, reply.raw, undefined);
        },
        handler: () => {}, // never reached: onRequest answered
      });
    }
  };
}

/** A Fastify `preHandler` for an API route: sets `request.authmd` to the principal, or answers 401/403 (or 503). */
export function fastifyGuard(guard: Guard) {
  return async (request: FastifyRequestLike, reply: FastifyReplyLike): Promise<FastifyReplyLike | undefined> => {
    const outcome = await guard.check(request.headers.authorization);
    if (outcome.ok) {
      request.authmd = outcome.principal;
      return undefined;
    }
    const { status, headers, body } = outcome.refusal;
    // Returning the reply tells Fastify an async hook answered: the route's handler does not run.
    return reply.code(status).headers(headers).send(body);
  };
}
