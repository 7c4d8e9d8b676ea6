import { isIP } from 'node:net';
import { protocolError } from '@authmd/protocol';
import type { RateLimitedMethod } from '../config.ts';
import { clientSource } from '../engine/client-source.ts';
import type { EngineContext } from '../engine/context.ts';
import { perIpRateKey } from '../engine/rate-limits.ts';
import { mailKinds, perIpMailKey } from '../engine/sign-in.ts';
import { recordAdminAction } from './revocations.ts';

/**
 * The per-network limits one address is subject to (an IPv6 address by its /64, as the limits
 * count it): registrations of each method, and the emails it may ask for. The per-address mail
 * budgets are keyed by the recipient too, and are not listed here.
 */
export interface AddressLimit {
  /** The option that sets the limit, e.g. `rateLimits.anonymous.perIp`. */
  option: string;
  limit: number;
  count: number;
  /** Epoch ms. */
  resetsAt: number;
}

const methods: readonly RateLimitedMethod[] = ['anonymous', 'service_auth', 'identity_assertion'];

function countersOf(ctx: EngineContext, address: string): { key: string; option: string; limit: number }[] {
  if (isIP(address.trim()) === 0) throw protocolError('invalid_request', `address: ${address.slice(0, 64)} is not an IP address (IPv4 or IPv6).`);
  const source = clientSource(address);
  return [
    ...methods.map((method) => ({ key: perIpRateKey(method, source), option: `rateLimits.${method}.perIp`, limit: ctx.config.rateLimits[method].perIp })),
    ...mailKinds.map((kind) => ({ key: perIpMailKey(kind, source), option: 'limits.signInCodesPerIpPerHour', limit: ctx.config.limits.signInCodesPerIpPerHour })),
  ];
}

/** The address's network and its counters that are running now (none: it is not limited). */
export async function addressLimits(ctx: EngineContext, address: string): Promise<{ source: string; limits: AddressLimit[] }> {
  const now = ctx.clock();
  const counters = countersOf(ctx, address);
  const states = await Promise.all(counters.map((counter) => ctx.store.peekCounter(counter.key, now)));
  const limits = counters.flatMap((counter, i) => {
    const state = states[i];
    return state ? [{ option: counter.option, limit: counter.limit, count: state.count, resetsAt: state.resetAt }] : [];
  });
  return { source: clientSource(address), limits };
}

/** Clears the address's counters, audited; returns how many were running. */
export async function clearAddressLimits(ctx: EngineContext, operator: string, address: string): Promise<number> {
  const counters = countersOf(ctx, address);
  const cleared = (await Promise.all(counters.map((counter) => ctx.store.clearCounter(counter.key)))).filter(Boolean).length;
  await recordAdminAction(ctx, operator, { action: 'clear_rate_limits', address: clientSource(address), cleared });
  return cleared;
}
