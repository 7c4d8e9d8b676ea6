import type { JsonValue } from '@authmd/core/store';
import type { EngineContext } from '../engine/context.ts';
import * as lifecycle from '../engine/registration-lifecycle.ts';
import { revokeRegistration } from '../engine/registrations.ts';
import { registrations, type RegistrationRow } from '../schema.ts';
import { MAX_PAGE, searchRegistrations, type RegistrationFilter } from './registration-search.ts';

/**
 * The operator's revocations: final (engine/registration-lifecycle.ts, `revoke`). Nothing brings a
 * registration an operator revoked back, not even a fresh ID-JAG of the same provider account.
 */

export type BulkSelector = { by: 'email' | 'provider' | 'client_id'; value: string };

export interface BulkOutcome {
  /** Registrations that were live (or unclaimed) and are revoked now. */
  revoked: number;
  /** Registrations a provider had revoked, now revoked for good. */
  finalized: number;
}

/** Revokes one registration; false when there is none or an operator revoked it already. */
export function revokeOne(ctx: EngineContext, operator: string, id: string): Promise<boolean> {
  return revokeRegistration(ctx, id, operator);
}

/**
 * How many registrations a bulk revocation would end: those not revoked yet. By provider or client
 * id an indexed count; by email the few registrations of one person are read.
 */
export async function bulkPreview(ctx: EngineContext, selector: BulkSelector): Promise<number> {
  if (selector.by === 'provider') return ctx.store.count(registrations, { provider_iss: selector.value, revoked_at: null });
  if (selector.by === 'client_id') return ctx.store.count(registrations, { client_id: selector.value, revoked_at: null });
  let count = 0;
  await eachMatch(ctx, selector, async (rows) => {
    count += rows.filter((row) => row.revoked_at === null).length;
  });
  return count;
}

/**
 * Revokes every registration the selector matches, a page at a time (one transaction each), and
 * records one `admin.action` with the totals. The validation caches of every replica are cleared once, at the end.
 */
export async function bulkRevoke(ctx: EngineContext, operator: string, selector: BulkSelector): Promise<BulkOutcome> {
  const outcome: BulkOutcome = { revoked: 0, finalized: 0 };
  await eachMatch(ctx, selector, (rows) =>
    ctx.store.transaction(async (tx) => {
      for (const { id } of rows) {
        const from = await lifecycle.revoke(ctx, tx, id, operator);
        if (from === 'revoked_by_provider') outcome.finalized += 1;
        else if (from !== undefined) outcome.revoked += 1;
      }
    }),
  );
  if (outcome.revoked + outcome.finalized > 0) await ctx.tokens.forgetCached();
  await recordAdminAction(ctx, operator, { action: 'bulk_revoke', by: selector.by, value: selector.value, ...outcome });
  return outcome;
}

/** An admin action that is not one registration's revocation, into the audit trail with its operator. */
export function recordAdminAction(ctx: EngineContext, operator: string, data: Record<string, JsonValue>): Promise<void> {
  return ctx.store.transaction((tx) => ctx.audit.record({ type: 'admin.action', at: ctx.clock(), data: { operator, ...data } }, tx));
}

async function eachMatch(ctx: EngineContext, selector: BulkSelector, visit: (rows: RegistrationRow[]) => Promise<void>): Promise<void> {
  const filter: RegistrationFilter =
    selector.by === 'email' ? { email: selector.value } : selector.by === 'provider' ? { provider: selector.value } : { clientId: selector.value };
  let cursor: string | undefined;
  do {
    const page = await searchRegistrations(ctx, filter, MAX_PAGE, cursor);
    if (page.rows.length) await visit(page.rows);
    cursor = page.next;
  } while (cursor !== undefined);
}
