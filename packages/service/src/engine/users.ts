import { DuplicateKeyError } from '@authmd/core/store';
import { prefixes } from '@authmd/protocol';
import type { HostUser } from '../config.ts';
import { users, type UserRow } from '../schema.ts';
import { timeOrderedValue } from '../secrets.ts';
import type { EngineContext } from './context.ts';

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/**
 * A new account's id, ordered by its creation time like a registration's (`timeOrderedValue`): the
 * users table and the `user_id` indexes of delegations and registrations then grow at their right
 * edge instead of dirtying a random page each (an ID-JAG registration of a new user writes all three).
 */
export function newUserId(ctx: Pick<EngineContext, 'random'>, now: number): string {
  return timeOrderedValue(ctx.random, prefixes.user, now);
}

export function getUser(ctx: EngineContext, id: string): Promise<UserRow | undefined> {
  return ctx.store.get(users, id);
}

/** The account of an email address someone just proved they read: found, or made (verified). */
export async function userForVerifiedEmail(ctx: EngineContext, email: string): Promise<UserRow> {
  const address = normalizeEmail(email);
  const existing = await ctx.store.findOne(users, 'email', address);
  if (existing) return existing;
  const now = ctx.clock();
  const user: UserRow = { id: newUserId(ctx, now), email: address, email_verified: true, phone: null, created_at: now };
  try {
    await ctx.store.insert(users, user);
    return user;
  } catch (error) {
    // Two sign-ins of a new address at once: the other one made the account.
    if (error instanceof DuplicateKeyError) return (await ctx.store.findOne(users, 'email', address))!;
    throw error;
  }
}

/**
 * A user the host application signed in, recorded under the host's own id. The host is the
 * authority on its users' addresses: if another account (say, one made by the built-in sign-in
 * before the host took over) holds the address, that account keeps its id and its registrations but
 * gives the address up.
 */
export async function userFromHost(ctx: EngineContext, host: HostUser): Promise<UserRow> {
  const email = normalizeEmail(host.email);
  const existing = await ctx.store.get(users, host.id);
  if (existing?.email === email) return existing;
  await ctx.store.transaction(async (tx) => {
    const holder = await tx.findOne(users, 'email', email);
    if (holder && holder.id !== host.id) {
      await tx.update(users, holder.id, { email: `${holder.id}@superseded.invalid` });
      ctx.logger.warn('a host user took over an address held by another account', { user_id: host.id, previous_user_id: holder.id });
    }
    if (existing) await tx.update(users, host.id, { email });
    else await tx.insert(users, { id: host.id, email, email_verified: true, phone: null, created_at: ctx.clock() });
  });
  return (await ctx.store.get(users, host.id))!;
}

/** What a service assertion says about its user: the verified email, else the verified phone. */
export function userClaims(user: UserRow | undefined): Record<string, unknown> {
  if (!user) return {};
  if (user.email) return { email: user.email, email_verified: true };
  return user.phone ? { phone_number: user.phone, phone_number_verified: true } : {};
}
