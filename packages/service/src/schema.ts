import { keyrings } from '@authmd/core/keys';
import { table, type JsonValue, type TableSpec } from '@authmd/core/store';
import type { RegistrationType } from '@authmd/protocol';

export { keyrings };

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
  /** Who revoked it: an operator's revocation is final, a provider's can be revived by a fresh ID-JAG. */
  revoked_by: 'operator' | 'provider' | null;
  user_id: string | null;
  /** The email a service_auth registration (or its latest claim attempt) named. */
  login_hint: string | null;
  /** For registrations tied to an agent provider's user: the provider and its subject, and their key. */
  provider_iss: string | null;
  provider_sub: string | null;
  /** The ID-JAG's `client_id` (the agent platform at the provider) that made or last claimed it. */
  client_id: string | null;
  delegation_key: string | null;
  /** The account the provider identity matched: only that account's human can link them by a ceremony. */
  link_user_id: string | null;
  /** The live claim attempt; a new attempt replaces the previous one. */
  current_attempt_id: string | null;
  client_ip: string | null;
  /** When the row may be deleted: unclaimed registrations go some time after their claim window. */
  expires_at: number | null;
  /** v0.1: the credential the agent asked for, handed out when the registration is claimed. */
  credential_type: 'api_key' | 'access_token' | null;
};

/**
 * A registration row: nothing claimed, revoked, linked or pending unless `fields` says so. Every
 * place that makes one starts here, so a new column needs its default in one place only.
 */
export function registrationRow(fields: Pick<RegistrationRow, 'id' | 'type' | 'created_at'> & Partial<RegistrationRow>): RegistrationRow {
  return {
    generation: 0,
    claim_token_hash: null,
    claim_expires_at: null,
    claimed_at: null,
    revoked_at: null,
    revoked_by: null,
    user_id: null,
    login_hint: null,
    provider_iss: null,
    provider_sub: null,
    client_id: null,
    delegation_key: null,
    link_user_id: null,
    current_attempt_id: null,
    client_ip: null,
    expires_at: null,
    credential_type: null,
    ...fields,
  };
}

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
    revoked_by: 'text',
    user_id: 'text',
    login_hint: 'text',
    provider_iss: 'text',
    provider_sub: 'text',
    client_id: 'text',
    delegation_key: 'text',
    link_user_id: 'text',
    current_attempt_id: 'text',
    client_ip: 'text',
    expires_at: 'integer',
    credential_type: 'text',
  },
  unique: ['claim_token_hash'],
  indexed: ['user_id', 'delegation_key'],
  // The operator's search (admin/registration-search.ts): newest first, alone or by one of these.
  ordered: [
    { by: 'created_at' },
    { by: 'created_at', eq: 'user_id' },
    { by: 'created_at', eq: 'login_hint' },
    { by: 'created_at', eq: 'provider_iss' },
    { by: 'created_at', eq: 'client_id' },
  ],
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
  /** Null for an API key (v0.1), which lives until it is revoked. */
  expires_at: number | null;
  revoked_at: number | null;
  /** `api_key` for a v0.1 API key; null for an OAuth access token. An API key's scopes follow its registration's claim. */
  kind: 'api_key' | null;
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
    kind: 'text',
  },
  indexed: ['registration_id'],
  expiresAt: 'expires_at',
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

/**
 * One claim attempt: the page a human opens (`attempt_token_hash`, the secret in
 * verification_uri) and two one-time codes, one per ceremony direction. The agent code (v0.7) is
 * given to the agent and typed by the user; the page code (current) is revealed to the user after
 * Authorize and read back by the agent. Codes are stored as HMACs; neither is derivable from the other.
 */
export type ClaimAttemptRow = {
  id: string;
  registration_id: string;
  attempt_token_hash: string;
  login_hint: string | null;
  agent_code_hash: string | null;
  page_code_hash: string | null;
  created_at: number;
  expires_at: number;
  /** Authorize pressed: by whom and when (read-back direction). */
  confirmed_at: number | null;
  confirmed_user_id: string | null;
  denied_at: number | null;
  completed_at: number | null;
  /** The claim grant (v0.7) handed the tokens over: once only. */
  handed_over_at: number | null;
  /** Claim-grant polling: the interval the agent must keep (grows by 5 s per slow_down) and its last poll. */
  interval_seconds: number;
  last_polled_at: number | null;
  /** Row deletion time: a while after the attempt expired. */
  purge_at: number;
  /**
   * v0.1: when the emailed code was sent. Such an attempt's `page_code_hash` holds that code (or the
   * one its link page revealed since), in the `email-code` domain: the mailbox's holder is the person.
   */
  emailed_at: number | null;
};

export const claimAttempts = table<ClaimAttemptRow>({
  name: 'claim_attempts',
  key: 'id',
  columns: {
    id: 'text',
    registration_id: 'text',
    attempt_token_hash: 'text',
    login_hint: 'text',
    agent_code_hash: 'text',
    page_code_hash: 'text',
    created_at: 'integer',
    expires_at: 'integer',
    confirmed_at: 'integer',
    confirmed_user_id: 'text',
    denied_at: 'integer',
    completed_at: 'integer',
    handed_over_at: 'integer',
    interval_seconds: 'integer',
    last_polled_at: 'integer',
    purge_at: 'integer',
    emailed_at: 'integer',
  },
  unique: ['attempt_token_hash'],
  indexed: ['registration_id'],
  expiresAt: 'purge_at',
});

