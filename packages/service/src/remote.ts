import { createHash } from 'node:crypto';
import type { InvalidationListener, Subscription } from '@authmd/core/store';
import { wellKnown, wellKnownUrl, withoutTrailingSlash } from '@authmd/protocol';
import { bearerGuard, TokenLookupUnavailable, type Guard, type Principal } from './protect.ts';
import { TOKENS_TOPIC } from './topics.ts';

export interface RemoteGuardOptions {
  /**
   * The authorization server's issuer. Its RFC 8414 metadata names the introspection endpoint
   * (fetched once, on first use), and every introspection answer must carry this `iss`.
   */
  issuer?: string;
  /** The introspection endpoint itself; default: from the issuer's metadata. One of the two is required. */
  introspectionUrl?: string;
  /** This resource server's introspection credentials (`introspection.clients` on the service). */
  clientId: string;
  clientSecret: string;
  /** This resource server's RFC 8707 identifier: introspected tokens must be bound to it (`aud`). */
  resource: string;
  /** Sent in `WWW-Authenticate`; default: the RFC 9728 well-known URL of `resource`. */
  resourceMetadataUrl?: string;
  /** Scopes the default guard (calling the returned object) requires; `protect()` makes others. */
  scopes?: string[];
  /**
   * How long a positive answer is reused, never past the token's `exp`. Default 5000 ms; 0 asks the
   * service on every request. A token revoked at the service keeps working here for at most this
   * long, unless `forget()` is called on a revocation notification.
   */
  cacheMs?: number;
  /**
   * The service's invalidation channel, for a resource server that can reach it: a store on the
   * service's PostgreSQL database (`createPostgresStore`), or `withRedis(…)` when the service uses
   * Redis. A revocation at the service then clears this guard's cache before the service answers
   * it (the service waits for every listener's acknowledgment), and while the channel is not live
   * the cache is not used at all. Without it, a revoked token is served for at most `cacheMs`.
   */
  invalidation?: { readonly kind?: string; subscribe?(topic: string, listener: InvalidationListener): Subscription };
  /** How long one introspection request may take before the guard answers 503. Default 5000 ms. */
  timeoutMs?: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default: Date.now. */
  clock?: () => number;
  /** Told why the service could not be asked (each 503), for the resource server's log. */
  onError?: (error: Error) => void;
}

/** A guard for a resource server in another process: the same `check` and Request call as `service.protect()`. */
export interface RemoteGuard extends Guard {
  /** A guard for another route of the same resource, with other scopes; it shares the cache. */
  protect(options?: { scopes?: string[] }): Guard;
  /**
   * Drops cached answers: one token's, or every one. The hook for revocation notifications; until
   * it is called a revoked token keeps working here for at most `cacheMs`.
   */
  forget(token?: string): void;
  /** Stops listening on `invalidation`. */
  close(): void;
}

const MAX_CACHED = 50_000;
const DEFAULT_CACHE_MS = 5_000;
const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Validates bearer tokens through the service's RFC 7662 introspection endpoint, with a short
 * positive cache. Refusals are exactly the in-process guard's (401 with `resource_metadata`, 403
 * `insufficient_scope`); when the service cannot be asked, or answers anything but a 200 introspection
 * response, the answer is 503 with Retry-After, never a 401 that would send the agent back to register.
 */
