import { paths, protocolError, ProtocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import { discoveryEndpoints } from './discovery.ts';
import type { Endpoint, HttpRequest, HttpResponse } from './env.ts';
import { postIdentity } from './identity.ts';
import { errorResponse, json } from './responses.ts';
import { postRevoke } from './revoke.ts';
import { postToken } from './token.ts';

export type Routes = Map<string, Partial<Record<string, Endpoint>>>;
export type Dispatch = (request: HttpRequest) => Promise<HttpResponse>;

export function buildRoutes(ctx: EngineContext): Routes {
  const routes: Routes = new Map();
  for (const [path, endpoint] of discoveryEndpoints(ctx.config)) routes.set(path, { GET: endpoint });
  const at = (path: string) => ctx.config.issuerPath + path;
  routes.set(at(paths.identity), { POST: postIdentity });
  routes.set(at(paths.token), { POST: postToken });
  routes.set(at(paths.revoke), { POST: postRevoke });
  return routes;
}

/** The methods a path answers (HEAD wherever GET is); empty when the path is not the service's. */
export function allowedMethods(routes: Routes, pathname: string): string[] {
  const route = routes.get(pathname);
  if (!route) return [];
  const methods = Object.keys(route);
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

export function methodNotAllowed(method: string, allowed: string[]): ProtocolError {
  const allow = allowed.join(', ');
  return protocolError('method_not_allowed', `${method} is not allowed here; use ${allow}.`, { headers: { Allow: allow } });
}

/**
 * Routes a request to its endpoint and turns every failure into JSON: protocol errors with their
 * status, anything unexpected into a bland 500 whose details go to the log only.
 */
export function createDispatch(ctx: EngineContext, routes: Routes): Dispatch {
  return async (request) => {
    try {
      const route = routes.get(request.pathname);
      if (!route) throw protocolError('not_found', `Nothing is served at ${request.pathname}.`);
      const endpoint = route[request.method === 'HEAD' ? 'GET' : request.method];
      if (!endpoint) throw methodNotAllowed(request.method, allowedMethods(routes, request.pathname));
      return await endpoint(request, { ctx });
    } catch (error) {
      if (error instanceof ProtocolError) {
        if (error.detail) ctx.logger.info('request refused', { code: error.code, reason: error.reason, detail: error.detail });
        return errorResponse(error);
      }
      ctx.logger.error('unexpected error', { error: error instanceof Error ? error.stack : String(error), path: request.pathname });
      return json({ error: 'server_error', error_description: 'An unexpected error occurred.', message: 'An unexpected error occurred.' }, 500);
    }
  };
}
