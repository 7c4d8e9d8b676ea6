import { protocolError, type IdentityView } from '@authmd/protocol';
import { claimAttempts, registrations, type RegistrationRow, type UserRow } from '../schema.ts';
import { mintAssertion } from './assertions.ts';
import type { EngineContext } from './context.ts';
import { mintRefreshToken } from './refresh.ts';

export interface Claimed {
  registration: RegistrationRow;
  identity: IdentityView;
}

/**
 * The moment a human takes a registration over, whichever direction got here. `before` is the
 * registration as the caller read it; compare-and-set on its generation catches any change since.
 * In one transaction:
 * the attempt is completed (exactly once, by compare-and-set), the registration is bound to the user
 * and moves to the next generation (every older assertion stops working), its pre-claim access
 * tokens are revoked, and, for the read-back direction, a refresh token is issued. The new
 * assertion carries the user's email.
 */
export async function completeClaim(
  ctx: EngineContext,
  attemptId: string,
  before: RegistrationRow,
  user: UserRow,
  options: { refreshToken: boolean },
): Promise<Claimed> {
  if (before.claimed_at !== null) throw alreadyClaimed();
  const generation = before.generation + 1;
  // Signed before the transaction, so that the transaction holds no lock while the threadpool signs.
  const identity: IdentityView = await mintAssertion(ctx, { id: before.id, generation }, { email: user.email, email_verified: true });
  const now = ctx.clock();

  const registration = await ctx.store.transaction(async (tx) => {
    const completed = await tx.update(claimAttempts, attemptId, { completed_at: now }, { completed_at: null, denied_at: null });
    if (!completed) throw alreadyClaimed();
    const bound = await tx.update(
      registrations,
      before.id,
      { claimed_at: now, user_id: user.id, generation, expires_at: null },
      { claimed_at: null, revoked_at: null, generation: before.generation },
    );
    if (!bound) throw alreadyClaimed();
    const revoked = await ctx.tokens.revokeForRegistration(tx, before.id);
    if (revoked) await ctx.audit.record({ type: 'token.revoked', at: now, registrationId: before.id, data: { reason: 'claimed', access_tokens: revoked } }, tx);
    if (options.refreshToken) {
      identity.refreshToken = await mintRefreshToken(ctx, tx, before.id);
      // The agent holds its credentials from this answer; the claim grant must not hand out a second set.
      await tx.update(claimAttempts, attemptId, { handed_over_at: now });
    }
    await ctx.audit.record({ type: 'claim.confirmed', at: now, registrationId: before.id, data: { user_id: user.id, attempt_id: attemptId } }, tx);
    return (await tx.get(registrations, before.id))!;
  });
  ctx.tokens.forgetCached();
  return { registration, identity };
}

function alreadyClaimed() {
  return protocolError('already_claimed', 'This registration is already claimed.');
}
