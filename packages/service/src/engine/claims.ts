import { isEmail, protocolError, type AccessTokenView, type AttemptView, type ClaimCommand, type RegistrationType } from '@authmd/protocol';
import { claimAttempts, registrations, type ClaimAttemptRow, type RegistrationRow } from '../schema.ts';
import { secretKey } from '../secrets.ts';
import { mintAssertion } from './assertions.ts';
import { currentAttempt, newAttempt, spendCodeTry } from './attempts.ts';
import { claimWithIdJag } from './agent-verified.ts';
import { completeClaim, type Claimed } from './claim-completion.ts';
import { codeMatches } from './codes.ts';
import type { EngineContext } from './context.ts';
import { issueAccessToken, type TokenRequest } from './exchange.ts';
import { isClaimable, requireClaimable, stateOf } from './registration-lifecycle.ts';
import { getUser, normalizeEmail, userClaims } from './users.ts';

/** The agent's side of the claim ceremony: start an attempt, finish by read-back, or poll (v0.7). */

export type ClaimOutcome =
  /** A ceremony started: the human must act on the attempt's page. */
  | { kind: 'started'; registration: { id: string; type: RegistrationType }; attempt: AttemptView }
  /** Claimed at once (an anonymous registration and a clean ID-JAG). */
  | { kind: 'claimed'; claimed: Claimed };

/**
 * `POST /agent/identity/claim`: a new attempt (or a re-mint after expiry) naming the human by email,
 * or (v0.7) an anonymous registration claimed with an ID-JAG.
 */
export async function startClaim(ctx: EngineContext, command: ClaimCommand): Promise<ClaimOutcome> {
  if (command.method === 'login_hint' && !isEmail(command.loginHint)) {
    throw protocolError('invalid_login_hint', 'login_hint must be the user\'s email address.');
  }
  if (command.method === 'identity_assertion' && ctx.trust.size === 0) throw protocolError('issuer_not_enabled', 'This service trusts no ID-JAG issuer.');
  const registration = await registrationByClaimToken(ctx, command.claimToken, 'invalid_claim_token');
  requireClaimable(registration, ctx.clock());
  if (command.method === 'identity_assertion') {
    const outcome = await claimWithIdJag(ctx, registration, command.assertion);
    if (outcome.kind === 'claimed') return outcome;
    return { kind: 'started', registration: { id: registration.id, type: 'identity_assertion' }, attempt: outcome.attempt };
  }
  const attempt = await ctx.store.transaction((tx) => newAttempt(ctx, tx, registration, normalizeEmail(command.loginHint)));
  return { kind: 'started', registration: { id: registration.id, type: registration.type }, attempt };
}

/**
 * `POST /agent/identity/claim/complete` (read-back): the user pressed Authorize on the page, which
 * showed them a code; the agent sends it here. Returns the user's identity and a refresh token.
 */
export async function completeByPageCode(ctx: EngineContext, claimToken: string, userCode: string): Promise<Claimed> {
  const registration = await registrationByClaimToken(ctx, claimToken, 'invalid_claim');
  requireClaimable(registration, ctx.clock());
  const attempt = await currentAttempt(ctx, registration);
  if (!attempt) throw protocolError('claim_expired', 'There is no claim attempt; start one at the claim endpoint.');
  if (attempt.denied_at !== null) throw protocolError('claim_denied', 'The user denied this agent.');
  if (attempt.completed_at !== null) throw protocolError('already_claimed', 'This registration is already claimed.');
  if (attempt.confirmed_at === null || attempt.confirmed_user_id === null) {
    throw protocolError('claim_not_confirmed', 'The user has not pressed Authorize on the claim page yet.');
  }
  if (attempt.expires_at <= ctx.clock()) throw protocolError('user_code_expired', 'The claim attempt has expired.');
  const triesLeft = await spendCodeTry(ctx, attempt);
  if (!codeMatches(ctx, 'page-code', attempt.id, userCode, attempt.page_code_hash)) {
    ctx.metrics.claim('wrong_code');
    throw protocolError('invalid_user_code', `The code does not match; ${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left for this attempt.`, {
      extra: { tries_left: triesLeft },
    });
  }
  const user = await getUser(ctx, attempt.confirmed_user_id);
  if (!user) throw protocolError('claim_expired', 'The account that authorized this claim no longer exists.');
  return completeClaim(ctx, attempt.id, registration, user, { refreshToken: true });
}

