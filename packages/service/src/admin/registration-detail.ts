import type { JsonValue } from '@authmd/core/store';
import type { EngineContext } from '../engine/context.ts';
import { stateOf, type RegistrationState } from '../engine/registration-lifecycle.ts';
import { accessTokens, auditEvents, refreshTokens, registrations, users, type RegistrationRow } from '../schema.ts';

/** One registration as an operator sees it: who it is for, what happened to it, what it holds now. */
export interface RegistrationDetail {
  registration: RegistrationRow;
  state: RegistrationState;
  /** The account it is bound to, when claimed. */
  user: { id: string; email: string | null } | undefined;
  /** Its audit events, oldest first (kept for `auditRetentionDays`); those of one moment in the order the store gives them. */
  timeline: { id: string; type: string; at: number; data: JsonValue }[];
  /** Counts and expiries of its live credentials; never their values. */
  tokens: { access: TokenCount; refresh: TokenCount };
}

export interface TokenCount {
  live: number;
  /** Epoch ms; null when none expires (API keys) or none is live. */
  nextExpiry: number | null;
  lastExpiry: number | null;
}

/** A registration's credentials are read up to this many rows; its audit events as well. */
const READ_LIMIT = 1000;

export async function registrationDetail(ctx: EngineContext, id: string): Promise<RegistrationDetail | undefined> {
  const registration = await ctx.store.get(registrations, id);
  if (!registration) return undefined;
  const now = ctx.clock();
  const [user, events, access, refresh] = await Promise.all([
    registration.user_id ? ctx.store.get(users, registration.user_id) : undefined,
    ctx.store.findMany(auditEvents, 'registration_id', id, READ_LIMIT),
    ctx.store.findMany(accessTokens, 'registration_id', id, READ_LIMIT),
    ctx.store.findMany(refreshTokens, 'registration_id', id, READ_LIMIT),
  ]);
  return {
    registration,
    state: stateOf(registration, now),
    user: user && { id: user.id, email: user.email },
    timeline: events.sort((a, b) => a.at - b.at).map((event) => ({ id: event.id, type: event.type, at: event.at, data: event.data })),
    tokens: {
      access: countLive(access.filter((token) => token.revoked_at === null && (token.expires_at === null || token.expires_at > now)).map((token) => token.expires_at)),
      refresh: countLive(refresh.filter((token) => token.revoked_at === null && token.spent_at === null && token.expires_at > now).map((token) => token.expires_at)),
    },
  };
}

function countLive(expiries: (number | null)[]): TokenCount {
  const expiring = expiries.filter((at): at is number => at !== null);
  return {
    live: expiries.length,
    nextExpiry: expiring.length ? Math.min(...expiring) : null,
    lastExpiry: expiring.length ? Math.max(...expiring) : null,
  };
}
