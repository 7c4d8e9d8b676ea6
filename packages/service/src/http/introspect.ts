import { createHash, timingSafeEqual } from 'node:crypto';
import { parseWith, prefixes, protocolError, revocationRequest } from '@authmd/protocol';
import type { AccessTokenRow } from '../schema.ts';
import type { Endpoint, HttpRequest } from './env.ts';
import { readForm, valid } from './request.ts';
import { json } from './responses.ts';
import type { ServiceConfig } from '../config.ts';

/**
 * `POST /oauth2/introspect` (RFC 7662), served only when `introspection.clients` is configured.
 * Callers authenticate with HTTP Basic (RFC 7662 §2.1, RFC 6749 §2.3.1: id and secret
 * form-encoded, then base64). A live access token is described; anything else (unknown, revoked,
 * expired, an identity assertion, a refresh token) is `{"active":false}` and nothing more (§2.2).
 * The store is read directly, not through the validation cache: the caller caches the answer itself.
 * Not rate-limited: only configured clients get past authentication, and token values are 256-bit
 * random, so there is nothing to guess.
 */
export const postIntrospect: Endpoint = async (request, { ctx }) => {
  const introspection = ctx.config.introspection;
  if (!introspection) throw protocolError('not_found', `Nothing is served at ${request.pathname}.`);
  authenticate(request, introspection, ctx.config.issuer);
  const form = await readForm(request, ctx.config.maxBodyBytes);
  const { token } = valid(parseWith(revocationRequest, form));
  // token_type_hint is only a hint (§2.1); only access tokens can ever be active here.
  const row = token.startsWith(prefixes.accessToken) || token.startsWith(prefixes.apiKey) ? await ctx.tokens.lookup(token) : undefined;
  return json(row ? describe(row, ctx.config.issuer) : { active: false });
};

function describe(row: AccessTokenRow, issuer: string): Record<string, unknown> {
  return {
    active: true,
    scope: row.scope,
    client_id: row.registration_id,
    sub: row.user_id ?? row.registration_id,
    aud: row.resource,
    iss: issuer,
    ...(row.expires_at !== null ? { exp: Math.floor(row.expires_at / 1000) } : {}),
    iat: Math.floor(row.issued_at / 1000),
    token_type: 'Bearer',
    // auth.md members: who the principal is, without guessing from `sub`.
    registration_id: row.registration_id,
    ...(row.user_id !== null ? { user_id: row.user_id } : {}),
  };
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();
/** Compared against when the id is unknown, so that an unknown id costs the same as a wrong secret. */
const NO_SECRET = sha256('\u0000no introspection client\u0000');

function authenticate(request: HttpRequest, introspection: NonNullable<ServiceConfig['introspection']>, issuer: string): void {
  const credentials = basicCredentials(request.header('authorization'));
  const client = credentials && introspection.clients.find((c) => c.id === credentials.id);
  const presented = sha256(credentials?.secret ?? '');
  const matches = timingSafeEqual(presented, client?.secretHash ?? NO_SECRET);
  if (client && matches) return;
  throw protocolError('invalid_client', 'Introspection needs the client id and secret of a configured caller, in HTTP Basic.', {
    headers: { 'WWW-Authenticate': `Basic realm="${issuer}", charset="UTF-8"` },
    detail: credentials ? `introspection caller ${JSON.stringify(credentials.id.slice(0, 64))} not authenticated` : 'introspection without Basic credentials',
  });
}

/** `Basic base64(urlencode(id) ":" urlencode(secret))`, or undefined when malformed. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    const formDecode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}
