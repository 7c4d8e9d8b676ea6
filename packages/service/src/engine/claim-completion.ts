import type { StoreOps } from '@authmd/core/store';
import { protocolError, type IdentityView } from '@authmd/protocol';
import * as lifecycle from './registration-lifecycle.ts';
import { claimAttempts, type RegistrationRow, type UserRow } from '../schema.ts';
import { mintAssertion } from './assertions.ts';
import type { EngineContext } from './context.ts';
import { linkDelegation } from './delegations.ts';
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
    if (!(await tx.update(claimAttempts, attemptId, { completed_at: now }, { completed_at: null, denied_at: null }))) {
      throw protocolError('already_claimed', 'This registration is already claimed.');
    }
    if (options.refreshToken) await tx.update(claimAttempts, attemptId, { handed_over_at: now });
    return { refreshToken: options.refreshToken, attemptId };
  });
}

/**
 * Binds a registration to a user (the lifecycle's `claim`), in one transaction with what the
 * caller's path adds (`prepare`: completing an attempt). A provider account the registration came
 * with is linked to the user when the user is the account it was matched to. `before` is the
 * registration as the caller read it; the claim is compare-and-set on it. The new assertion, of the
 * next generation, carries the user's email; for the read-back direction a refresh token comes too.
 */
export async function bindToUser(
  ctx: EngineContext,
  before: RegistrationRow,
  user: UserRow,
  prepare: (tx: StoreOps, now: number) => Promise<{ refreshToken: boolean; attemptId?: string; claim?: Parameters<typeof lifecycle.claim>[4] }>,
): Promise<Claimed> {
  if (before.claimed_at !== null) throw protocolError('already_claimed', 'This registration is already claimed.');
  // Signed before the transaction, so that the transaction holds no lock while the threadpool signs.
  const identity: IdentityView = await mintAssertion(ctx, { id: before.id, generation: before.generation + 1 }, userClaims(user));
  const now = ctx.clock();

  const registration = await ctx.store.transaction(async (tx) => {
    const step = await prepare(tx, now);
    const data = { ...step.claim?.data, ...(step.attemptId ? { attempt_id: step.attemptId } : {}) };
    const after = await lifecycle.claim(ctx, tx, before, user, { ...step.claim, data });
    if (after.delegation_key !== null) await linkDelegation(ctx, tx, after.provider_iss!, after.provider_sub!, user.id);
    if (step.refreshToken) identity.refreshToken = await mintRefreshToken(ctx, tx, before.id);
    return after;
  });
  ctx.metrics.claim('confirmed');
  await ctx.tokens.forgetCached();
  return { registration, identity };
}
