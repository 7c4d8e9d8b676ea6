import type { EngineContext } from '../engine/context.ts';
import { users, type RegistrationRow } from '../schema.ts';

/** The email of each account these registrations are bound to, one read per account. */
export async function accountEmails(ctx: EngineContext, rows: readonly RegistrationRow[]): Promise<Map<string, string | null>> {
  const ids = [...new Set(rows.flatMap((row) => (row.user_id ? [row.user_id] : [])))];
  const accounts = await Promise.all(ids.map((id) => ctx.store.get(users, id)));
  return new Map(accounts.flatMap((user) => (user ? [[user.id, user.email] as const] : [])));
}