export function createRemoteGuard(options: RemoteGuardOptions): RemoteGuard {
  if (!options.issuer && !options.introspectionUrl) throw new Error('createRemoteGuard: give issuer or introspectionUrl');
  if (!options.clientId || !options.clientSecret) throw new Error('createRemoteGuard: clientId and clientSecret are required');
  const resource = withoutTrailingSlash(options.resource);
  const issuer = options.issuer && withoutTrailingSlash(options.issuer);
  const resourceMetadataUrl = options.resourceMetadataUrl ?? wellKnownUrl(resource, wellKnown.protectedResource);
  const cacheMs = options.cacheMs ?? DEFAULT_CACHE_MS;
  if (!Number.isFinite(cacheMs) || cacheMs < 0) throw new Error('createRemoteGuard: cacheMs must be 0 or more');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fetcher = options.fetch ?? fetch;
  const clock = options.clock ?? Date.now;
  const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  const basic = `Basic ${Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64')}`;

  const cache = new Map<string, { principal: Principal; until: number }>();
  /** Moves on at every forget(); an introspection that straddles one does not cache what it read. */
  let epoch = 0;
  let endpoint: string | undefined = options.introspectionUrl;

  const fail = (why: string, cause?: unknown): never => {
    const error = new TokenLookupUnavailable(why, cause === undefined ? undefined : { cause });
    options.onError?.(error);
    throw error;
  };

  const request = async (url: string, init: RequestInit): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await fetcher(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      return fail(`${url} is out of reach: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    const body = await response.text().catch(() => '');
    if (response.status !== 200) return fail(`${url} answered ${response.status}: ${body.slice(0, 200)}`);
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // fall through
    }
    return fail(`${url} did not answer a JSON object`);
  };

  const introspectionEndpoint = async (): Promise<string> => {
    if (endpoint) return endpoint;
    const metadata = await request(wellKnownUrl(issuer!, wellKnown.authorizationServer), { headers: { accept: 'application/json' } });
    const found = metadata.introspection_endpoint;
    if (metadata.issuer !== issuer || typeof found !== 'string' || !URL.canParse(found)) {
      return fail(`${issuer}'s metadata names no introspection_endpoint (is introspection configured on the service?)`);
    }
    return (endpoint = found);
  };

  const introspect = async (token: string): Promise<Principal | undefined> => {
    const url = await introspectionEndpoint();
    const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
    const answer = await request(url, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
    });
    if (answer.active !== true) return undefined;
    const { scope, exp, aud, iss, token_type: tokenType } = answer;
    // No `exp`: a credential that does not expire (a v0.1 API key); one in the past is over.
    if (exp !== undefined && (typeof exp !== 'number' || exp * 1000 <= clock())) return undefined;
    if (issuer !== undefined && iss !== issuer) return undefined;
    if (tokenType !== undefined && String(tokenType).toLowerCase() !== 'bearer') return undefined;
    const audience = typeof aud === 'string' ? aud : Array.isArray(aud) && aud.length === 1 && typeof aud[0] === 'string' ? aud[0] : undefined;
    const registrationId = answer.registration_id ?? answer.client_id ?? answer.sub;
    if (audience === undefined || typeof registrationId !== 'string') return undefined;
    return {
      registrationId,
      userId: typeof answer.user_id === 'string' ? answer.user_id : null,
      scopes: typeof scope === 'string' && scope ? scope.split(' ') : [],
      resource: withoutTrailingSlash(audience),
      expiresAt: typeof exp === 'number' ? exp * 1000 : null,
    };
  };

  const forget = (token?: string): void => {
    epoch += 1;
    if (token === undefined) cache.clear();
    else cache.delete(createHash('sha256').update(token).digest('base64url'));
  };
  if (options.invalidation && !options.invalidation.subscribe) {
    throw new Error(`createRemoteGuard: invalidation (${options.invalidation.kind ?? 'this object'}) has no channel between processes; give a PostgreSQL store on the service's database, or withRedis(…)`);
  }
  const subscription = options.invalidation?.subscribe?.(TOKENS_TOPIC, () => forget());
  /** Without a live channel, revocations may be going by unheard: only a fresh answer will do. */
  const cacheUsable = () => subscription?.live ?? true;

  const lookup = async (token: string): Promise<Principal | undefined> => {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = clock();
    const cached = cacheUsable() ? cache.get(key) : undefined;
    if (cached && cached.until > now) return cached.principal;
    if (cached) cache.delete(key);
    const started = epoch;
    const principal = await introspect(token);
    if (principal && cacheMs > 0 && started === epoch && cacheUsable()) {
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
      cache.set(key, { principal, until: Math.min(now + cacheMs, principal.expiresAt ?? Infinity) });
    }
    return principal;
  };

  const protect = (protectOptions: { scopes?: string[] } = {}): Guard =>
    bearerGuard({ resource, scopes: protectOptions.scopes ?? [], resourceMetadataUrl, lookup });

  const close = (): void => subscription?.close();

  return Object.assign(protect({ scopes: options.scopes }), { protect, forget, close });
}
