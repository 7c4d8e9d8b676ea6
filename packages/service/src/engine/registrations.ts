import { isEmail, paths, prefixes, protocolError, type RegistrationType, type RegistrationView } from '@authmd/protocol';
import { registrations, scheduled, type RegistrationRow } from '../schema.ts';
import { hashSecret, opaqueValue } from '../secrets.ts';
import type { StoreOps } from '../store/contract.ts';
import { mintAssertion } from './assertions.ts';
import { newAttempt } from './attempts.ts';
import { checkRegistrationRate } from './rate-limits.ts';
import { normalizeEmail } from './users.ts';
import type { EngineContext } from './context.ts';

export type RegistrationStatus = 'unclaimed' | 'claimed' | 'expired' | 'revoked';

/** How long an unclaimed registration's row outlives its claim window (late claims still get claim_expired). */
const KEEP_AFTER_CLAIM_WINDOW_MS = 7 * 86_400_000;

export function registrationStatus(registration: RegistrationRow, now: number): RegistrationStatus {
  if (registration.revoked_at !== null) return 'revoked';
  if (registration.claimed_at !== null) return 'claimed';
  if (registration.claim_expires_at !== null && registration.claim_expires_at <= now) return 'expired';
  return 'unclaimed';
}

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
    await insertRegistration(ctx, tx, row);
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
    await insertRegistration(ctx, tx, row);
    return newAttempt(ctx, tx, row, email);
  });
  return {
    id: row.id,
    type: 'service_auth',
    scopes: { kind: 'claimable', postClaim: ctx.config.scopes.postClaim },
    claim: { token: claimToken, expiresAt: row.claim_expires_at!, url: ctx.config.issuer + paths.claim, attempt },
  };
}

function newRegistration(ctx: EngineContext, type: RegistrationType, clientIp: string | undefined, loginHint: string | null) {
  const now = ctx.clock();
  const claimToken = opaqueValue(ctx.random, prefixes.claimToken);
  const claimExpiresAt = now + ctx.config.lifetimes.claimWindowMs;
  const row: RegistrationRow = {
    id: opaqueValue(ctx.random, prefixes.registration, 16),
    type,
    created_at: now,
    generation: 0,
    claim_token_hash: hashSecret(claimToken),
    claim_expires_at: claimExpiresAt,
    claimed_at: null,
    revoked_at: null,
    user_id: null,
    login_hint: loginHint,
    provider_iss: null,
    provider_sub: null,
    delegation_key: null,
    link_user_id: null,
    current_attempt_id: null,
    client_ip: clientIp ?? null,
    expires_at: claimExpiresAt + KEEP_AFTER_CLAIM_WINDOW_MS,
  };
  return { row, claimToken };
}

/** Stores a new registration, its audit event, and the reminder that marks it expired if nobody claims it. */
async function insertRegistration(ctx: EngineContext, tx: StoreOps, row: RegistrationRow): Promise<void> {
  await tx.insert(registrations, row);
  await tx.insert(scheduled, { id: `expire:${row.id}`, kind: 'registration.expired', subject: row.id, due_at: row.claim_expires_at! });
  await ctx.audit.record({ type: 'registration.created', at: row.created_at, registrationId: row.id, data: { type: row.type } }, tx);
}

/**
 * Moves the registration to the next generation (every earlier assertion stops working) and revokes
 * its access tokens. Compare-and-set on `generation`: of two concurrent callers one does the work.
 * Returns false when the generation had already moved on.
 */
export async function supersedeAssertions(ctx: EngineContext, tx: StoreOps, registrationId: string, generation: number): Promise<boolean> {
  const bumped = await tx.update(registrations, registrationId, { generation: generation + 1 }, { generation });
  if (bumped) await ctx.tokens.revokeForRegistration(tx, registrationId);
  return bumped;
}

/** Operator action: the registration, its assertions and its tokens stop working for good. */
export async function revokeRegistration(ctx: EngineContext, registrationId: string): Promise<boolean> {
  const now = ctx.clock();
  const revoked = await ctx.store.transaction(async (tx) => {
    const registration = await tx.get(registrations, registrationId);
    if (!registration || registration.revoked_at !== null) return false;
    await tx.update(registrations, registrationId, { revoked_at: now, expires_at: null });
    await supersedeAssertions(ctx, tx, registrationId, registration.generation);
    await ctx.audit.record({ type: 'registration.revoked', at: now, registrationId }, tx);
    return true;
  });
  if (revoked) ctx.tokens.forgetCached();
  return revoked;
}
