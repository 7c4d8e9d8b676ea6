import type { StoreOps } from '@authmd/core/store';
import { prefixes, protocolError, type IdentityView } from '@authmd/protocol';
import * as lifecycle from './registration-lifecycle.ts';
import { refreshTokens, registrations } from '../schema.ts';
import { opaqueValue, secretKey, timeOrderedSecret } from '../secrets.ts';
import { mintAssertion } from './assertions.ts';
import type { EngineContext } from './context.ts';
import { getUser, userClaims } from './users.ts';

/**
 * Rotating refresh tokens. Each use spends the token and issues its successor in the same family,
 * along with a new identity assertion of the next generation (older assertions stop working).
 * Presenting a spent token is the theft signal: the whole family, the registration's access tokens
 * and its assertions are revoked.
 */

export async function mintRefreshToken(ctx: EngineContext, tx: StoreOps, registrationId: string, familyId?: string): Promise<{ value: string; expiresAt: number }> {
  const now = ctx.clock();
  const value = timeOrderedSecret(ctx.random, prefixes.refreshToken, now);
  const expiresAt = now + ctx.config.lifetimes.refreshTokenMs;
  await tx.append(refreshTokens, {
    token_hash: secretKey(value),
    family_id: familyId ?? opaqueValue(ctx.random, 'fam_', 16),
    registration_id: registrationId,
    created_at: now,
    expires_at: expiresAt,
    spent_at: null,
    revoked_at: null,
  });
  return { value, expiresAt };
}

export async function refresh(ctx: EngineContext, refreshToken: string): Promise<{ registrationId: string; identity: IdentityView }> {
  const invalid = (reason?: string) =>
    protocolError('invalid_refresh_token', 'The refresh token is invalid, expired, or already used.', reason ? { reason } : {});
  const hash = secretKey(refreshToken);
  const now = ctx.clock();
  const token = await ctx.store.get(refreshTokens, hash);
  if (!token || token.revoked_at !== null || token.expires_at <= now) throw invalid();
  if (token.spent_at !== null) {
    await burnFamily(ctx, token.family_id, token.registration_id);
    throw invalid('refresh_token_reused');
  }
  const registration = await ctx.store.get(registrations, token.registration_id);
  if (!registration) throw invalid();
  lifecycle.requireMayMint(registration, now, 'invalid_refresh_token');
  const user = registration.user_id ? await getUser(ctx, registration.user_id) : undefined;
  const generation = registration.generation + 1;
  const identity: IdentityView = await mintAssertion(ctx, { id: registration.id, generation }, userClaims(user));

  const rotated = await ctx.store.transaction(async (tx) => {
    if (!(await tx.update(refreshTokens, hash, { spent_at: now }, { spent_at: null, revoked_at: null }))) return false;
    if (!(await lifecycle.refresh(ctx, tx, registration))) {
      throw invalid(); // revoked or refreshed meanwhile: this token's spend is rolled back with the rest
    }
    identity.refreshToken = await mintRefreshToken(ctx, tx, registration.id, token.family_id);
    await ctx.audit.record({ type: 'assertion.refreshed', at: now, registrationId: registration.id }, tx);
    return true;
  });
  if (!rotated) {
    // Spent by a concurrent request between our read and our write: the same theft signal.
    await burnFamily(ctx, token.family_id, token.registration_id);
    throw invalid('refresh_token_reused');
  }
  return { registrationId: registration.id, identity };
}

/** RFC 7009 for refresh tokens: the family, the registration's assertions and its access tokens end. */
export async function revokeRefreshToken(ctx: EngineContext, refreshToken: string): Promise<boolean> {
  const token = await ctx.store.get(refreshTokens, secretKey(refreshToken));
  if (!token || token.revoked_at !== null) return false;
  await burnFamily(ctx, token.family_id, token.registration_id, 'revoked');
  return true;
}

async function burnFamily(ctx: EngineContext, familyId: string, registrationId: string, reason = 'refresh_token_reused'): Promise<void> {
  const now = ctx.clock();
  await ctx.store.transaction(async (tx) => {
    await tx.updateWhere(refreshTokens, 'family_id', familyId, { revoked_at: now }, { revoked_at: null });
    await lifecycle.supersede(ctx, tx, registrationId);
    await ctx.audit.record({ type: 'token.revoked', at: now, registrationId, data: { reason, family_id: familyId } }, tx);
  });
  await ctx.tokens.forgetCached();
}
