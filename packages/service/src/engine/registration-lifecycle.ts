import type { StoreOps } from '@authmd/core/store';
import { protocolError, type ProtocolError } from '@authmd/protocol';
import { refreshTokens, registrations, scheduled, type RegistrationRow } from '../schema.ts';
import type { EngineContext } from './context.ts';

/**
 * The one owner of a registration's life. Every write to a `registrations` row happens here, as one
 * of the transitions below; each checks its guard against the state, writes by compare-and-set,
 * kills what the transition kills (assertions by moving the generation on, access and refresh
 * tokens), and records its audit event, all in the caller's transaction. `mayMint` is the one answer
 * to "may this registration get an assertion or a token now".
 *
 * Transitions that revoke access tokens leave clearing the validation cache to their caller, after
 * the transaction commits (`ctx.tokens.forgetCached()`): cleared earlier, a concurrent lookup could
 * cache the row as it was before the commit.
 */

export type RegistrationState =
  | 'unclaimed'
  | 'claim_pending'
  | 'link_pending'
  | 'claimed'
  | 'expired'
  | 'revoked_by_operator'
  | 'revoked_by_provider';

export type Transition = 'start_attempt' | 'claim' | 'refresh' | 'supersede' | 'revoke' | 'provider_revoke' | 'revive' | 'relink' | 'expire';

export type RevokedBy = 'operator' | 'provider';

/** The state a registration is in at `now`; expiry is a matter of time, so it needs no write. */
export function stateOf(registration: RegistrationRow, now: number): RegistrationState {
  if (registration.revoked_at !== null) {
    // Rows revoked before `revoked_by` existed count as the operator's: fail closed, nothing revives them.
    return registration.revoked_by === 'provider' ? 'revoked_by_provider' : 'revoked_by_operator';
  }
  if (registration.claimed_at !== null) return 'claimed';
  if (registration.claim_expires_at !== null && registration.claim_expires_at <= now) return 'expired';
  if (registration.link_user_id !== null) return 'link_pending';
  if (registration.current_attempt_id !== null) return 'claim_pending';
  return 'unclaimed';
}

const CLAIMABLE: readonly RegistrationState[] = ['unclaimed', 'claim_pending', 'link_pending'];
const LIVE: readonly RegistrationState[] = [...CLAIMABLE, 'claimed'];

/** A claim (or a new attempt) can still act on a registration in this state. */
export function isClaimable(state: RegistrationState): boolean {
  return CLAIMABLE.includes(state);
}

/** The states each transition may start from; anything else is refused (or, for idempotent ones, a no-op). */
export const allowedFrom: Readonly<Record<Transition, readonly RegistrationState[]>> = {
  start_attempt: CLAIMABLE,
  claim: CLAIMABLE,
  refresh: ['claimed'],
  supersede: LIVE,
  revoke: [...LIVE, 'expired', 'revoked_by_provider'],
  provider_revoke: [...LIVE, 'expired'],
  revive: ['revoked_by_provider'],
  relink: [...LIVE, 'expired', 'revoked_by_provider'],
  expire: ['expired'],
};

/**
 * May this registration get an identity assertion or an access token now? A claimed registration
 * may; an anonymous one may before its claim too (pre-claim scopes), until its claim window closes;
 * nothing else may.
 */
export function mayMint(registration: RegistrationRow, now: number): boolean {
  return mintRefusal(registration, now) === undefined;
}

/** Why a registration may not mint now, as a machine-readable reason and a sentence; undefined when it may. */
export function mintRefusal(registration: RegistrationRow, now: number): { reason: string; what: string } | undefined {
  const state = stateOf(registration, now);
  if (state === 'claimed') return undefined;
  if (state === 'revoked_by_operator') return { reason: 'registration_revoked', what: 'The registration was revoked by the service.' };
  if (state === 'revoked_by_provider') return { reason: 'registration_revoked', what: 'The user withdrew this consent at the provider.' };
  if (state === 'expired') return { reason: 'registration_expired', what: 'The registration has expired unclaimed.' };
  if (registration.type === 'anonymous') return undefined;
  return { reason: 'not_claimed', what: 'The registration is not claimed yet.' };
}

/** Throws `code` with the refusal's reason when the registration may not mint now. */
export function requireMayMint(registration: RegistrationRow, now: number, code: 'invalid_grant' | 'invalid_refresh_token'): void {
  const refusal = mintRefusal(registration, now);
  if (refusal) throw protocolError(code, refusal.what, { reason: refusal.reason });
}

