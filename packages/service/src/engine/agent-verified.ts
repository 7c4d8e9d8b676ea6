import {
  asciiDescription,
  claimStartedEnvelope,
  errorSpec,
  paths,
  prefixes,
  protocolError,
  ProtocolError,
  registrationEnvelope,
  type AccessTokenView,
  type AttemptView,
  type RegistrationView,
} from '@authmd/protocol';
import { registrationRow, registrations, type RegistrationRow, type UserRow } from '../schema.ts';
import { keyedDigest, secretKey, timeOrderedSecret } from '../secrets.ts';
import { DuplicateKeyError, type StoreOps } from '@authmd/core/store';
import { mintAssertion } from './assertions.ts';
import { createAttempt, newAttempt } from './attempts.ts';
import { bindToUser, type Claimed } from './claim-completion.ts';
import type { EngineContext } from './context.ts';
import { delegationKey, matchIdentity, matchOrProvision, provision, provisionUser, retryOnConcurrentLink, type Match, type NoMatch } from './delegations.ts';
import { issueAccessToken, type TokenRequest } from './exchange.ts';
import { verifyIdJag, type VerifiedIdJag } from './id-jag.ts';
import { checkRegistrationRate } from './rate-limits.ts';
import * as lifecycle from './registration-lifecycle.ts';
import type { RegistrationState } from './registration-lifecycle.ts';
import { KEEP_AFTER_CLAIM_WINDOW_MS } from './registrations.ts';
import { userClaims } from './users.ts';
import { chargeClaimEmail, sendClaimEmail } from './v01-mail.ts';

/**
 * The Agent Verified flow: a trusted provider's ID-JAG asserts the user. A known link (or a new
 * user) gets credentials at once; an ID-JAG that matches an existing account by email or phone
 * for the first time needs that account's human to confirm, through the claim ceremony.
 */

/**
 * How a first link is confirmed: on the service's page by the signed-in account (`current`, `v0.7`),
 * or (v0.1) by the code emailed to the account's address, read back by the agent. `credential` is
 * what a v0.1 agent gets once it is confirmed.
 */
export type StepUpBy = { kind: 'page' } | { kind: 'email'; credential: NonNullable<RegistrationRow['credential_type']>; handle: (view: V01StepUp) => Record<string, unknown> };

/** What a v0.1 agent needs to finish a first link by the emailed code. */
export interface V01StepUp {
  id: string;
  claimToken: string;
  claimExpiresAt: number;
}

/** `POST /agent/identity {type:"identity_assertion"}`. Throws 401 interaction_required (with a ceremony) for a first link. */
export async function registerWithIdJag(ctx: EngineContext, request: { assertion: string; clientIp?: string }): Promise<RegistrationView> {
  const { registration, user, idJag } = await registrationForIdJag(ctx, { ...request, stepUpBy: { kind: 'page' } });
  const identity = await mintAssertion(ctx, registration, { ...userClaims(user), ...(idJag.amr ? { amr: idJag.amr } : {}) });
  return { id: registration.id, type: 'identity_assertion', identity, scopes: { kind: 'granted', scopes: ctx.config.scopes.postClaim } };
}

/**
 * The registration of a clean ID-JAG match, made, bound or revived, and its user; for a first link
 * to an existing account, throws 401 interaction_required with the ceremony `stepUpBy` names. What
 * the agent gets for it (an identity assertion, or a v0.1 credential) is the caller's.
 */
export async function registrationForIdJag(
  ctx: EngineContext,
  request: { assertion: string; clientIp?: string; stepUpBy: StepUpBy },
): Promise<{ registration: RegistrationRow; user: UserRow; idJag: VerifiedIdJag }> {
  if (ctx.trust.size === 0) throw protocolError('issuer_not_enabled', 'This service trusts no ID-JAG issuer.');
  await checkRegistrationRate(ctx, ctx.store, 'identity_assertion', request.clientIp);
  const idJag = await verifyIdJag(ctx, request.assertion);
  return retryOnConcurrentLink(async () => {
    const match = await matchIdentity(ctx, idJag);
    const existing = await registrationOf(ctx, idJag, match);
    if (match.kind === 'step-up') throw await stepUp(ctx, idJag, match.user, existing, request.clientIp, request.stepUpBy);
    if (match.kind === 'new' && !existing) return { ...(await newProviderAccount(ctx, idJag, match, request.clientIp)), idJag };
    const user = match.kind === 'new' ? await provision(ctx, idJag, match) : match.user;
    return { registration: await cleanRegistration(ctx, idJag, user, existing, request.clientIp), user, idJag };
  });
}

