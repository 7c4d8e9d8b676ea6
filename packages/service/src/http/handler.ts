import { paths, protocolError, ProtocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import { clientAddress } from './client-address.ts';
import { StoreUnavailableError } from '../store/contract.ts';
import { discoveryEndpoints } from './discovery.ts';
import { getHealthz, getReadyz, healthPaths } from './health.ts';
import type { Endpoint, HttpRequest, HttpResponse } from './env.ts';
import { postIdentity } from './identity.ts';
import { errorResponse, json } from './responses.ts';
import { postEvent, postV01Revoke } from './events.ts';
import { postRevoke } from './revoke.ts';
import { postIntrospect } from './introspect.ts';
import { tokenEndpoint } from './token.ts';
import { postClaim, postClaimComplete } from './claim.ts';
import type { DevOutbox } from '../mail/outbox.ts';
import { getClaim, postAuthorize, postDeny, postEnterCode } from '../pages/claim.ts';
import { getLogin, postLogin, postLoginCode, postLogout } from '../pages/login.ts';
import { mailboxEndpoints } from '../pages/mailbox.ts';
import { pagePaths } from '../pages/paths.ts';
import { getV01View, postV01Deny, postV01Reveal } from '../pages/v01-claim.ts';
import { V01_DENY_PATH, V01_VIEW_PATH } from '../engine/v01-mail.ts';
import { postV01Claim, postV01Complete, postV01Register } from './v01.ts';
import { speaksIdentity } from './dialects.ts';

export type Routes = Map<string, Partial<Record<string, Endpoint>>>;
export type Dispatch = (request: HttpRequest) => Promise<HttpResponse>;

export function buildRoutes(ctx: EngineContext, outbox: DevOutbox | undefined): Routes {
  const routes: Routes = new Map();
  const { dialects } = ctx.config;
  for (const [path, endpoint] of discoveryEndpoints(ctx.config)) routes.set(path, { GET: endpoint });
  const at = (path: string) => ctx.config.issuerPath + path;
  // The operator's probes (not in the metadata): liveness and readiness
  routes.set(at(healthPaths.liveness), { GET: getHealthz });
  routes.set(at(healthPaths.readiness), { GET: getReadyz });
  // The agent's endpoints
  if (speaksIdentity(dialects)) {
    routes.set(at(paths.identity), { POST: postIdentity });
    routes.set(at(paths.claim), { POST: postClaim });
  }
  if (dialects.includes('current')) routes.set(at(paths.claimComplete), { POST: postClaimComplete });
  if (dialects.includes('v0.1')) {
    routes.set(at(paths.v01.register), { POST: postV01Register });
    routes.set(at(paths.v01.claim), { POST: postV01Claim });
    routes.set(at(paths.v01.claimComplete), { POST: postV01Complete });
    if (ctx.trust.size > 0) routes.set(at(paths.v01.revoke), { POST: postV01Revoke });
    routes.set(at(V01_VIEW_PATH), { GET: getV01View, POST: postV01Reveal });
    routes.set(at(V01_DENY_PATH), { POST: postV01Deny });
  }
  routes.set(at(paths.token), { POST: tokenEndpoint(dialects) });
  routes.set(at(paths.revoke), { POST: postRevoke });
  if (ctx.config.introspection) routes.set(at(paths.introspect), { POST: postIntrospect });
  if (ctx.trust.size > 0) routes.set(at(paths.events), { POST: postEvent });
  // The human's pages
  routes.set(at(pagePaths.claim), { GET: getClaim });
  if (dialects.includes('current')) routes.set(at(pagePaths.authorize), { POST: postAuthorize });
  if (dialects.includes('v0.7')) routes.set(at(pagePaths.enterCode), { POST: postEnterCode });
  routes.set(at(pagePaths.deny), { POST: postDeny });
  routes.set(at(pagePaths.login), { GET: getLogin, POST: postLogin });
  routes.set(at(pagePaths.loginCode), { POST: postLoginCode });
  routes.set(at(pagePaths.logout), { POST: postLogout });
  if (outbox) {
    const mailbox = mailboxEndpoints(ctx, outbox);
    routes.set(at(pagePaths.mailbox), { GET: mailbox.html });
    routes.set(at(pagePaths.mailboxJson), { GET: mailbox.json });
  }
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
 * HSTS for an https issuer, on every answer: browsers then never try plain http on this host for a
 * year (sslstrip, cookies sent before a redirect to https). Without includeSubDomains: the service
 * cannot know whether every subdomain of its host serves https; an operator who knows sets that at
 * the proxy. Never over an http issuer (development), where it would be meaningless or harmful.
 */
export const STRICT_TRANSPORT_SECURITY = 'max-age=31536000';

/**
 * Routes a request to its endpoint and turns every failure into JSON: protocol errors with their
 * status, anything unexpected into a bland 500 whose details go to the log only.
 */
export function createDispatch(ctx: EngineContext, routes: Routes): Dispatch {
  const route = withClientAddress(ctx, routeRequest(ctx, routes));
  if (new URL(ctx.config.issuer).protocol !== 'https:') return route;
  return async (request) => {
    const response = await route(request);
    return { ...response, headers: { ...response.headers, 'Strict-Transport-Security': STRICT_TRANSPORT_SECURITY } };
  };
}

/**
 * The client address the endpoints count: the adapter's (the socket peer), or, behind trusted
 * proxies, the one their header names. A request without any is served, but the per-IP limits cannot
 * count it: said once in the log, with what to do, rather than letting those limits silently lapse.
 */
function withClientAddress(ctx: EngineContext, route: Dispatch): Dispatch {
  const trust = ctx.config.proxyTrust;
  let warned = false;
  return (request) => {
    const clientIp = trust ? clientAddress(trust, request.clientIp, request.header) : request.clientIp;
    if (clientIp === undefined && !warned) {
      warned = true;
      ctx.logger.warn(
        'a request reached the service without a client address: the per-IP limits (registrations, sign-in codes) cannot count such requests, only the service-wide ones do. ' +
          'Give the Web handler the address (service.handler(request, { clientIp })), or set trustProxy when a proxy in front names it in X-Forwarded-For or Forwarded',
        { path: request.pathname },
      );
    }
    return route(clientIp === request.clientIp ? request : { ...request, clientIp });
  };
}

function routeRequest(ctx: EngineContext, routes: Routes): Dispatch {
  return async (request) => {
    let endpoint: Endpoint | undefined;
    try {
      const route = routes.get(request.pathname);
      if (!route) throw protocolError('not_found', `Nothing is served at ${request.pathname}.`);
      endpoint = route[request.method === 'HEAD' ? 'GET' : request.method];
      if (!endpoint) throw methodNotAllowed(request.method, allowedMethods(routes, request.pathname));
      return await endpoint(request, { ctx });
    } catch (error) {
      if (error instanceof ProtocolError) {
        if (error.detail) ctx.logger.info('request refused', { code: error.code, reason: error.reason, detail: error.detail });
        return errorResponse(error, endpoint?.errorDialect);
      }
      if (error instanceof StoreUnavailableError) {
        // The database is down or overloaded: say so at once and when to come back, never hang or 500.
        ctx.logger.warn('store unavailable', { error: error.message, path: request.pathname });
        return errorResponse(protocolError('temporarily_unavailable', 'The service cannot reach its database right now.', { headers: { 'Retry-After': '1' }, extra: { retry_after: 1 } }));
      }
      ctx.logger.error('unexpected error', { error: error instanceof Error ? error.stack : String(error), path: request.pathname });
      return json({ error: 'server_error', error_description: 'An unexpected error occurred.', message: 'An unexpected error occurred.' }, 500);
    }
  };
}
