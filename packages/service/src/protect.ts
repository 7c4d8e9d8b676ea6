import { wellKnown, wellKnownUrl, withoutTrailingSlash, type ErrorCode, errorSpec } from '@authmd/protocol';
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
  expiresAt: number;
}

/** A 401 or 403 ready to send: headers include WWW-Authenticate, Content-Type and Cache-Control. */
export type Refusal = { status: 401 | 403; headers: Record<string, string>; body: Record<string, unknown> };
export type GuardOutcome = { ok: true; principal: Principal } | { ok: false; refusal: Refusal };

/** A guard for one route: `check` takes the Authorization header value; calling it takes a Request. */
export interface Guard {
  (request: Request): Promise<{ ok: true; principal: Principal } | { ok: false; response: Response }>;
  check(authorization: string | null | undefined): Promise<GuardOutcome>;
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

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
  const required = options.scopes ?? [];
  const metadataUrl = wellKnownUrl(resource, wellKnown.protectedResource);

  const refuse = (status: 401 | 403, code: ErrorCode | null, description: string, extra = ''): GuardOutcome => {
    const challenge = code
      ? `Bearer error="${code}", error_description="${description}"${extra}, resource_metadata="${metadataUrl}"`
      : `Bearer resource_metadata="${metadataUrl}"`;
    const error = code ?? 'unauthorized';
    const message = `${description} ${errorSpec(error).hint}`;
    const headers = { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' };
    return { ok: false, refusal: { status, headers, body: { error, error_description: message, message } } };
  };

  const check = async (authorization: string | null | undefined): Promise<GuardOutcome> => {
    if (!authorization || !/^bearer(\s|$)/i.test(authorization)) return refuse(401, null, 'A bearer access token is required.');
    const token = BEARER.exec(authorization)?.[1];
    if (!token) return refuse(401, 'invalid_token', 'The Authorization header is not a well-formed bearer token.');
    const row = await ctx.tokens.validate(token);
    if (!row) return refuse(401, 'invalid_token', 'The access token is invalid, expired or revoked.');
    if (row.resource !== resource) return refuse(401, 'invalid_token', 'The access token was issued for another resource.');
    const scopes = row.scope.split(' ');
    const missing = required.filter((scope) => !scopes.includes(scope));
    if (missing.length) {
      return refuse(403, 'insufficient_scope', `The access token lacks ${missing.join(' ')}.`, `, scope="${required.join(' ')}"`);
    }
    return { ok: true, principal: principalOf(row, scopes) };
  };

  const guard = async (request: Request) => {
    const outcome = await check(request.headers.get('authorization'));
    if (outcome.ok) return outcome;
    const { status, headers, body } = outcome.refusal;
    return { ok: false as const, response: new Response(JSON.stringify(body), { status, headers }) };
  };
  return Object.assign(guard, { check });
}

function principalOf(row: AccessTokenRow, scopes: string[]): Principal {
  return { registrationId: row.registration_id, userId: row.user_id, scopes, resource: row.resource, expiresAt: row.expires_at };
}