/**
 * The first ID-JAG of a provider account nobody here is: its user, its link and its registration in
 * one transaction. A concurrent twin that made any of them first makes this throw DuplicateKeyError.
 */
async function newProviderAccount(ctx: EngineContext, idJag: VerifiedIdJag, match: NoMatch, clientIp: string | undefined): Promise<{ registration: RegistrationRow; user: UserRow }> {
  return ctx.store.transaction(async (tx) => {
    const user = await provisionUser(ctx, tx, idJag, match);
    const registration: RegistrationRow = { ...providerRegistration(ctx, idJag, clientIp), claimed_at: ctx.clock(), user_id: user.id, link_user_id: user.id };
    if (!(await lifecycle.create(ctx, tx, registration, { provider: idJag.iss }, { once: true }))) throw new DuplicateKeyError(registrations.name, 'id');
    return { registration, user };
  });
}

/**
 * v0.7's `POST /agent/identity/claim {type:"identity_assertion", claim_token, assertion}`: an
 * anonymous registration claimed with an ID-JAG. A clean match binds at once; a first link to an
 * existing account starts a ceremony for that account.
 */
export async function claimWithIdJag(
  ctx: EngineContext,
  registration: RegistrationRow,
  assertion: string,
): Promise<{ kind: 'claimed'; claimed: Claimed } | { kind: 'ceremony'; attempt: AttemptView }> {
  if (registration.type !== 'anonymous') throw protocolError('already_claimed', 'Only an anonymous registration can be claimed with an ID-JAG.');
  const idJag = await verifyIdJag(ctx, assertion);
  const match = await matchOrProvision(ctx, idJag);
  const provider = {
    provider_iss: idJag.iss,
    provider_sub: idJag.sub,
    client_id: idJag.clientId,
    delegation_key: delegationKey(idJag.iss, idJag.sub),
    link_user_id: match.user.id,
  };
  if (match.kind === 'clean') {
    const claimed = await bindToUser(ctx, { ...registration, ...provider }, match.user, async () => ({
      refreshToken: false,
      claim: { type: 'identity_assertion' },
    }));
    return { kind: 'claimed', claimed };
  }
  // The ceremony is tied to the provider account (a revocation ends it) and to the matched account.
  const attempt = await ctx.store.transaction((tx) => newAttempt(ctx, tx, registration, loginHintOf(match.user), provider));
  return { kind: 'ceremony', attempt };
}

/** The claim-start answer for an ID-JAG claim that needs a ceremony (v0.7 names the registration type). */
export function ceremonyEnvelope(ctx: EngineContext, registration: RegistrationRow, attempt: AttemptView) {
  return claimStartedEnvelope({ id: registration.id, type: 'identity_assertion' }, attempt, ctx.config.dialects, ctx.clock());
}

/**
 * ID-JAG redemption at the token endpoint (jwt-bearer, the IETF draft's flow; off unless configured).
 * Only a clean match gets a token: a first link still needs the human, through /agent/identity.
 */
export async function exchangeIdJag(ctx: EngineContext, request: TokenRequest & { assertion: string }): Promise<AccessTokenView> {
  let idJag: VerifiedIdJag;
  let match;
  try {
    idJag = await verifyIdJag(ctx, request.assertion);
    match = await matchOrProvision(ctx, idJag);
  } catch (error) {
    // A refusal of the ID-JAG is the grant's; a passing failure (keys unreachable, a contended link) stays itself.
    if (error instanceof ProtocolError && error.status < 500) {
      throw protocolError('invalid_grant', `The ID-JAG was refused: ${error.description}`, { reason: error.reason ?? error.code });
    }
    throw error;
  }
  if (match.kind === 'step-up') {
    throw protocolError('invalid_grant', 'This account must confirm the link first: register with the ID-JAG at the identity endpoint.', { reason: 'interaction_required' });
  }
  const registration = await cleanRegistration(ctx, idJag, match.user, await registrationOf(ctx, idJag), undefined);
  return ctx.store.transaction(async (tx) => issueAccessToken(ctx, tx, (await tx.get(registrations, registration.id))!, request));
}

/**
 * The registration that belongs to this provider account: a live claimed one, else one an operator
 * revoked (which stays refused), else its own row, if any. `match` may say the account has no
 * delegation at all: then no registration was ever bound to it, and only its own row can exist
 * (a first link waiting for its human).
 */
