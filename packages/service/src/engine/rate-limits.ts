import type { StoreOps } from '@authmd/core/store';
import { protocolError, type ProtocolError } from '@authmd/protocol';
import type { RateLimitedMethod } from '../config.ts';
import { clientSource } from './client-source.ts';
import type { EngineContext } from './context.ts';

const HOUR = 3_600_000;

/** One tier of a tiered limit: its counter, its limit in its window, and what to answer once it is spent. */
export interface LimitTier {
  key: string;
  limit: number;
  windowMs: number;
  /** The option that sets the limit (`rateLimits.anonymous.perIp`): what the rate-limit metric is labelled with. */
  option: string;
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
    const tier = tiers[i]!;
    if (state.count <= tier.limit) return;
    // Counted now: the refusal rolls the caller's transaction back, but the charge itself stands.
    ctx.metrics.rateLimited(tier.option);
    throw tier.refuse(Math.max(1, Math.ceil((state.resetAt - now) / 1000)));
  });
}

/** The 429 of a spent limit: `Retry-After`, and `retry_after` in the body. */
export function rateLimited(what: string, retryAfter: number): ProtocolError {
  return protocolError('rate_limit_exceeded', what, { headers: { 'Retry-After': String(retryAfter) }, extra: { retry_after: retryAfter } });
}

/** How long until a limit lifts, for people: "45 seconds", "40 minutes" (rounded up). */
export function waitInWords(seconds: number): string {
  if (seconds < 120) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/**
 * The last sentence of every rate-limit refusal (docs/configuration.md, "Rate limits and attempt
 * limits"): the limit and the option that sets it, so that whoever runs the service (often the very
 * developer who hit it) knows what to change instead of waiting out the hour.
 */
export function limitSentence(limit: number, scope: string, option: string): string {
  return `At most ${limit} an hour ${scope}; the service's operator sets this limit with the ${option} option.`;
}

/** The counter of one network's registrations of one method (`source`: see `clientSource`). */
export function perIpRateKey(method: RateLimitedMethod, source: string): string {
  return `rate:${method}:ip:${source}`;
}

/**
 * Registration rate limits (profile.md §3), two tiers checked in order: the client's IP (an IPv6
 * client by its /64, see `clientSource`), then the whole service. A request refused at the first
 * tier does not count against the second. Counters live in the store, so every replica shares them,
 * and survive the rollback of the registration when the limit refuses it.
 */
export async function checkRegistrationRate(ctx: EngineContext, ops: Pick<StoreOps, 'incrementTiers'>, method: RateLimitedMethod, clientIp: string | undefined): Promise<void> {
  const limits = ctx.config.rateLimits[method];
  // Which tier refused, when it lifts (in seconds, as Retry-After, and in words) and which option sets it.
  const tier = (key: string, which: 'perIp' | 'perService', from: string, scope: string): LimitTier => {
    const option = `rateLimits.${method}.${which}`;
    const limit = limits[which];
    return {
      key,
      limit,
      windowMs: HOUR,
      option,
      refuse: (retryAfter) =>
        rateLimited(`Too many ${method} registrations ${from}; retry in ${retryAfter} s (${waitInWords(retryAfter)}). ${limitSentence(limit, scope, option)}`, retryAfter),
    };
  };
  await chargeTiers(ctx, ops, [
    ...(clientIp ? [tier(perIpRateKey(method, clientSource(clientIp)), 'perIp', 'from your network', 'from one network (IP address; IPv6: its /64)')] : []),
    tier(`rate:${method}:service`, 'perService', 'at this service, from all clients together', 'for the whole service'),
  ]);
}
