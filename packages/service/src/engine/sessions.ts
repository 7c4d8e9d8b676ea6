import { sessions } from '../schema.ts';
import { hashSecret, opaqueValue } from '../secrets.ts';
import type { EngineContext } from './context.ts';
import { getUser } from './users.ts';
import type { UserRow } from '../schema.ts';

/** Browser sessions for the service's pages. The cookie carries the secret; the store only its hash. */
export async function createSession(ctx: EngineContext, userId: string): Promise<string> {
  const value = opaqueValue(ctx.random, 'ses_');
  const now = ctx.clock();
  await ctx.store.insert(sessions, { id_hash: hashSecret(value), user_id: userId, created_at: now, expires_at: now + ctx.config.lifetimes.sessionMs });
  return value;
}

export async function sessionUser(ctx: EngineContext, value: string | undefined): Promise<UserRow | undefined> {
  if (!value) return undefined;
  const session = await ctx.store.get(sessions, hashSecret(value));
  if (!session || session.expires_at <= ctx.clock()) return undefined;
  return getUser(ctx, session.user_id);
}

export async function endSession(ctx: EngineContext, value: string | undefined): Promise<void> {
  if (value) await ctx.store.delete(sessions, hashSecret(value));
}