async function registrationOf(ctx: EngineContext, idJag: VerifiedIdJag, match?: Match): Promise<RegistrationRow | undefined> {
  const neverLinked = match?.kind === 'new' && match.link === undefined;
  const rows = neverLinked ? [] : await ctx.store.findMany(registrations, 'delegation_key', delegationKey(idJag.iss, idJag.sub), 20);
  const now = ctx.clock();
  const inState = (state: RegistrationState) => rows.find((row) => lifecycle.stateOf(row, now) === state);
  return inState('claimed') ?? inState('revoked_by_operator') ?? (await ctx.store.get(registrations, providerRegistrationId(ctx, idJag)));
}

/** A clean match: the provider account's registration, made, bound, or revived after a provider revocation. */
async function cleanRegistration(
  ctx: EngineContext,
  idJag: VerifiedIdJag,
  user: UserRow,
  existing: RegistrationRow | undefined,
  clientIp: string | undefined,
): Promise<RegistrationRow> {
  const now = ctx.clock();
  if (existing) lifecycle.requireNotRevokedByOperator(existing);
  if (existing && existing.claimed_at !== null && existing.user_id === user.id) return revived(ctx, existing);
  if (existing && existing.claimed_at === null) {
    // A pending first link (perhaps expired, or ended by the provider) that this clean ID-JAG now proves: bind it.
    const linkable = { ...existing, link_user_id: user.id };
    return (await bindToUser(ctx, linkable, user, async () => ({ refreshToken: false, claim: { byCleanIdJag: true } }))).registration;
  }
  // Concurrent first ID-JAGs of one account race on the one id of its registration: one inserts.
  const row: RegistrationRow = { ...providerRegistration(ctx, idJag, clientIp), claimed_at: now, user_id: user.id, link_user_id: user.id };
  const created = await ctx.store.transaction((tx) => lifecycle.create(ctx, tx, row, { provider: idJag.iss }, { once: true }));
  if (created) return row;
  const winner = await ctx.store.get(registrations, row.id);
  if (winner?.claimed_at !== null && winner?.user_id === user.id) return revived(ctx, winner);
  throw protocolError('invalid_request', 'This provider account is linked to another account here; ask the user to sign in at the provider again.', { reason: 'link_conflict' });
}

/** A registration a provider revocation ended comes back (next generation) for an ID-JAG minted after it. */
async function revived(ctx: EngineContext, registration: RegistrationRow): Promise<RegistrationRow> {
  // A live one (the usual returning agent) needs nothing written: no transaction to wait for.
  if (lifecycle.stateOf(registration, ctx.clock()) === 'claimed') return registration;
  return ctx.store.transaction(async (tx) => lifecycle.revive(ctx, tx, (await tx.get(registrations, registration.id))!));
}

/** A first link to an existing account: a registration waiting for that account's human, and the 401 that says so. */
async function stepUp(
  ctx: EngineContext,
  idJag: VerifiedIdJag,
  user: UserRow,
  existing: RegistrationRow | undefined,
  clientIp: string | undefined,
  by: StepUpBy,
): Promise<ProtocolError> {
  // A v0.1 agent can only confirm by an emailed code: an account known only by phone gets the page.
  if (by.kind === 'email' && user.email) return stepUpByEmail(ctx, idJag, user as UserRow & { email: string }, existing, clientIp, by);
  const { claimToken, claimExpiresAt, pending } = pendingLink(ctx, user, null);
  const { registration, attempt } = await ctx.store.transaction(async (tx: StoreOps) => {
    const registration = await pendingRegistration(ctx, tx, idJag, existing, clientIp, pending);
    return { registration, attempt: await newAttempt(ctx, tx, registration, loginHintOf(user)) };
  });
  const view: RegistrationView = {
    id: registration.id,
    type: 'identity_assertion',
    scopes: { kind: 'claimable', postClaim: ctx.config.scopes.postClaim },
    claim: { token: claimToken, expiresAt: claimExpiresAt, url: ctx.config.issuer + paths.claim, attempt },
  };
  const description = asciiDescription(
    `This ${idJag.provider.displayName} account matches an existing account here, which has not confirmed the link yet. ${errorSpec('interaction_required').hint}`,
  );
  return new ProtocolError('interaction_required', description, {
    extra: registrationEnvelope(view, ctx.config.dialects, ctx.clock()),
    headers: { 'WWW-Authenticate': `AgentAuth error="interaction_required", error_description="${description}"` },
  });
}

