import type { StoreOps } from '@authmd/core/store';
import { protocolError, type V01CredentialType, type V01CredentialView } from '@authmd/protocol';
import { accessTokens, type RegistrationRow } from '../schema.ts';
import type { EngineContext } from './context.ts';
import { issueAccessToken } from './exchange.ts';
import { requireMayMint } from './registration-lifecycle.ts';
import { grantedScopes } from './registrations.ts';

/**
 * The credentials v0.1 hands out directly: an OAuth access token (the same as the token endpoint
 * issues), or an API key: prefixed `sk_`, shown once, stored as a hash, bound to the default
 * resource, without expiry, revoked like any token (RFC 7009, the operator, a provider event).
 */

/** The requested type, checked against what the method can issue; `fallback` when none was asked for. */
export function credentialTypeFor(requested: string | undefined, allowed: readonly V01CredentialType[], fallback: V01CredentialType): V01CredentialType {
  if (requested === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(requested)) {
    throw protocolError('unsupported_credential_type', `requested_credential_type: this registration method issues ${allowed.join(' or ')}, not ${requested.slice(0, 40)}.`);
  }
  return requested as V01CredentialType;
}

/** Issues a credential of `type` to a registration that may have one now, inside `tx`. */
export async function issueCredential(ctx: EngineContext, tx: StoreOps, registration: RegistrationRow, type: V01CredentialType): Promise<V01CredentialView> {
  if (type === 'access_token') {
    const token = await issueAccessToken(ctx, tx, registration, {});
    return { type, value: token.accessToken, expiresAt: ctx.clock() + token.expiresIn * 1000, scopes: token.scopes };
  }
  requireMayMint(registration, ctx.clock(), 'invalid_grant');
  const scopes = grantedScopes(ctx, registration);
  const issued = await ctx.tokens.issue(tx, { registrationId: registration.id, userId: registration.user_id, scopes, resource: ctx.config.defaultResource, apiKey: true });
  await ctx.audit.record({ type: 'token.issued', at: ctx.clock(), registrationId: registration.id, data: { scope: issued.row.scope, resource: issued.row.resource, kind: 'api_key' } }, tx);
  return { type, value: issued.accessToken, expiresAt: null, scopes };
}

/**
 * Whether the registration still has a live API key (an anonymous v0.1 one keeps using it once
 * claimed). Reads the registration's own tokens: a v0.1 registration has its key and little else.
 */
export async function hasLiveApiKey(ctx: EngineContext, registrationId: string): Promise<boolean> {
  const rows = await ctx.store.findMany(accessTokens, 'registration_id', registrationId);
  return rows.some((row) => row.kind === 'api_key' && row.revoked_at === null);
}
