import { randomUUID } from 'node:crypto';
import type { Store, StoreTx } from '@authmd/core/store';
import { grants, type GrantMode, type GrantRow } from './schema.ts';

/** A user's consent for agents to obtain ID-JAGs for one service. */
export interface Grant {
  id: string;
  userId: string;
  /** The service's issuer identifier (what ID-JAGs for this grant carry as `aud`). */
  audience: string;
  mode: GrantMode;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  /** When a `once` grant was used; null otherwise. */
  consumedAt: number | null;
  eventsUri: string | null;
  /** `active` grants can mint; `consumed` and `expired` ones cannot, but can still be revoked. */
  status: 'active' | 'consumed' | 'expired';
}

export function grantFromRow(row: GrantRow, now: number): Grant {
  return {
    id: row.id,
    userId: row.user_id,
    audience: row.audience,
    mode: row.mode,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    consumedAt: row.consumed_at,
    eventsUri: row.events_uri,
    status: row.consumed_at !== null ? 'consumed' : row.expires_at <= now ? 'expired' : 'active',
  };
}

/**
 * The grant in the published sample provider's JSON shape: `{id, user_id, audience, mode, created_at,
 * expires_at, consumed_at?, events_uri?}` with ISO-8601 timestamps; `status` is ours, added.
 */
export function grantJson(grant: Grant): Record<string, unknown> {
  return {
    id: grant.id,
    user_id: grant.userId,
    audience: grant.audience,
    mode: grant.mode,
    created_at: new Date(grant.createdAt).toISOString(),
    expires_at: new Date(grant.expiresAt).toISOString(),
    ...(grant.consumedAt !== null ? { consumed_at: new Date(grant.consumedAt).toISOString() } : {}),
    ...(grant.eventsUri !== null ? { events_uri: grant.eventsUri } : {}),
    status: grant.status,
  };
}

const userAudience = (userId: string, audience: string): string => `${userId}\n${audience}`;

/** Creates the grant for (user, audience), or refreshes the existing one's mode, expiry and events URI. */
export async function upsertGrant(
  store: Store,
  input: { userId: string; audience: string; mode: GrantMode; eventsUri: string | null; now: number; ttlMs: number },
): Promise<GrantRow> {
  return store.transaction(async (tx) => {
    const key = userAudience(input.userId, input.audience);
    const existing = await tx.findOne(grants, 'user_audience', key);
    const patch = {
      mode: input.mode,
      updated_at: input.now,
      expires_at: input.now + input.ttlMs,
      consumed_at: null,
      events_uri: input.eventsUri ?? existing?.events_uri ?? null,
    };
    if (existing) {
      await tx.update(grants, existing.id, patch);
      return { ...existing, ...patch };
    }
    const row: GrantRow = {
      id: `grant_${randomUUID()}`,
      user_id: input.userId,
      audience: input.audience,
      user_audience: key,
      created_at: input.now,
      ...patch,
    };
    await tx.insert(grants, row);
    return row;
  });
}

export async function grantFor(store: Store | StoreTx, userId: string, audience: string): Promise<GrantRow | undefined> {
  return store.findOne(grants, 'user_audience', userAudience(userId, audience));
}

/**
 * Uses a grant for one mint. An `always` grant only has to be live; a `once` grant is consumed by a
 * compare-and-set, so that of two concurrent mints exactly one gets it. Returns false when the
 * grant cannot be used as read (consumed, expired, or changed since: the caller re-reads it).
 */
export async function useGrant(store: Store, row: GrantRow, now: number): Promise<boolean> {
  if (row.consumed_at !== null || row.expires_at <= now) return false;
  if (row.mode === 'always') return true;
  return store.update(grants, row.id, { consumed_at: now }, { consumed_at: null, expires_at: row.expires_at, mode: 'once' });
}