/** v0.1's first link: the matched account's address is emailed a code, which the agent sends back to `/agent/auth/claim/complete`. */
async function stepUpByEmail(
  ctx: EngineContext,
  idJag: VerifiedIdJag,
  user: UserRow & { email: string },
  existing: RegistrationRow | undefined,
  clientIp: string | undefined,
  by: Extract<StepUpBy, { kind: 'email' }>,
): Promise<ProtocolError> {
  const { claimToken, claimExpiresAt, pending } = pendingLink(ctx, user, by.credential);
  const { registration, attempt } = await ctx.store.transaction(async (tx: StoreOps) => {
    await chargeClaimEmail(ctx, tx, user.email, clientIp);
    const registration = await pendingRegistration(ctx, tx, idJag, existing, clientIp, pending);
    return { registration, attempt: await createAttempt(ctx, tx, registration, user.email, { emailCode: true }) };
  });
  await sendClaimEmail(ctx, { to: user.email, code: attempt.emailCode!, attemptToken: attempt.attemptToken, registration });
  const description = asciiDescription(
    `This ${idJag.provider.displayName} account matches an existing account here, which has not confirmed the link yet. Its owner was emailed a 6-digit code: ask them for it and send it with claim_token to ${ctx.config.issuer}${paths.v01.claimComplete}.`,
  );
  return new ProtocolError('interaction_required', description, {
    extra: by.handle({ id: registration.id, claimToken, claimExpiresAt }),
    headers: { 'WWW-Authenticate': `AgentAuth error="interaction_required", error_description="${description}"` },
  });
}

/** A new claim token for a first link to `user`, and the registration fields that wait for it. */
function pendingLink(ctx: EngineContext, user: UserRow, credential: RegistrationRow['credential_type']) {
  const now = ctx.clock();
  const claimToken = timeOrderedSecret(ctx.random, prefixes.claimToken, now);
  const claimExpiresAt = now + ctx.config.lifetimes.claimWindowMs;
  const pending = {
    claim_token_hash: secretKey(claimToken),
    claim_expires_at: claimExpiresAt,
    link_user_id: user.id,
    expires_at: claimExpiresAt + KEEP_AFTER_CLAIM_WINDOW_MS,
    credential_type: credential,
  };
  return { claimToken, claimExpiresAt, pending };
}

/** The provider account's registration, made or asked again (which replaces its earlier claim token and attempt). */
async function pendingRegistration(
  ctx: EngineContext,
  tx: StoreOps,
  idJag: VerifiedIdJag,
  existing: RegistrationRow | undefined,
  clientIp: string | undefined,
  pending: ReturnType<typeof pendingLink>['pending'],
): Promise<RegistrationRow> {
  const id = existing?.id ?? providerRegistrationId(ctx, idJag);
  const registration: RegistrationRow = { ...providerRegistration(ctx, idJag, clientIp), ...pending };
  let current = await tx.get(registrations, id);
  // An absent row is not locked (PostgreSQL): a concurrent twin may insert it after the read, so the
  // insert is an insert-if-absent, and a twin's row, read again after it, is asked again below.
  if (!current && !(await lifecycle.create(ctx, tx, registration, { provider: idJag.iss }, { once: true }))) current = await tx.get(registrations, registration.id);
  return current ? lifecycle.relink(ctx, tx, current, pending) : registration;
}

/**
 * The id of a provider account's registration: fixed per `(iss, sub)`, so concurrent first
 * ID-JAGs make one, and keyed by the service secret, so it reveals nothing about the account.
 */
function providerRegistrationId(ctx: EngineContext, idJag: VerifiedIdJag): string {
  return prefixes.registration + keyedDigest(ctx.secret, 'provider-registration', idJag.iss, idJag.sub).slice(0, 22);
}

function providerRegistration(ctx: EngineContext, idJag: VerifiedIdJag, clientIp: string | undefined): RegistrationRow {
  return registrationRow({
    id: providerRegistrationId(ctx, idJag),
    type: 'identity_assertion',
    created_at: ctx.clock(),
    provider_iss: idJag.iss,
    provider_sub: idJag.sub,
    client_id: idJag.clientId,
    delegation_key: delegationKey(idJag.iss, idJag.sub),
    client_ip: clientIp ?? null,
  });
}

/**
 * Only the matched account may confirm a first link: its email. A user known only by phone cannot
 * use the emailed sign-in, so the hint then matches nobody there and the link fails closed.
 */
function loginHintOf(user: UserRow): string {
  return user.email ?? `phone:${user.phone}`;
}
