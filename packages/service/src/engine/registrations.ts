import { isEmail, paths, prefixes, protocolError, type RegistrationType, type RegistrationView } from '@authmd/protocol';
import { registrationRow, type RegistrationRow } from '../schema.ts';
import { secretKey, timeOrderedSecret, timeOrderedValue } from '../secrets.ts';
import { mintAssertion } from './assertions.ts';
import { newAttempt } from './attempts.ts';
import { checkRegistrationRate } from './rate-limits.ts';
import * as lifecycle from './registration-lifecycle.ts';
import { normalizeEmail } from './users.ts';
import type { EngineContext } from './context.ts';

/** How long an unclaimed registration's row outlives its claim window (late claims still get claim_expired). */
export const KEEP_AFTER_CLAIM_WINDOW_MS = 7 * 86_400_000;

/** The scopes a registration's access tokens carry: pre-claim until an anonymous one is claimed. */
export function grantedScopes(ctx: EngineContext, registration: RegistrationRow): string[] {
  const unclaimedAnonymous = registration.type === 'anonymous' && registration.claimed_at === null;
  return unclaimedAnonymous ? ctx.config.scopes.preClaim : ctx.config.scopes.postClaim;
}

/**
 * `POST /agent/identity {type:"anonymous"}`: a registration with an identity assertion at once
 * (pre-claim scopes) and a claim token a human can use to take it over.
 */
export async function registerAnonymous(ctx: EngineContext, request: { clientIp?: string }): Promise<RegistrationView> {
  if (!ctx.config.methods.anonymous) {
    throw protocolError('anonymous_not_enabled', 'Anonymous registration is switched off on this service.');
  }
  const { row, claimToken } = newRegistration(ctx, 'anonymous', request.clientIp, null);
  await ctx.store.transaction(async (tx) => {
    await checkRegistrationRate(ctx, tx, 'anonymous', request.clientIp);
    await lifecycle.create(ctx, tx, row, {});
  });
  // Signed after the commit: a refused request costs no signature, and a crash in between leaves
  // only an unacknowledged registration that expires unclaimed.
  const identity = await mintAssertion(ctx, row);
  return {
    id: row.id,
    type: 'anonymous',
    identity: { assertion: identity.assertion, expiresAt: identity.expiresAt },
    scopes: { kind: 'claimable', preClaim: ctx.config.scopes.preClaim, postClaim: ctx.config.scopes.postClaim },
    claim: { token: claimToken, expiresAt: row.claim_expires_at!, url: ctx.config.issuer + paths.claim },
  };
}

/**
 * `POST /agent/identity {type:"service_auth", login_hint}`: nothing usable until the human named by
 * the email confirms on the claim page. The answer is the same whether or not an account exists for
 * that address: no account is looked up here at all.
 */
export async function registerServiceAuth(ctx: EngineContext, request: { loginHint: string; clientIp?: string }): Promise<RegistrationView> {
  if (!ctx.config.methods.serviceAuth) {
    throw protocolError('service_auth_not_enabled', 'Registration by email is switched off on this service.');
  }
  if (!isEmail(request.loginHint)) throw protocolError('invalid_login_hint', 'login_hint must be the user\'s email address.');
  const email = normalizeEmail(request.loginHint);
  const { row, claimToken } = newRegistration(ctx, 'service_auth', request.clientIp, email);
  const attempt = await ctx.store.transaction(async (tx) => {
    await checkRegistrationRate(ctx, tx, 'service_auth', request.clientIp);
    await lifecycle.create(ctx, tx, row, {});
    return newAttempt(ctx, tx, row, email);
  });
  return {
    id: row.id,
    type: 'service_auth',
    scopes: { kind: 'claimable', postClaim: ctx.config.scopes.postClaim },
    claim: { token: claimToken, expiresAt: row.claim_expires_at!, url: ctx.config.issuer + paths.claim, attempt },
  };
}

/** A new registration's row with a claim window, and its claim token (kept only as its `secretKey`). */
export function newRegistration(ctx: EngineContext, type: RegistrationType, clientIp: string | undefined, loginHint: string | null) {
  const now = ctx.clock();
  const claimToken = timeOrderedSecret(ctx.random, prefixes.claimToken, now);
  const claimExpiresAt = now + ctx.config.lifetimes.claimWindowMs;
  const row = registrationRow({
    id: timeOrderedValue(ctx.random, prefixes.registration, now),
    type,
    created_at: now,
    claim_token_hash: secretKey(claimToken),
    claim_expires_at: claimExpiresAt,
    login_hint: loginHint,
    client_ip: clientIp ?? null,
    expires_at: claimExpiresAt + KEEP_AFTER_CLAIM_WINDOW_MS,
  });
  return { row, claimToken };
}

/** Operator action: the registration, its assertions and its tokens stop working for good. */
export async function revokeRegistration(ctx: EngineContext, registrationId: string, operator?: string): Promise<boolean> {
  const revoked = (await ctx.store.transaction((tx) => lifecycle.revoke(ctx, tx, registrationId, operator))) !== undefined;
  if (revoked) await ctx.tokens.forgetCached();
  return revoked;
}
