import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { StoreUnavailableError } from '@authmd/core/store';
import { paths, protocolError, ProtocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import { clientAddress } from './client-address.ts';
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
import { adminRoutes } from '../admin/routes.ts';
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
  // The operator's admin API and console
  for (const [path, endpoints] of adminRoutes(ctx)) routes.set(path, endpoints);
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
 * status, anything unexpected into a bland 500 whose details go to the log only. Every answer
 * carries the request's id, which every log line about it names; one `request` line ends it. Each
 * request is one span (under the host's active span, if any) and, with metrics on, one observation.
 */
export function createDispatch(ctx: EngineContext, routes: Routes): Dispatch {
  const route = routeRequest(ctx, routes);
  const addressOf = clientAddresses(ctx);
  const https = new URL(ctx.config.issuer).protocol === 'https:';
  const { requestLog } = ctx.config;
  const tracer = trace.getTracer('@authmd/service');
  return async (incoming) => {
    const started = performance.now();
    const requestId = requestIdOf(incoming.header('x-request-id'));
    const clientIp = addressOf(incoming);
    const request = clientIp === incoming.clientIp ? incoming : { ...incoming, clientIp };
    // Bounded labels: a route template (or UNKNOWN_ROUTE), a standard method (or _OTHER).
    const template = routes.has(incoming.pathname) ? incoming.pathname : UNKNOWN_ROUTE;
    const method = methodLabel(incoming.method);
    const response = await inSpan(tracer, template, method, () => route(request, requestId));
    const seconds = (performance.now() - started) / 1000;
    // Plain arguments, no object spread: spreading the labels cost 4-5 µs a request (docs/decisions.md, "Metrics and tracing").
    ctx.metrics.request(template, method, response.status, seconds, response.error);
    if (requestLog) {
      // The path only: a query may hold a claim token (v0.7's claim page), and headers hold credentials.
      ctx.logger.info('request', { request_id: requestId, method: incoming.method, path: incoming.pathname, status: response.status, duration_ms: Math.round(seconds * 10_000) / 10, client_ip: clientIp });
    }
    const headers: HttpResponse['headers'] = { ...response.headers, 'X-Request-Id': requestId };
    if (https) headers['Strict-Transport-Security'] = STRICT_TRANSPORT_SECURITY;
    return { ...response, headers };
  };
}

/** The route label of a path that is not one of the service's: raw paths are unbounded, so all share this one. */
export const UNKNOWN_ROUTE = 'unknown';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

/** The request method as a label: the standard ones as they are, anything else `_OTHER` (OpenTelemetry's convention). */
function methodLabel(method: string): string {
  return METHODS.has(method) ? method : '_OTHER';
}

/**
 * The request as a span named after its route (`POST /agent/identity`; the method alone for a path
 * that is not the service's), a child of whatever span is active (the host's HTTP instrumentation):
 * the API's no-op unless the host registered an OpenTelemetry SDK.
 */
function inSpan(tracer: Tracer, route: string, method: string, answer: () => Promise<HttpResponse>): Promise<HttpResponse> {
  const known = route !== UNKNOWN_ROUTE;
  const attributes: Attributes = { 'http.request.method': method };
  if (known) attributes['http.route'] = route;
  return tracer.startActiveSpan(known ? `${method} ${route}` : method, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
    try {
      const response = await answer();
      span.setAttribute('http.response.status_code', response.status);
      if (response.error !== undefined) span.setAttribute('authmd.error', response.error);
      if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: response.error });
      return response;
    } finally {
      span.end();
    }
  });
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The caller's X-Request-Id (a proxy's, say) when it is a plain token that cannot forge a log line; else a new one. */
function requestIdOf(given: string | undefined): string {
  return given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * The client address the endpoints count: the adapter's (the socket peer), or, behind trusted
 * proxies, the one their header names. A request without any is served, but the per-IP limits cannot
 * count it: said once in the log, with what to do, rather than letting those limits silently lapse.
 */
function clientAddresses(ctx: EngineContext): (request: HttpRequest) => string | undefined {
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
    return clientIp;
  };
}

function routeRequest(ctx: EngineContext, routes: Routes): (request: HttpRequest, requestId: string) => Promise<HttpResponse> {
  return async (request, requestId) => {
    let endpoint: Endpoint | undefined;
    try {
      const route = routes.get(request.pathname);
      if (!route) throw protocolError('not_found', `Nothing is served at ${request.pathname}.`);
      endpoint = route[request.method === 'HEAD' ? 'GET' : request.method];
      if (!endpoint) throw methodNotAllowed(request.method, allowedMethods(routes, request.pathname));
      return await endpoint(request, { ctx });
    } catch (error) {
      if (error instanceof ProtocolError) {
        if (error.detail) ctx.logger.info('request refused', { request_id: requestId, code: error.code, reason: error.reason, detail: error.detail });
        return errorResponse(error, endpoint?.errorDialect);
      }
      if (error instanceof StoreUnavailableError) {
        // The database is down or overloaded: say so at once and when to come back, never hang or 500.
        ctx.logger.warn('store unavailable', { request_id: requestId, error: error.message, path: request.pathname });
        return errorResponse(protocolError('temporarily_unavailable', 'The service cannot reach its database right now.', { headers: { 'Retry-After': '1' }, extra: { retry_after: 1 } }));
      }
      ctx.logger.error('unexpected error', { request_id: requestId, error: error instanceof Error ? error.stack : String(error), path: request.pathname });
      return { ...json({ error: 'server_error', error_description: 'An unexpected error occurred.', message: 'An unexpected error occurred.' }, 500), error: 'server_error' };
    }
  };
}
