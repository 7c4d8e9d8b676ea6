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
 * - else nobody here is this account (`new`): the caller makes a user just in time and links it
 *   (`provisionUser`, in the transaction that also makes its registration), a clean match then.
 * A delegation revoked by the provider is revived by an ID-JAG minted after the revocation; the
 * revocation's time stays, so that ID-JAGs minted before it stay refused.
 */
export type Match = { kind: 'clean'; user: UserRow } | { kind: 'step-up'; user: UserRow } | NoMatch;

/**
 * Nobody here is this provider account: a user is to be made for it just in time. `link` is the
 * account's delegation as read (absent, a revocation's tombstone, or a link to an account that is
 * gone), which `provisionUser` takes over only if it is still the same.
 */
export type NoMatch = { kind: 'new'; link: DelegationRow | undefined };

/** How finely a link's `last_seen_at` follows its ID-JAGs. */
export const LAST_SEEN_STEP_MS = 3_600_000;

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
    // To the hour: a write (and a commit to wait for) at every ID-JAG of a returning agent told no one more.
    // revoked_at stays: it is the time before which this account's ID-JAGs are refused, revived or not.
    if (now - delegation!.last_seen_at >= LAST_SEEN_STEP_MS) await ctx.store.update(delegations, key, { last_seen_at: now });
    return { kind: 'clean', user: linked };
  }
  const byEmail = idJag.email ? await ctx.store.findOne(users, 'email', normalizeEmail(idJag.email)) : undefined;
  const byContact = byEmail ?? (idJag.phone ? await ctx.store.findOne(users, 'phone', idJag.phone) : undefined);
  if (!byContact) return { kind: 'new', link: delegation };
  // The account may be the one a concurrent first ID-JAG of this very provider account just made:
  // it made the user and the link in one transaction, so a link read after the account shows it.
  // (Two reads are no snapshot: on PostgreSQL the twin can commit between them.)
  if (!delegation?.user_id && (await ctx.store.get(delegations, key))?.user_id) return matchIdentity(ctx, idJag);
  return { kind: 'step-up', user: byContact };
}

/** How often a match is tried again after a concurrent request changed the account first. */
const MATCH_ROUNDS = 3;

/**
 * `matchIdentity`, with a user made just in time (in a transaction of its own) for an account
 * nobody here is. A concurrent twin that made the user or the link first is matched instead.
 */
export async function matchOrProvision(ctx: EngineContext, idJag: VerifiedIdJag): Promise<Exclude<Match, NoMatch>> {
  return retryOnConcurrentLink(async () => {
    const match = await matchIdentity(ctx, idJag);
    return match.kind === 'new' ? { kind: 'clean', user: await provision(ctx, idJag, match) } : match;
  });
}

/** `provisionUser` in a transaction of its own. */
export function provision(ctx: EngineContext, idJag: VerifiedIdJag, match: NoMatch): Promise<UserRow> {
  return ctx.store.transaction((tx) => provisionUser(ctx, tx, idJag, match));
}

/**
 * Runs `attempt` again when it failed because a concurrent request made this account's user or link
 * first (DuplicateKeyError), which the next match sees. Each round follows a change another request
 * committed, so the rounds are bounded; past them the agent is asked to retry (503, Retry-After).
 */
export async function retryOnConcurrentLink<T>(attempt: () => Promise<T>): Promise<T> {
  for (let round = 1; ; round++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      if (round === MATCH_ROUNDS) {
        throw protocolError('temporarily_unavailable', 'This provider account changed while it was being linked; retry in a second with a new ID-JAG.', {
          reason: 'link_contended',
          headers: { 'Retry-After': '1' },
          extra: { retry_after: 1 },
        });
      }
    }
  }
}

/**
 * A new user for a provider account nobody here is, linked to it, in `tx`. The link is made, or
 * taken over from the delegation `matchIdentity` read (a revocation's tombstone), only if that is
 * unchanged: a concurrent twin's link makes this throw DuplicateKeyError, and the caller matches again.
 */
export async function provisionUser(ctx: EngineContext, tx: StoreOps, idJag: VerifiedIdJag, match: NoMatch): Promise<UserRow> {
  const now = ctx.clock();
  const user: UserRow = {
    id: newUserId(ctx, now),
    email: idJag.email ? normalizeEmail(idJag.email) : null,
    email_verified: idJag.email !== undefined,
    phone: idJag.phone ?? null,
    created_at: now,
  };
  await tx.insert(users, user);
  const key = delegationKey(idJag.iss, idJag.sub);
  const linked = match.link
    ? await tx.update(delegations, key, { user_id: user.id, last_seen_at: now }, { user_id: match.link.user_id })
    : await tx.insertIfAbsent(delegations, { key, iss: idJag.iss, sub: idJag.sub, user_id: user.id, created_at: now, last_seen_at: now, revoked_at: null });
  if (!linked) throw new DuplicateKeyError(delegations.name, 'key');
  return user;
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
    // revoked_at stays: ID-JAGs minted before a revocation remain refused after the link.
    await tx.update(delegations, row.key, { user_id: userId, last_seen_at: now });
  }
}
