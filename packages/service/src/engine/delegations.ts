import { DuplicateKeyError, type StoreOps } from '@authmd/core/store';
import { protocolError } from '@authmd/protocol';
import { delegations, users, type DelegationRow, type UserRow } from '../schema.ts';
import type { EngineContext } from './context.ts';
import type { VerifiedIdJag } from './id-jag.ts';
import { newUserId, normalizeEmail } from './users.ts';

/**
 * Who an ID-JAG is about (protocol-reference §2.12, profile.md §2):
 * - the provider account is already linked (a delegation `(iss, sub)`) → that user, a clean match;
 * - else a verified email or phone matches an account here → a *step-up*: the human confirms the
 *   first link on the claim page (never a silent link: asserted emails are not enough);
 * - else a new user is made just in time and linked → a clean match.
 * A delegation revoked by the provider is revived by an ID-JAG minted after the revocation.
 */
export type Match = { kind: 'clean'; user: UserRow } | { kind: 'step-up'; user: UserRow };

export function delegationKey(iss: string, sub: string): string {
  return `${iss}\0${sub}`;
}

export async function matchIdentity(ctx: EngineContext, idJag: VerifiedIdJag): Promise<Match> {
  const now = ctx.clock();
  const key = delegationKey(idJag.iss, idJag.sub);
  const delegation = await ctx.store.get(delegations, key);
  // iat has whole seconds: an ID-JAG of the revocation's own second may predate it, so it is refused too.
  if (delegation?.revoked_at != null && idJag.issuedAt <= delegation.revoked_at) {
    throw protocolError(
      'invalid_request',
      `${idJag.provider.displayName} withdrew this consent at or after the time this ID-JAG was minted; after consent is given again, mint a new one (at least a second after the revocation).`,
      { reason: 'revoked' },
    );
  }
  const linked = delegation?.user_id ? await ctx.store.get(users, delegation.user_id) : undefined;
  if (linked) {
    await ctx.store.update(delegations, key, { last_seen_at: now, revoked_at: null });
    return { kind: 'clean', user: linked };
  }
  const byEmail = idJag.email ? await ctx.store.findOne(users, 'email', normalizeEmail(idJag.email)) : undefined;
  const byContact = byEmail ?? (idJag.phone ? await ctx.store.findOne(users, 'phone', idJag.phone) : undefined);
  if (!byContact) return provisionJustInTime(ctx, idJag);
  // The account may be the one a concurrent first ID-JAG of this very provider account just made:
  // it made the user and the link in one transaction, so a link read after the account shows it.
  // (Two reads are no snapshot: on PostgreSQL the twin can commit between them.)
  if (!delegation?.user_id && (await ctx.store.get(delegations, key))?.user_id) return matchIdentity(ctx, idJag);
  return { kind: 'step-up', user: byContact };
}

/** A new user and its delegation, in one transaction; a concurrent twin falls back to what won. */
async function provisionJustInTime(ctx: EngineContext, idJag: VerifiedIdJag): Promise<Match> {
  const now = ctx.clock();
  const user: UserRow = {
    id: newUserId(ctx, now),
    email: idJag.email ? normalizeEmail(idJag.email) : null,
    email_verified: idJag.email !== undefined,
    phone: idJag.phone ?? null,
    created_at: now,
  };
  try {
    await ctx.store.transaction(async (tx) => {
      await tx.insert(users, user);
      // A strict insert: a concurrent first ID-JAG of the same account makes this throw, and we re-match.
      await tx.insert(delegations, { key: delegationKey(idJag.iss, idJag.sub), iss: idJag.iss, sub: idJag.sub, user_id: user.id, created_at: now, last_seen_at: now, revoked_at: null });
    });
    return { kind: 'clean', user };
  } catch (error) {
    if (!(error instanceof DuplicateKeyError)) throw error;
    return matchIdentity(ctx, idJag); // another request made the user or the link first
  }
}

/**
 * Records that the provider withdrew consent for `(iss, sub)`, whether or not a link exists yet, so
 * that ID-JAGs minted before now are refused either way.
 */
export async function recordRevocation(ctx: EngineContext, tx: StoreOps, iss: string, sub: string, now: number): Promise<void> {
  const key = delegationKey(iss, sub);
  const tombstone: DelegationRow = { key, iss, sub, user_id: null, created_at: now, last_seen_at: now, revoked_at: now };
  if (!(await tx.insertIfAbsent(delegations, tombstone))) await tx.update(delegations, key, { revoked_at: now });
}

/** Links a provider account to a user: made, or re-pointed and revived. */
export async function linkDelegation(ctx: EngineContext, tx: StoreOps, iss: string, sub: string, userId: string): Promise<void> {
  const now = ctx.clock();
  const row: DelegationRow = { key: delegationKey(iss, sub), iss, sub, user_id: userId, created_at: now, last_seen_at: now, revoked_at: null };
  if (!(await tx.insertIfAbsent(delegations, row))) {
    await tx.update(delegations, row.key, { user_id: userId, last_seen_at: now, revoked_at: null });
  }
}