/** Throws the claim endpoints' error when a claim (or a new attempt) cannot act on this registration. */
export function requireClaimable(registration: RegistrationRow, now: number): void {
  const state = stateOf(registration, now);
  if (!isClaimable(state)) throw claimRefusal(state);
}

/** An operator's revocation is final: nothing a provider or an agent sends brings the registration back. */
export function requireNotRevokedByOperator(registration: RegistrationRow): void {
  if (registration.revoked_at !== null && registration.revoked_by !== 'provider') throw claimRefusal('revoked_by_operator');
}

function claimRefusal(state: RegistrationState): ProtocolError {
  if (state === 'claimed') return protocolError('already_claimed', 'This registration is already claimed.');
  if (state === 'revoked_by_operator') return protocolError('claim_revoked', 'The service revoked this registration for good.', { reason: 'revoked_by_operator' });
  return protocolError('claim_expired', 'The claim window of this registration is over.');
}

/** A registration changed between the caller's read and this write: the caller's view is stale. */
function changedMeanwhile(): ProtocolError {
  return protocolError('already_claimed', 'This registration changed meanwhile (claimed, revoked or asked again); start over from its current state.', {
    reason: 'concurrent_change',
  });
}

// --- creation ------------------------------------------------------------------------------------

/**
 * Stores a new registration with its audit event and, for one with a claim window, the reminder
 * that records its expiry. With `once`, an existing row of that id wins and false is returned.
 */
export async function create(
  ctx: EngineContext,
  tx: StoreOps,
  row: RegistrationRow,
  data: Record<string, string>,
  options: { once?: boolean } = {},
): Promise<boolean> {
  if (options.once) {
    if (!(await tx.insertIfAbsent(registrations, row))) return false;
  } else {
    await tx.append(registrations, row); // a fresh random id
  }
  if (row.claim_expires_at !== null && row.claimed_at === null) {
    const reminder = { id: `expire:${row.id}`, kind: 'registration.expired', subject: row.id, due_at: row.claim_expires_at };
    // A registration id given again (`once`) may find its reminder from before; a fresh one cannot.
    if (options.once) await tx.insertIfAbsent(scheduled, reminder);
    else await tx.append(scheduled, reminder);
  }
  await ctx.audit.record({ type: 'registration.created', at: row.created_at, registrationId: row.id, data: { type: row.type, ...data } }, tx);
  return true;
}

// --- the ceremony --------------------------------------------------------------------------------

/**
 * A new claim attempt became the live one (its row is the caller's). With `link`, the attempt is a
 * first link of a provider account to the matched local account, which only that account can finish.
 */
export async function startAttempt(
  ctx: EngineContext,
  tx: StoreOps,
  registration: RegistrationRow,
  attempt: { id: string; loginHint: string | null },
  link?: Pick<RegistrationRow, 'provider_iss' | 'provider_sub' | 'client_id' | 'delegation_key' | 'link_user_id'>,
): Promise<void> {
  requireClaimable(registration, ctx.clock());
  const started = await tx.update(
    registrations,
    registration.id,
    { current_attempt_id: attempt.id, login_hint: attempt.loginHint, ...link },
    { claimed_at: null, revoked_at: null, generation: registration.generation },
  );
  if (!started) throw changedMeanwhile();
}

/**
 * A human took the registration over: bound to `user` at the next generation (every older
 * assertion stops working), its pre-claim access tokens revoked, its API keys (v0.1) given the
 * post-claim scopes. A provider account it came with is
 * kept only when `user` is the account it was matched to. `byCleanIdJag` is for a clean ID-JAG of
 * the provider account itself, which proves the link without a ceremony: it may also bind a pending
 * link whose claim window closed or that a provider revocation ended.
 * Returns the registration as written.
 */
