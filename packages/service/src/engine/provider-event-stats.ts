import type { StoreOps } from '@authmd/core/store';
import { providerEventStats, type ProviderEventStatsRow } from '../schema.ts';
import type { EngineContext } from './context.ts';

/**
 * What each trusted provider's security events came to, for the operator's trust view: one row per
 * provider of the trust list, updated by compare-and-set. Only events the provider signed are
 * counted: a token with a forged signature, or from an untrusted issuer, writes nothing.
 */

const empty = (issuer: string): ProviderEventStatsRow => ({ issuer, accepted: 0, last_accepted_at: null, refused: 0, last_refused_at: null, last_refusal: null });

/** An accepted event, in the transaction that applies it. */
export function countAccepted(ops: StoreOps, issuer: string, now: number): Promise<void> {
  return bump(ops, issuer, (row) => ({ accepted: row.accepted + 1, last_accepted_at: now }));
}

/** A refused event the provider signed (wrong audience, too old…); a failure to count it is logged, never the caller's. */
export async function countRefused(ctx: EngineContext, issuer: string, code: string): Promise<void> {
  const now = ctx.clock();
  await bump(ctx.store, issuer, (row) => ({ refused: row.refused + 1, last_refused_at: now, last_refusal: code })).catch((error: unknown) =>
    ctx.logger.warn('could not count a refused security event', { issuer, error: String(error) }),
  );
}

async function bump(ops: StoreOps, issuer: string, change: (row: ProviderEventStatsRow) => Partial<ProviderEventStatsRow>): Promise<void> {
  await ops.insertIfAbsent(providerEventStats, empty(issuer));
  for (let tries = 0; tries < 5; tries++) {
    const row = (await ops.get(providerEventStats, issuer)) ?? empty(issuer);
    if (await ops.update(providerEventStats, issuer, change(row), { accepted: row.accepted, refused: row.refused })) return;
  }
}
