import { paths, prefixes, protocolError, type RegistrationView } from '@authmd/protocol';
import { registrations, type RegistrationRow } from '../schema.ts';
import { hashSecret, opaqueValue } from '../secrets.ts';
import type { StoreOps } from '../store/contract.ts';
import { mintAssertion } from './assertions.ts';
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
  const now = ctx.clock();
  const claimToken = opaqueValue(ctx.random, prefixes.claimToken);
  const claimExpiresAt = now + ctx.config.lifetimes.claimWindowMs;
  const row: RegistrationRow = {
    id: opaqueValue(ctx.random, prefixes.registration, 16),
    type: 'anonymous',
    created_at: now,
    generation: 0,
    claim_token_hash: hashSecret(claimToken),
    claim_expires_at: claimExpiresAt,
    claimed_at: null,
    revoked_at: null,
    user_id: null,
    client_ip: request.clientIp ?? null,
    expires_at: claimExpiresAt + KEEP_AFTER_CLAIM_WINDOW_MS,
  };
  const identity = await mintAssertion(ctx, row);
  await ctx.store.transaction(async (tx) => {
    await tx.insert(registrations, row);
    await ctx.audit.record({ type: 'registration.created', at: now, registrationId: row.id, data: { type: 'anonymous' } }, tx);
  });
  return {
    id: row.id,
    type: 'anonymous',
    identity: { assertion: identity.assertion, expiresAt: identity.expiresAt },
    scopes: { kind: 'claimable', preClaim: ctx.config.scopes.preClaim, postClaim: ctx.config.scopes.postClaim },
    claim: { token: claimToken, expiresAt: claimExpiresAt, url: ctx.config.issuer + paths.claim },
  };
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
