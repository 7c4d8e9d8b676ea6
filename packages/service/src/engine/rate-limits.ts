import { protocolError, type ProtocolError } from '@authmd/protocol';
import type { RateLimitedMethod } from '../config.ts';
import type { StoreOps } from '../store/contract.ts';
import { clientSource } from './client-source.ts';
import type { EngineContext } from './context.ts';

const HOUR = 3_600_000;

/** One tier of a tiered limit: its counter, its limit in its window, and what to answer once it is spent. */
export interface LimitTier {
  key: string;
  limit: number;
  windowMs: number;
  refuse(retryAfterSeconds: number): ProtocolError;
}

/**
 * Charges the tiers in order, in one store call, and throws the refusal of the first one spent;
 * the tiers after it are not charged.
 */
export async function chargeTiers(ctx: EngineContext, ops: Pick<StoreOps, 'incrementTiers'>, tiers: readonly LimitTier[]): Promise<void> {
  const now = ctx.clock();
  const states = await ops.incrementTiers(tiers, now);
  states.forEach((state, i) => {
    if (state.count > tiers[i]!.limit) throw tiers[i]!.refuse(Math.max(1, Math.ceil((state.resetAt - now) / 1000)));
  });
}

/** The 429 of a spent limit: `Retry-After`, and `retry_after` in the body. */
export function rateLimited(what: string, retryAfter: number): ProtocolError {
  return protocolError('rate_limit_exceeded', what, { headers: { 'Retry-After': String(retryAfter) }, extra: { retry_after: retryAfter } });
}

/**
 * Registration rate limits (profile.md §3), two tiers checked in order: the client's IP (an IPv6
 * client by its /64, see `clientSource`), then the whole service. A request refused at the first
 * tier does not count against the second. Counters live in the store, so every replica shares them,
 * and survive the rollback of the registration when the limit refuses it.
 */
export async function checkRegistrationRate(ctx: EngineContext, ops: Pick<StoreOps, 'incrementTiers'>, method: RateLimitedMethod, clientIp: string | undefined): Promise<void> {
  const limits = ctx.config.rateLimits[method];
  const refuse = (retryAfter: number) => rateLimited(`Too many ${method} registrations; retry in ${retryAfter} s.`, retryAfter);
  await chargeTiers(ctx, ops, [
    ...(clientIp ? [{ key: `rate:${method}:ip:${clientSource(clientIp)}`, limit: limits.perIp, windowMs: HOUR, refuse }] : []),
    { key: `rate:${method}:service`, limit: limits.perService, windowMs: HOUR, refuse },
  ]);
}
