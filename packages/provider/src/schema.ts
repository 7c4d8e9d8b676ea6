import { keyrings } from '@authmd/core/keys';
import { table, type TableSpec } from '@authmd/core/store';

/** What the provider persists. Timestamps are epoch milliseconds. */

export type GrantMode = 'once' | 'always';

export type GrantRow = {
  id: string;
  user_id: string;
  /** The service's issuer identifier, as discovered from its metadata: the `aud` of every ID-JAG. */
  audience: string;
  /** `user_id` and `audience` joined: at most one grant per user and audience. */
  user_audience: string;
  mode: GrantMode;
  created_at: number;
  /** When the consent was last given (creation, or a later upsert). */
  updated_at: number;
  expires_at: number;
  consumed_at: number | null;
  /** Where the revocation SET goes: given at consent, else the service's advertised `events_endpoint`. */
  events_uri: string | null;
};

export const grants = table<GrantRow>({
  name: 'provider_grants',
  key: 'id',
  columns: {
    id: 'text',
    user_id: 'text',
    audience: 'text',
    user_audience: 'text',
    mode: 'text',
    created_at: 'integer',
    updated_at: 'integer',
    expires_at: 'integer',
    consumed_at: 'integer',
    events_uri: 'text',
  },
  unique: ['user_audience'],
  indexed: ['user_id'],
});

export type OutboxStatus = 'pending' | 'delivered' | 'failed';

export type OutboxRow = {
  /** The SET's `jti`: the same on every attempt, so that the receiver can deduplicate. */
  id: string;
  grant_id: string;
  user_id: string;
  /** The service issuer: the SET's `aud`. */
  audience: string;
  /** Where to POST; null until learned from the service's metadata. */
  endpoint: string | null;
  /** The event's schema URI. */
  event: string;
  /** When the user revoked (the SET's `toe`). */
  created_at: number;
  status: OutboxStatus;
  /** When the row is next due; a worker leases a row by moving this forward. Null once settled. */
  next_attempt_at: number | null;
  attempts: number;
  last_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  settled_at: number | null;
  /** Settled rows are kept for inspection until then. */
  expires_at: number | null;
};

export const outbox = table<OutboxRow>({
  name: 'provider_outbox',
  key: 'id',
  columns: {
    id: 'text',
    grant_id: 'text',
    user_id: 'text',
    audience: 'text',
    endpoint: 'text',
    event: 'text',
    created_at: 'integer',
    status: 'text',
    next_attempt_at: 'integer',
    attempts: 'integer',
    last_attempt_at: 'integer',
    last_status: 'integer',
    last_error: 'text',
    settled_at: 'integer',
    expires_at: 'integer',
  },
  indexed: ['next_attempt_at', 'status', 'user_id'],
  expiresAt: 'expires_at',
});

/** Every table the provider uses; `createProvider` migrates them. */
export const providerTables: readonly TableSpec<any>[] = [keyrings, grants, outbox];