export async function claim(
  ctx: EngineContext,
  tx: StoreOps,
  before: RegistrationRow,
  user: { id: string },
  options: { byCleanIdJag?: boolean; type?: RegistrationRow['type']; data?: Record<string, string> } = {},
): Promise<RegistrationRow> {
  const now = ctx.clock();
  const state = stateOf(before, now);
  const proven = options.byCleanIdJag === true && (state === 'expired' || (state === 'revoked_by_provider' && before.claimed_at === null));
  if (!proven) requireClaimable(before, now);
  const keepsProvider = before.provider_iss !== null && before.provider_sub !== null && before.link_user_id === user.id;
  const patch: Partial<RegistrationRow> = {
    ...(options.type ? { type: options.type } : {}),
    claimed_at: now,
    user_id: user.id,
    generation: before.generation + 1,
    revoked_at: null,
    revoked_by: null,
    expires_at: null,
    ...(keepsProvider
      ? { provider_iss: before.provider_iss, provider_sub: before.provider_sub, client_id: before.client_id, delegation_key: before.delegation_key, link_user_id: before.link_user_id }
      : { provider_iss: null, provider_sub: null, client_id: null, delegation_key: null, link_user_id: null }),
  };
  const bound = await tx.update(registrations, before.id, patch, { claimed_at: null, revoked_at: before.revoked_at, generation: before.generation });
  if (!bound) throw changedMeanwhile();
  const after = (await tx.get(registrations, before.id))!;
  // Pre-claim access tokens end; a v0.1 API key is the agent's one credential, so it is upgraded in place.
  const revoked = await ctx.tokens.revokeAccessTokensOf(tx, before.id);
  if (revoked) await ctx.audit.record({ type: 'token.revoked', at: now, registrationId: before.id, data: { reason: 'claimed', access_tokens: revoked } }, tx);
  const upgraded = await ctx.tokens.upgradeApiKeys(tx, before.id, { scopes: ctx.config.scopes.postClaim, userId: user.id });
  if (upgraded) await ctx.audit.record({ type: 'api_key.upgraded', at: now, registrationId: before.id, data: { api_keys: upgraded, scope: ctx.config.scopes.postClaim.join(' ') } }, tx);
  const data = { user_id: user.id, ...options.data, ...(keepsProvider ? { provider: before.provider_iss! } : {}) };
  await ctx.audit.record({ type: 'claim.confirmed', at: now, registrationId: before.id, data }, tx);
  return after;
}

/**
 * A provider account asks again for a first link (a new step-up): the registration goes back to
 * waiting for the matched account's human, with a new claim token; everything it could use before
 * stops (assertions, access and refresh tokens). An operator's revocation is final.
 */
export async function relink(
  ctx: EngineContext,
  tx: StoreOps,
  before: RegistrationRow,
  pending: Pick<RegistrationRow, 'claim_token_hash' | 'claim_expires_at' | 'link_user_id' | 'expires_at'> & Partial<Pick<RegistrationRow, 'credential_type'>>,
): Promise<RegistrationRow> {
  const state = stateOf(before, ctx.clock());
  if (!allowedFrom.relink.includes(state)) throw claimRefusal(state);
  const patch = { ...pending, claimed_at: null, revoked_at: null, revoked_by: null, user_id: null, current_attempt_id: null, generation: before.generation + 1 };
  if (!(await tx.update(registrations, before.id, patch, { generation: before.generation }))) throw changedMeanwhile();
  const after: RegistrationRow = { ...before, ...patch };
  await killCredentials(ctx, tx, before.id);
  if (after.claim_expires_at !== null) {
    await tx.insertIfAbsent(scheduled, { id: `expire:${after.id}:${after.generation}`, kind: 'registration.expired', subject: after.id, due_at: after.claim_expires_at });
  }
  return after;
}

// --- assertions and tokens -----------------------------------------------------------------------

/**
 * A refresh: the registration moves to the next generation (older assertions stop working; access
 * tokens live on). Refused unless claimed and live; returns false when the generation moved on
 * since `before` was read (a concurrent refresh or revocation).
 */
export async function refresh(ctx: EngineContext, tx: StoreOps, before: RegistrationRow): Promise<boolean> {
  requireMayMint(before, ctx.clock(), 'invalid_refresh_token');
  if (!allowedFrom.refresh.includes(stateOf(before, ctx.clock()))) {
    throw protocolError('invalid_refresh_token', 'The registration is not claimed.', { reason: 'not_claimed' });
  }
  return tx.update(registrations, before.id, { generation: before.generation + 1 }, { generation: before.generation, revoked_at: null });
}

/**
 * Every assertion of this generation stops working, and the registration's access tokens are
 * revoked (an assertion revoked by RFC 7009, a refresh family burned). Compare-and-set on
 * `generation`: of two concurrent callers one does the work. Returns false when there was nothing
 * to do (the generation had moved on, or the registration is gone or dead already).
 */
export async function supersede(ctx: EngineContext, tx: StoreOps, registrationId: string, generation?: number): Promise<boolean> {
  const registration = await tx.get(registrations, registrationId);
  if (!registration || !allowedFrom.supersede.includes(stateOf(registration, ctx.clock()))) return false;
  const from = generation ?? registration.generation;
  if (!(await tx.update(registrations, registrationId, { generation: from + 1 }, { generation: from }))) return false;
  await ctx.tokens.revokeForRegistration(tx, registrationId);
  return true;
}

