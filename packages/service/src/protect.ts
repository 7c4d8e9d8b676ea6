import { StoreUnavailableError } from '@authmd/core/store';
import { wellKnown, wellKnownUrl, withoutTrailingSlash, errorSpec, type ErrorCode } from '@authmd/protocol';
import type { EngineContext } from './engine/context.ts';
import type { AccessTokenRow } from './schema.ts';

export interface ProtectOptions {
  /** Scopes the token must all hold. */
  scopes?: string[];
  /** The resource this route belongs to; default: the service's first resource. */
  resource?: string;
}

/** Who is calling, once the bearer token checked out. */
export interface Principal {
  registrationId: string;
  /** The user who claimed the registration, when there is one. */
  userId: string | null;
  scopes: string[];
  resource: string;
  /** Epoch ms; null for a v0.1 API key, which works until it is revoked. */
  expiresAt: number | null;
}

/**
 * A 401 or 403 ready to send: headers include WWW-Authenticate, Content-Type and Cache-Control. A
 * remote guard (createRemoteGuard) may also answer 503 when it cannot reach the introspection endpoint.
 */
export type Refusal = { status: 401 | 403 | 503; headers: Record<string, string>; body: Record<string, unknown> };
export type GuardOutcome = { ok: true; principal: Principal } | { ok: false; refusal: Refusal };

/** A guard for one route: `check` takes the Authorization header value; calling it takes a Request. */
export interface Guard {
  (request: Request): Promise<{ ok: true; principal: Principal } | { ok: false; response: Response }>;
  check(authorization: string | null | undefined): Promise<GuardOutcome>;
}

/** Thrown by a token lookup that could not decide (the authorization server is out of reach): 503, not 401. */
export class TokenLookupUnavailable extends Error {
  override readonly name = 'TokenLookupUnavailable';
}

/** Looks a presented token up: its principal when live, undefined when not (unknown, expired, revoked). */
export type TokenLookup = (token: string) => Promise<Principal | undefined>;

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** Seconds a resource server asks callers to wait after a 503. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The resource-server side (RFC 6750): a bearer token looked up by hash (cached, revocation-aware),
 * bound to this route's resource, holding every required scope. Refusals carry
 * `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1) so an agent can discover how to
 * get a token.
 */
export function createGuard(ctx: EngineContext, options: ProtectOptions = {}): Guard {
  const resource = options.resource ? withoutTrailingSlash(options.resource) : ctx.config.defaultResource;
  if (!ctx.config.resources.some((r) => r.resource === resource)) {
    throw new Error(`protect(): ${resource} is not one of the service's resources`);
  }
  return bearerGuard({
    resource,
    scopes: options.scopes ?? [],
    resourceMetadataUrl: wellKnownUrl(resource, wellKnown.protectedResource),
    lookup: async (token) => {
      try {
        const row = await ctx.tokens.validate(token);
        return row && principalOf(row);
      } catch (error) {
        // The database is out of reach: the token cannot be judged, which is a 503, not a 401.
        if (error instanceof StoreUnavailableError) throw new TokenLookupUnavailable(error.message, { cause: error });
        throw error;
      }
    },
  });
}

/**
 * The guard both the in-process `protect()` and the remote guard are: the bearer header parsed, the
 * token looked up by `lookup`, then resource binding and scopes; every refusal with its challenge.
 */
export function bearerGuard(options: { resource: string; scopes: string[]; resourceMetadataUrl: string; lookup: TokenLookup }): Guard {
  const { resource, scopes: required, resourceMetadataUrl, lookup } = options;

  const refuse = (status: 401 | 403, code: ErrorCode | null, description: string, extra = ''): GuardOutcome => {
    const challenge = code
      ? `Bearer error="${code}", error_description="${description}"${extra}, resource_metadata="${resourceMetadataUrl}"`
      : `Bearer resource_metadata="${resourceMetadataUrl}"`;
    const error = code ?? 'unauthorized';
    const message = `${description} ${errorSpec(error).hint}`;
    const headers = { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' };
    return { ok: false, refusal: { status, headers, body: { error, error_description: message, message } } };
  };

  const unavailable = (): GuardOutcome => {
    const message = `The access token cannot be checked right now. Retry after ${RETRY_AFTER_SECONDS} seconds; the token itself may be fine.`;
    const headers = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Retry-After': String(RETRY_AFTER_SECONDS) };
    return { ok: false, refusal: { status: 503, headers, body: { error: 'temporarily_unavailable', error_description: message, message } } };
  };

  const check = async (authorization: string | null | undefined): Promise<GuardOutcome> => {
    if (!authorization || !/^bearer(\s|$)/i.test(authorization)) return refuse(401, null, 'A bearer access token is required.');
    const token = BEARER.exec(authorization)?.[1];
    if (!token) return refuse(401, 'invalid_token', 'The Authorization header is not a well-formed bearer token.');
    let principal: Principal | undefined;
    try {
      principal = await lookup(token);
    } catch (error) {
      if (error instanceof TokenLookupUnavailable) return unavailable();
      throw error;
    }
    if (!principal) return refuse(401, 'invalid_token', 'The access token is invalid, expired or revoked.');
    if (principal.resource !== resource) return refuse(401, 'invalid_token', 'The access token was issued for another resource.');
    const missing = required.filter((scope) => !principal.scopes.includes(scope));
    if (missing.length) {
      return refuse(403, 'insufficient_scope', `The access token lacks ${missing.join(' ')}.`, `, scope="${required.join(' ')}"`);
    }
    return { ok: true, principal };
  };

  const guard = async (request: Request) => {
    const outcome = await check(request.headers.get('authorization'));
    if (outcome.ok) return outcome;
    const { status, headers, body } = outcome.refusal;
    return { ok: false as const, response: new Response(JSON.stringify(body), { status, headers }) };
  };
  return Object.assign(guard, { check });
}

function principalOf(row: AccessTokenRow): Principal {
  return { registrationId: row.registration_id, userId: row.user_id, scopes: row.scope.split(' '), resource: row.resource, expiresAt: row.expires_at };
}
