import type { StoreOps } from '@authmd/core/store';
import { protocolError, withoutTrailingSlash, type AccessTokenView } from '@authmd/protocol';
import { registrations, type RegistrationRow } from '../schema.ts';
import { verifyAssertion } from './assertions.ts';
import type { EngineContext } from './context.ts';
import { requireMayMint } from './registration-lifecycle.ts';
import { grantedScopes } from './registrations.ts';

export interface TokenRequest {
  /** RFC 8707: the resource the token is for; default, the service's first resource. */
  resource?: string;
  /** Optional narrowing of the granted scopes. */
  scope?: string;
}

/**
 * The jwt-bearer grant (RFC 7523) for the service's own identity assertions. The registration is
 * read and the token written in one transaction, so a revocation cannot slip between the check and
 * the issue. The transaction is rerunnable (it only reads and appends): on PostgreSQL the read takes
 * no lock and the token shares a commit with other requests' rows, on the condition that the
 * registration is still the version read, else the exchange runs again.
 */
export async function exchangeAssertion(ctx: EngineContext, request: TokenRequest & { assertion: string }): Promise<AccessTokenView> {
  const verified = await verifyAssertion(ctx, request.assertion);
  const now = ctx.clock();
  return ctx.store.transaction(async (tx) => {
    // Shared: a claim or revocation waits for this commit, but exchanges of one registration do not wait for each other.
    const registration = await tx.get(registrations, verified.registrationId, { shared: true });
    if (!registration) throw protocolError('invalid_grant', 'The registration of this assertion no longer exists.', { reason: 'unknown_registration' });
    requireMayMint(registration, now, 'invalid_grant');
    if (verified.generation !== registration.generation) {
      throw protocolError('invalid_grant', 'This assertion was superseded by a newer one (after a claim, refresh or revocation).', { reason: 'superseded' });
    }
    return issueAccessToken(ctx, tx, registration, request);
  }, { rerunnable: true });
}

/** Issues an access token for a registration that may have one: scopes, resource binding, audit. */
export async function issueAccessToken(ctx: EngineContext, tx: StoreOps, registration: RegistrationRow, request: TokenRequest): Promise<AccessTokenView> {
  requireMayMint(registration, ctx.clock(), 'invalid_grant');
  const resource = resolveResource(ctx, request.resource);
  const scopes = narrowScopes(grantedScopes(ctx, registration), request.scope);
  const issued = await ctx.tokens.issue(tx, {
    registrationId: registration.id,
    userId: registration.user_id,
    scopes,
    resource,
    lifetimeMs: ctx.config.lifetimes.accessTokenMs,
  });
  await ctx.audit.record({ type: 'token.issued', at: ctx.clock(), registrationId: registration.id, data: { scope: issued.row.scope, resource } }, tx);
  return { accessToken: issued.accessToken, expiresIn: Math.floor(ctx.config.lifetimes.accessTokenMs / 1000), scopes };
}

/** RFC 8707: the token is bound to one configured resource; without `resource`, the default one. */
function resolveResource(ctx: EngineContext, requested: string | undefined): string {
  if (requested === undefined) return ctx.config.defaultResource;
  let url: URL;
  try {
    url = new URL(requested);
  } catch {
    throw protocolError('invalid_target', 'resource must be an absolute URI.');
  }
  const known = !url.hash && ctx.config.resources.find((r) => r.resource === withoutTrailingSlash(requested));
  if (!known) throw protocolError('invalid_target', `resource ${requested} is not a resource of this service.`);
  return known.resource;
}

/** An optional `scope` narrows the grant; asking for more than the registration holds is refused. */
function narrowScopes(granted: string[], requested: string | undefined): string[] {
  if (requested === undefined || requested.trim() === '') return granted;
  const asked = [...new Set(requested.split(' ').filter(Boolean))];
  const extra = asked.filter((scope) => !granted.includes(scope));
  if (extra.length) throw protocolError('invalid_scope', `This registration does not hold ${extra.join(', ')}.`);
  return asked;
}