// --- revocation and revival ----------------------------------------------------------------------

/**
 * The operator's revocation: final. Assertions, access and refresh tokens, and any claim in flight
 * stop working, and nothing revives the registration. Returns the state it was revoked from, or
 * undefined when it was revoked by the operator already (or does not exist). `operator` names who
 * did it (the admin API's or console's operator), for the audit event.
 */
export async function revoke(ctx: EngineContext, tx: StoreOps, registrationId: string, operator?: string): Promise<RegistrationState | undefined> {
  const registration = await tx.get(registrations, registrationId);
  const from = registration && stateOf(registration, ctx.clock());
  if (!registration || !from || !allowedFrom.revoke.includes(from)) return undefined;
  const now = ctx.clock();
  const patch = { revoked_at: now, revoked_by: 'operator' as const, current_attempt_id: null, expires_at: null, generation: registration.generation + 1 };
  if (!(await tx.update(registrations, registrationId, patch, { generation: registration.generation }))) return undefined;
  const tokens = await killCredentials(ctx, tx, registrationId);
  const data = { reason: 'operator', access_tokens: tokens, ...(operator === undefined ? {} : { operator }) };
  await ctx.audit.record({ type: 'registration.revoked', at: now, registrationId, data }, tx);
  return from;
}

/**
 * The provider withdrew the user's consent (a security event): everything derived from the
 * registration stops, including its claim token and attempt. A later clean ID-JAG of the same
 * provider account may revive it (`revive`); an operator's revocation stays as it is.
 */
export async function providerRevoke(ctx: EngineContext, tx: StoreOps, registration: RegistrationRow, provider: string): Promise<boolean> {
  if (!allowedFrom.provider_revoke.includes(stateOf(registration, ctx.clock()))) return false;
  const now = ctx.clock();
  const patch = { revoked_at: now, revoked_by: 'provider' as const, claim_token_hash: null, current_attempt_id: null, generation: registration.generation + 1 };
  if (!(await tx.update(registrations, registration.id, patch, { generation: registration.generation }))) return false;
  const tokens = await killCredentials(ctx, tx, registration.id);
  await ctx.audit.record({ type: 'registration.revoked', at: now, registrationId: registration.id, data: { provider, reason: 'provider_event', access_tokens: tokens } }, tx);
  return true;
}

/**
 * A claimed registration that a provider revocation ended comes back, at the next generation, for
 * an ID-JAG minted after the revocation. Only a provider's revocation can be undone: an operator's
 * is refused, and so is one that ended a link still pending (that needs a new ceremony). A live
 * registration is returned as it is.
 */
export async function revive(ctx: EngineContext, tx: StoreOps, registration: RegistrationRow): Promise<RegistrationRow> {
  const state = stateOf(registration, ctx.clock());
  if (LIVE.includes(state)) return registration;
  if (state !== 'revoked_by_provider' || registration.claimed_at === null) throw claimRefusal(state);
  const patch = { revoked_at: null, revoked_by: null, generation: registration.generation + 1 };
  if (!(await tx.update(registrations, registration.id, patch, { generation: registration.generation, revoked_by: 'provider' }))) throw changedMeanwhile();
  await ctx.audit.record({ type: 'registration.revived', at: ctx.clock(), registrationId: registration.id, data: { provider: registration.provider_iss } }, tx);
  return { ...registration, ...patch };
}

/** Records `registration.expired` for a registration whose claim window closed unclaimed; false otherwise. */
export async function expire(ctx: EngineContext, tx: StoreOps, registrationId: string): Promise<boolean> {
  const registration = await tx.get(registrations, registrationId);
  const now = ctx.clock();
  if (!registration || !allowedFrom.expire.includes(stateOf(registration, now))) return false;
  await ctx.audit.record({ type: 'registration.expired', at: now, registrationId, data: { type: registration.type } }, tx);
  return true;
}

/** Access and refresh tokens of the registration end; returns how many access tokens were live. */
async function killCredentials(ctx: EngineContext, tx: StoreOps, registrationId: string): Promise<number> {
  await tx.updateWhere(refreshTokens, 'registration_id', registrationId, { revoked_at: ctx.clock() }, { revoked_at: null });
  return ctx.tokens.revokeForRegistration(tx, registrationId);
}
