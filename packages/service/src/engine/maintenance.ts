import { scheduled } from '../schema.ts';
import type { EngineContext } from './context.ts';
import { expire } from './registration-lifecycle.ts';

/**
 * Periodic upkeep: records `registration.expired` for registrations nobody claimed in time, deletes
 * expired rows, and looks after the signing keys. Due events are taken from the store atomically, so
 * with several replicas each is handled once.
 */
export async function runMaintenance(ctx: EngineContext): Promise<void> {
  await recordExpiredRegistrations(ctx);
  await ctx.store.purgeExpired(ctx.clock());
  await ctx.keys.maintain();
}

async function recordExpiredRegistrations(ctx: EngineContext): Promise<void> {
  for (;;) {
    const now = ctx.clock();
    // A registration is expired from the very millisecond its window closes (claim_expires_at <= now).
    const due = await ctx.store.takeDue(scheduled, 'due_at', now + 1, 100);
    for (const event of due) await ctx.store.transaction((tx) => expire(ctx, tx, event.subject));
    if (due.length < 100) return;
  }
}
