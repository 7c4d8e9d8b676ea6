import { randomBytes } from 'node:crypto';
import { prefixes } from '@authmd/protocol';
import { cryptoRandom, secretKey, timeOrderedSecret, timeOrderedValue } from '../../../packages/service/src/secrets.ts';
import type { Store, StoreOps } from '@authmd/service';
import {
  accessTokens,
  auditEvents,
  claimAttempts,
  delegations,
  refreshTokens,
  registrations,
  scheduled,
  users,
  type AccessTokenRow,
  type AuditEventRow,
  type ClaimAttemptRow,
  registrationRow,
  type RegistrationRow,
} from '../../../packages/service/src/schema.ts';

/**
 * Issue 13's flat-cost scenario: rows as the service writes them for registrations that lived a
 * while, made without the service (so a million take a minute, not an hour of signing), through the
 * store's own operations (so they are encoded, indexed and laid out exactly as the service's).
 *
 * Registration i is one of four kinds, in turn:
 * - 0: anonymous, unclaimed, inside its claim window (with its expiry reminder in `scheduled`);
 * - 1: anonymous, claimed by a user through the read-back ceremony (its completed claim attempt);
 * - 2: service_auth, claimed likewise, with the login hint it was registered with;
 * - 3: identity_assertion, provisioned by a provider (the user's delegation).
 * Each has one live access token, one refresh token and the audit events of its life (created,
 * token issued, and for a claimed one claim requested and completed). A user (one per four
 * registrations) owns kinds 1–3 of its group. Nothing expires within a day of `now`: the purge
 * scenario adds expired rows of its own (`fillExpired`).
 *
 * Registration i was created at `now - DAY + i × DAY / total`, in fill order, and every id and
 * secret key is made as the service makes it: time-ordered registration, user, attempt and audit
 * event ids (`timeOrderedValue`), secret keys led by their creation time (`secretKey` of a
 * `timeOrderedSecret`), and a provider's registration keyed by a digest. So the rows of one period
 * sit together in every index, as they do in a service's database.
 */

const DAY = 86_400_000;
export const PROVIDER_ISS = 'https://provider.bench.example';

/** Random base64url strings, cut from one large buffer refilled as needed (randomBytes per value is slow). */
function randomText() {
  let pool = Buffer.alloc(0);
  let at = 0;
  return (prefix: string, bytes: number) => {
    if (at + bytes > pool.length) {
      pool = randomBytes(1 << 20);
      at = 0;
    }
    const value = prefix + pool.subarray(at, at + bytes).toString('base64url');
    at += bytes;
    return value;
  };
}

const random = randomText();

/** A secret's at-rest key as `secretKey` makes it for a `timeOrderedSecret` minted `at`: the time part, then a SHA-256 (here random: same length, same order). */
function timedKey(at: number): string {
  return Math.floor(at).toString(32).padStart(10, '0') + random('', 32);
}

/** What the access tokens of the demo carry (read from one the demo issued): the fill's tokens carry the same. */
export interface TokenShape {
  resource: string;
  preClaimScope: string;
  postClaimScope: string;
}

/**
 * The secrets of an unclaimed (kind 0) registration of the fill, kept for the measurement: its live
 * access token and its claim token, in their wire form (the store holds only their hashes).
 */
export interface KeptSecrets {
  index: number;
  accessToken: string;
  claimToken: string;
  /** Its created_at: the admin search's deep page starts there. */
  createdAt: number;
}

export interface FillPlan {
  now: number;
  /** Registrations in the whole fill: their creation times spread over the day before `now`. */
  total: number;
  token: TokenShape;
  /** Which registrations' secrets to keep (only kind 0 ones, i % 4 === 0, are kept). */
  keep(index: number): boolean;
  kept: KeptSecrets[];
}