/**
 * The claim grant (v0.7, `urn:workos:agent-auth:grant-type:claim`): the agent polls while the user
 * types the agent code on the page. RFC 8628 semantics: `authorization_pending`, `slow_down` (the
 * stored interval grows by 5 s each time), `access_denied`, `expired_token`. `slow_down` is a kind
 * of "still pending" (§3.5): once the user answered, the answer comes whatever the pace. Once
 * claimed, the tokens are handed over exactly once.
 */
export async function pollClaim(ctx: EngineContext, claimToken: string, request: TokenRequest): Promise<AccessTokenView> {
  const expired = (what: string) => protocolError('expired_token', what);
  const registration = await ctx.store.findOne(registrations, 'claim_token_hash', secretKey(claimToken));
  if (!registration) throw expired('The claim token is not known.');
  const now = ctx.clock();
  const state = stateOf(registration, now);
  if (state !== 'claimed' && !isClaimable(state)) throw expired('The registration has expired.');
  const attempt = await currentAttempt(ctx, registration);
  if (!attempt) throw expired('There is no claim attempt; start one at the claim endpoint.');

  if (attempt.denied_at !== null) throw protocolError('access_denied', 'The user denied this agent.');
  if (attempt.completed_at !== null && state === 'claimed') return handOver(ctx, registration, attempt.id, request);
  if (attempt.expires_at <= now) throw expired('The claim attempt expired before the user finished; start a new one.');
  await pace(ctx, attempt, now);
  throw protocolError('authorization_pending', 'The user has not finished on the claim page yet.', { extra: { interval: attempt.interval_seconds } });
}

/**
 * A poll sooner than the attempt's interval after the previous one gets `slow_down`, and the
 * interval grows by 5 s. The answer names the new interval, so a client that fell behind catches up
 * in one step. Compare-and-set on `last_polled_at`: of two concurrent polls, one is early.
 */
async function pace(ctx: EngineContext, attempt: ClaimAttemptRow, now: number): Promise<void> {
  const early = attempt.last_polled_at !== null && now - attempt.last_polled_at < attempt.interval_seconds * 1000;
  const interval = early ? attempt.interval_seconds + 5 : attempt.interval_seconds;
  const polled = await ctx.store.update(claimAttempts, attempt.id, { interval_seconds: interval, last_polled_at: now }, { last_polled_at: attempt.last_polled_at });
  if (early || !polled) {
    throw protocolError('slow_down', `Poll at most every ${attempt.interval_seconds + 5} seconds.`, { extra: { interval: attempt.interval_seconds + 5 } });
  }
}

async function handOver(ctx: EngineContext, registration: RegistrationRow, attemptId: string, request: TokenRequest): Promise<AccessTokenView> {
  const user = registration.user_id ? await getUser(ctx, registration.user_id) : undefined;
  const identity = await mintAssertion(ctx, registration, userClaims(user));
  return ctx.store.transaction(async (tx) => {
    const first = await tx.update(claimAttempts, attemptId, { handed_over_at: ctx.clock() }, { handed_over_at: null });
    if (!first) throw protocolError('invalid_grant', 'The tokens of this claim were already handed over; use the identity assertion.');
    const current = (await tx.get(registrations, registration.id))!;
    if (current.generation !== registration.generation) throw protocolError('invalid_grant', 'The registration changed; poll again.');
    return { ...(await issueAccessToken(ctx, tx, current, request)), identity };
  });
}

/** The registration a claim token belongs to, or `unknown` (the endpoint's name for an unknown token). */
export async function registrationByClaimToken(ctx: EngineContext, claimToken: string, unknown: 'invalid_claim_token' | 'invalid_claim'): Promise<RegistrationRow> {
  const registration = await ctx.store.findOne(registrations, 'claim_token_hash', secretKey(claimToken));
  if (!registration) throw protocolError(unknown, 'The claim token is not known.');
  return registration;
}
