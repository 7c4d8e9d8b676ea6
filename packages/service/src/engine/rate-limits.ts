import { protocolError } from '@authmd/protocol';
import type { RateLimitedMethod } from '../config.ts';
import type { StoreOps } from '../store/contract.ts';
import { clientSource } from './client-source.ts';
import type { EngineContext } from './context.ts';

const HOUR = 3_600_000;

/**
 * Registration rate limits (profile.md §3), two tiers checked in order: the client's IP (an IPv6
 * client by its /64, see `clientSource`), then the whole service. A request refused at the first
 * tier does not count against the second. Counters live in the store, so every replica shares them;
 * they run inside the registration's own transaction (one commit for both), and survive its
 * rollback when the limit refuses it.
 */
export async function checkRegistrationRate(ctx: EngineContext, tx: StoreOps, method: RateLimitedMethod, clientIp: string | undefined): Promise<void> {
  const limits = ctx.config.rateLimits[method];
  const now = ctx.clock();
  const tiers: [string, number][] = [
    ...(clientIp ? ([[`rate:${method}:ip:${clientSource(clientIp)}`, limits.perIp]] as [string, number][]) : []),
    [`rate:${method}:service`, limits.perService],
  ];
  for (const [key, limit] of tiers) {
    const counter = await tx.incrementWithin(key, HOUR, now);
    if (counter.count > limit) {
      const retryAfter = Math.max(1, Math.ceil((counter.resetAt - now) / 1000));
      throw protocolError('rate_limit_exceeded', `Too many ${method} registrations; retry in ${retryAfter} s.`, {
        headers: { 'Retry-After': String(retryAfter) },
        extra: { retry_after: retryAfter },
      });
    }
  }
}
