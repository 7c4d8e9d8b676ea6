import type { RegistrationType } from '@authmd/protocol';
import { table, type JsonValue, type TableSpec } from './store/contract.ts';

/** Every table the service keeps. Secrets are stored only as hashes (`*_hash`). Times are epoch ms. */

export type RegistrationRow = {
  id: string;
  type: RegistrationType;
  created_at: number;
  /** Bumped whenever earlier identity assertions must stop working (claim, refresh, revocation). */
  generation: number;
  claim_token_hash: string | null;
  claim_expires_at: number | null;
  claimed_at: number | null;
  revoked_at: number | null;
  user_id: string | null;
  client_ip: string | null;
  /** When the row may be deleted: unclaimed registrations go some time after their claim window. */
  expires_at: number | null;
};

export const registrations = table<RegistrationRow>({
  name: 'registrations',
  key: 'id',
  columns: {
    id: 'text',
    type: 'text',
    created_at: 'integer',
    generation: 'integer',
    claim_token_hash: 'text',
    claim_expires_at: 'integer',
    claimed_at: 'integer',
    revoked_at: 'integer',
    user_id: 'text',
    client_ip: 'text',
    expires_at: 'integer',
  },
  unique: ['claim_token_hash'],
  indexed: ['user_id'],
  expiresAt: 'expires_at',
});

export type AccessTokenRow = {
  token_hash: string;
  registration_id: string;
  user_id: string | null;
  /** Space-separated granted scopes. */
  scope: string;
  /** The RFC 8707 resource the token is bound to. */
  resource: string;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
};

export const accessTokens = table<AccessTokenRow>({
  name: 'access_tokens',
  key: 'token_hash',
  columns: {
    token_hash: 'text',
    registration_id: 'text',
    user_id: 'text',
    scope: 'text',
    resource: 'text',
    issued_at: 'integer',
    expires_at: 'integer',
    revoked_at: 'integer',
  },
  indexed: ['registration_id'],
  expiresAt: 'expires_at',
});

export type StoredKey = {
  kid: string;
  alg: string;
  privateJwk: { [member: string]: JsonValue };
  publicJwk: { [member: string]: JsonValue };
  createdAt: number;
  /** When the key stopped signing; it stays published until its last assertion has expired. */
  retiredAt: number | null;
};

/** The whole keyring is one row, so a rotation is a single compare-and-set on `version`. */
export type KeyringRow = {
  id: string;
  version: number;
  keys: StoredKey[];
};

export const keyrings = table<KeyringRow>({
  name: 'keyrings',
  key: 'id',
  columns: { id: 'text', version: 'integer', keys: 'json' },
});

export type AuditEventRow = {
  id: string;
  type: string;
  at: number;
  registration_id: string | null;
  data: { [field: string]: JsonValue } | null;
  expires_at: number;
};

export const auditEvents = table<AuditEventRow>({
  name: 'audit_events',
  key: 'id',
  columns: { id: 'text', type: 'text', at: 'integer', registration_id: 'text', data: 'json', expires_at: 'integer' },
  indexed: ['registration_id'],
  expiresAt: 'expires_at',
});

export const serviceTables: readonly TableSpec<any>[] = [registrations, accessTokens, keyrings, auditEvents];