export type UserRow = {
  id: string;
  /** Lowercased; null for a user known only by a verified phone number. */
  email: string | null;
  email_verified: boolean;
  /** A phone number a trusted provider verified (E.164 as the provider sent it). */
  phone: string | null;
  created_at: number;
};

export const users = table<UserRow>({
  name: 'users',
  key: 'id',
  columns: { id: 'text', email: 'text', email_verified: 'boolean', phone: 'text', created_at: 'integer' },
  unique: ['email', 'phone'],
});

/**
 * A user's link to an agent provider's account: provider `iss` and `sub` → our user. Made by a
 * clean first ID-JAG (a new user) or by a claim ceremony (an existing one). A provider's revocation
 * event marks it revoked; a fresh ID-JAG minted after that revives it.
 */
export type DelegationRow = {
  key: string;
  iss: string;
  sub: string;
  /** Null for a revocation recorded before any link existed (it still refuses older ID-JAGs). */
  user_id: string | null;
  created_at: number;
  last_seen_at: number;
  revoked_at: number | null;
};

export const delegations = table<DelegationRow>({
  name: 'delegations',
  key: 'key',
  columns: { key: 'text', iss: 'text', sub: 'text', user_id: 'text', created_at: 'integer', last_seen_at: 'integer', revoked_at: 'integer' },
  indexed: ['user_id'],
});

/** Per trusted provider: the security events it delivered that were accepted, and the last one refused (the operator's trust view). */
export type ProviderEventStatsRow = {
  issuer: string;
  accepted: number;
  last_accepted_at: number | null;
  refused: number;
  last_refused_at: number | null;
  /** The error code of the last refusal. */
  last_refusal: string | null;
};

export const providerEventStats = table<ProviderEventStatsRow>({
  name: 'provider_event_stats',
  key: 'issuer',
  columns: { issuer: 'text', accepted: 'integer', last_accepted_at: 'integer', refused: 'integer', last_refused_at: 'integer', last_refusal: 'text' },
});

/** Single-use identifiers (`jti`) of ID-JAGs and SETs, per issuer, kept until the token is useless. */
export type ReplayRow = { key: string; expires_at: number };

export const replays = table<ReplayRow>({
  name: 'replays',
  key: 'key',
  columns: { key: 'text', expires_at: 'integer' },
  expiresAt: 'expires_at',
});

/** Refresh tokens rotate one for one inside a family; presenting a spent one burns the family. */
export type RefreshTokenRow = {
  token_hash: string;
  family_id: string;
  registration_id: string;
  created_at: number;
  expires_at: number;
  spent_at: number | null;
  revoked_at: number | null;
};

export const refreshTokens = table<RefreshTokenRow>({
  name: 'refresh_tokens',
  key: 'token_hash',
  columns: {
    token_hash: 'text',
    family_id: 'text',
    registration_id: 'text',
    created_at: 'integer',
    expires_at: 'integer',
    spent_at: 'integer',
    revoked_at: 'integer',
  },
  indexed: ['family_id', 'registration_id'],
  expiresAt: 'expires_at',
});

/** Browser sessions of the service's own pages; the cookie holds the secret, the row its hash. */
export type SessionRow = {
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
};

export const sessions = table<SessionRow>({
  name: 'sessions',
  key: 'id_hash',
  columns: { id_hash: 'text', user_id: 'text', created_at: 'integer', expires_at: 'integer' },
  indexed: ['user_id'],
  expiresAt: 'expires_at',
});

/** A sign-in by emailed one-time code, between "send me a code" and "here is the code". */
export type SignInRow = {
  id: string;
  email: string;
  code_hash: string;
  created_at: number;
  expires_at: number;
};

export const signIns = table<SignInRow>({
  name: 'sign_ins',
  key: 'id',
  columns: { id: 'text', email: 'text', code_hash: 'text', created_at: 'integer', expires_at: 'integer' },
  expiresAt: 'expires_at',
});

/** Service-wide secrets (the HMAC key for codes and CSRF tokens), made once and shared by replicas. */
export type ServiceSecretRow = { id: string; value: string };

export const serviceSecrets = table<ServiceSecretRow>({
  name: 'service_secrets',
  key: 'id',
  columns: { id: 'text', value: 'text' },
});

/** Things to do at a time: the maintenance job takes the due ones (exactly once across replicas). */
export type ScheduledRow = {
  id: string;
  kind: 'registration.expired';
  subject: string;
  due_at: number;
};

export const scheduled = table<ScheduledRow>({
  name: 'scheduled',
  key: 'id',
  columns: { id: 'text', kind: 'text', subject: 'text', due_at: 'integer' },
  indexed: ['due_at'],
});

export const serviceTables: readonly TableSpec<any>[] = [
  registrations,
  accessTokens,
  keyrings,
  auditEvents,
  claimAttempts,
  users,
  refreshTokens,
  sessions,
  signIns,
  serviceSecrets,
  scheduled,
  delegations,
  replays,
  providerEventStats,
];