/** Writes the rows of registrations `from` (inclusive) to `to` (exclusive) in `tx`; returns how many rows. */
export async function fillRegistrations(tx: StoreOps, from: number, to: number, plan: FillPlan): Promise<number> {
  const { now, token } = plan;
  let rows = 0;
  const add = async (write: Promise<void>) => {
    await write;
    rows += 1;
  };
  let userId = '';
  for (let i = from; i < to; i++) {
    const kind = i % 4;
    const created = now - DAY + Math.floor((i * DAY) / plan.total);
    if (kind === 0 || i === from) userId = timeOrderedValue(cryptoRandom, prefixes.user, created);
    if (kind === 0) {
      await add(tx.append(users, { id: userId, email: `person-${i}@bench.example`, email_verified: true, phone: null, created_at: created }));
    }
    // A provider's registration is keyed by a digest of (iss, sub), the others by their creation time.
    const id = kind === 3 ? `${prefixes.registration}${random('', 16)}` : timeOrderedValue(cryptoRandom, prefixes.registration, created);
    const claimed = kind === 1 || kind === 2;
    const secrets = kind === 0 && plan.keep(i) ? { index: i, accessToken: timeOrderedSecret(cryptoRandom, 'at_', now), claimToken: timeOrderedSecret(cryptoRandom, 'clm_', created), createdAt: created } : undefined;
    if (secrets) plan.kept.push(secrets);
    const registration = registrationRow({
      id,
      type: kind === 2 ? 'service_auth' : kind === 3 ? 'identity_assertion' : 'anonymous',
      created_at: created,
      generation: claimed ? 1 : 0,
      claim_token_hash: kind === 3 ? null : secrets ? secretKey(secrets.claimToken) : timedKey(created),
      claim_expires_at: kind === 3 ? null : created + DAY * 2,
      claimed_at: claimed ? created + 60_000 : null,
      user_id: kind === 0 ? null : userId,
      login_hint: kind === 2 ? `person-${i - 2}@bench.example` : null,
      provider_iss: kind === 3 ? PROVIDER_ISS : null,
      provider_sub: kind === 3 ? `sub-${i}` : null,
      client_id: kind === 3 ? PROVIDER_ISS : null,
      delegation_key: kind === 3 ? `${PROVIDER_ISS}\0sub-${i}` : null,
      client_ip: '127.0.0.1',
      expires_at: kind === 0 ? created + DAY * 9 : null,
    });
    if (claimed) registration.current_attempt_id = timeOrderedValue(cryptoRandom, prefixes.attempt, created + 30_000);
    await add(tx.append(registrations, registration));
    if (kind === 0) await add(tx.append(scheduled, { id: `expire:${id}`, kind: 'registration.expired', subject: id, due_at: registration.claim_expires_at! }));
    if (kind === 3) {
      await add(tx.append(delegations, { key: registration.delegation_key!, iss: PROVIDER_ISS, sub: `sub-${i}`, user_id: userId, created_at: created, last_seen_at: created, revoked_at: null }));
    }
    if (claimed) await add(tx.append(claimAttempts, completedAttempt(registration, userId)));
    const scope = kind === 0 ? token.preClaimScope : token.postClaimScope;
    const tokenHash = secrets ? secretKey(secrets.accessToken) : timedKey(now);
    await add(tx.append(accessTokens, { ...accessToken(id, registration.user_id, now, now + DAY, token.resource), token_hash: tokenHash, scope }));
    await add(
      tx.append(refreshTokens, { token_hash: timedKey(created), family_id: `fam_${random('', 16)}`, registration_id: id, created_at: created, expires_at: created + 30 * DAY, spent_at: null, revoked_at: null }),
    );
    await add(tx.append(auditEvents, auditEvent('registration.created', id, created, { type: registration.type })));
    await add(tx.append(auditEvents, auditEvent('token.issued', id, now, { scope, resource: token.resource })));
    if (claimed) {
      await add(tx.append(auditEvents, auditEvent('claim.requested', id, created + 30_000, { attempt_id: registration.current_attempt_id! })));
      await add(tx.append(auditEvents, auditEvent('claim.completed', id, created + 60_000, { attempt_id: registration.current_attempt_id! })));
    }
  }
  return rows;
}

/**
 * Rows already past their expiry, as a service accumulates them (spent access tokens, old audit
 * events): what `purgeExpired` has to delete. Their keys are made as the service makes them, time
 * first, over one day: access tokens issued two days before `now` (an hour's lifetime, over), audit
 * events kept a year that ended a day ago. Returns how many rows.
 */
export async function fillExpired(tx: StoreOps, count: number, now: number, resource: string): Promise<number> {
  for (let i = 0; i < count; i++) {
    const offset = Math.floor((i * DAY) / count);
    if (i % 2 === 0) {
      const issuedAt = now - 2 * DAY + offset;
      const registrationId = timeOrderedValue(cryptoRandom, prefixes.registration, issuedAt - 60_000);
      await tx.append(accessTokens, { ...accessToken(registrationId, null, issuedAt, issuedAt + 3_600_000, resource), token_hash: timedKey(issuedAt) });
    } else {
      const at = now - 367 * DAY + offset;
      await tx.append(auditEvents, auditEvent('token.issued', timeOrderedValue(cryptoRandom, prefixes.registration, at - 60_000), at, {}));
    }
  }
  return count;
}

function accessToken(registrationId: string, userId: string | null, issuedAt: number, expiresAt: number, resource: string): AccessTokenRow {
  return { token_hash: random('', 32), registration_id: registrationId, user_id: userId, scope: 'notes.read', resource, issued_at: issuedAt, expires_at: expiresAt, revoked_at: null, kind: null };
}

function auditEvent(type: string, registrationId: string, at: number, data: Record<string, string>): AuditEventRow {
  return { id: timeOrderedValue(cryptoRandom, 'evt_', at), type, at, registration_id: registrationId, data, expires_at: at + 365 * DAY };
}

function completedAttempt(registration: RegistrationRow, userId: string): ClaimAttemptRow {
  const started = registration.created_at + 30_000;
  return {
    id: registration.current_attempt_id!,
    registration_id: registration.id,
    attempt_token_hash: timedKey(started),
    login_hint: registration.login_hint,
    agent_code_hash: random('', 32),
    page_code_hash: random('', 32),
    created_at: started,
    expires_at: started + 600_000,
    confirmed_at: started + 20_000,
    confirmed_user_id: userId,
    denied_at: null,
    completed_at: started + 30_000,
    handed_over_at: null,
    interval_seconds: 5,
    last_polled_at: null,
    purge_at: started + 30 * DAY,
    emailed_at: null,
  };
}

/**
 * Registrations `from`..`to` into `store`, `batch` registrations per transaction, `parallel`
 * transactions at once (PostgreSQL uses several connections; SQLite queues them). Reports progress
 * through `progress` (registrations written so far). Returns the number of rows written.
 */
export async function fillStore(
  store: Store,
  range: { from: number; to: number },
  plan: FillPlan,
  options: { batch: number; parallel: number; progress?(done: number): void },
): Promise<number> {
  let next = range.from;
  let rows = 0;
  const worker = async () => {
    while (next < range.to) {
      const from = next;
      const to = Math.min(range.to, from + options.batch);
      next = to;
      const written = await store.transaction((tx) => fillRegistrations(tx, from, to, plan));
      rows += written;
      options.progress?.(next - range.from);
    }
  };
  await Promise.all(Array.from({ length: options.parallel }, worker));
  return rows;
}
