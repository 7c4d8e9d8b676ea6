import { protocolError, type IdentityView } from '@authmd/protocol';
import { claimAttempts, registrations, type RegistrationRow, type UserRow } from '../schema.ts';
import type { StoreOps } from '../store/contract.ts';
import { mintAssertion } from './assertions.ts';
import type { EngineContext } from './context.ts';
import { delegationKey, linkDelegation } from './delegations.ts';
import { mintRefreshToken } from './refresh.ts';
import { userClaims } from './users.ts';

export interface Claimed {
  registration: RegistrationRow;
  identity: IdentityView;
}

/**
 * The moment a human takes a registration over by the ceremony, whichever direction got here: the
 * attempt is completed exactly once (compare-and-set), then the registration is bound. For the
 * read-back direction a refresh token is issued and the claim grant will hand nothing out again.
 */
export async function completeClaim(
  ctx: EngineContext,
  attemptId: string,
  before: RegistrationRow,
  user: UserRow,
  options: { refreshToken: boolean },
): Promise<Claimed> {
  return bindToUser(ctx, before, user, async (tx, now) => {
    if (!(await tx.update(claimAttempts, attemptId, { completed_at: now }, { completed_at: null, denied_at: null }))) throw alreadyClaimed();
    if (options.refreshToken) await tx.update(claimAttempts, attemptId, { handed_over_at: now });
    return { refreshToken: options.refreshToken, attemptId };
  });
}

/**
 * Binds a registration to a user, in one transaction: the registration moves to the next generation
 * (every older assertion stops working), its pre-claim access tokens are revoked (audited), a
 * provider account it came with is linked to the user, and `prepare` does what the caller's path
 * adds (completing an attempt). `before` is the registration as the caller read it; compare-and-set
 * on its generation catches any change since. The new assertion carries the user's email.
 */
export async function bindToUser(
  ctx: EngineContext,
  before: RegistrationRow,
  user: UserRow,
  prepare: (tx: StoreOps, now: number) => Promise<{ refreshToken: boolean; attemptId?: string; changes?: Partial<RegistrationRow> }>,
): Promise<Claimed> {
  if (before.claimed_at !== null) throw alreadyClaimed();
  const generation = before.generation + 1;
  // Signed before the transaction, so that the transaction holds no lock while the threadpool signs.
  const identity: IdentityView = await mintAssertion(ctx, { id: before.id, generation }, userClaims(user));
  const now = ctx.clock();

  const registration = await ctx.store.transaction(async (tx) => {
    const step = await prepare(tx, now);
    // A provider account is linked only to the account it was matched to; anyone else who ends up
    // claiming the registration (a re-minted attempt for another email) gets it without the link.
    const linking = before.provider_iss !== null && before.provider_sub !== null && before.link_user_id === user.id;
    const provider = linking ? { iss: before.provider_iss!, sub: before.provider_sub! } : undefined;
    const bound = await tx.update(
      registrations,
      before.id,
      {
        ...step.changes,
        claimed_at: now,
        user_id: user.id,
        generation,
        expires_at: null,
        ...(provider
          ? { delegation_key: delegationKey(provider.iss, provider.sub) }
          : { provider_iss: null, provider_sub: null, delegation_key: null, link_user_id: null }),
      },
      { claimed_at: null, revoked_at: null, generation: before.generation },
    );
    if (!bound) throw alreadyClaimed();
    if (provider) await linkDelegation(ctx, tx, provider.iss, provider.sub, user.id);
    const revoked = await ctx.tokens.revokeForRegistration(tx, before.id);
    if (revoked) await ctx.audit.record({ type: 'token.revoked', at: now, registrationId: before.id, data: { reason: 'claimed', access_tokens: revoked } }, tx);
    if (step.refreshToken) identity.refreshToken = await mintRefreshToken(ctx, tx, before.id);
    const data = { user_id: user.id, ...(step.attemptId ? { attempt_id: step.attemptId } : {}), ...(provider ? { provider: provider.iss } : {}) };
    await ctx.audit.record({ type: 'claim.confirmed', at: now, registrationId: before.id, data }, tx);
    return (await tx.get(registrations, before.id))!;
  });
  ctx.tokens.forgetCached();
  return { registration, identity };
}

function alreadyClaimed() {
  return protocolError('already_claimed', 'This registration is already claimed.');
}
