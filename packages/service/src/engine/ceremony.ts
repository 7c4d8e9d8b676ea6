import { ProtocolError } from '@authmd/protocol';
import { claimAttempts, registrations, type ClaimAttemptRow, type RegistrationRow, type UserRow } from '../schema.ts';
import { secretKey } from '../secrets.ts';
import { spendCodeTry } from './attempts.ts';
import { completeClaim } from './claim-completion.ts';
import { codeDigest, codeMatches, newCode } from './codes.ts';
import type { EngineContext } from './context.ts';
import { isClaimable, stateOf } from './registration-lifecycle.ts';

/**
 * The human's side of the claim ceremony, on the service's own page. Every step requires a
 * signed-in user, and, when the attempt names an email, that it is this user's. Errors are read by
 * that person, so they are plain sentences without the agent-directed hints of the catalogue.
 */

export interface OpenAttempt {
  attempt: ClaimAttemptRow;
  registration: RegistrationRow;
}

/** The attempt behind a verification_uri token, if it can still be acted on. */
export async function openAttempt(ctx: EngineContext, attemptToken: string): Promise<OpenAttempt> {
  const attempt = await ctx.store.findOne(claimAttempts, 'attempt_token_hash', secretKey(attemptToken));
  const registration = attempt && (await ctx.store.get(registrations, attempt.registration_id));
  if (!attempt || !registration) throw new ProtocolError('not_found', 'This link is not valid. Ask the agent for a new one.');
  if (registration.current_attempt_id !== attempt.id) throw new ProtocolError('claim_expired', 'This link was replaced by a newer one. Use the latest link the agent gave you.');
  const state = stateOf(registration, ctx.clock());
  if (state === 'claimed') throw new ProtocolError('already_claimed', 'This agent is already linked to an account.');
  if (state === 'revoked_by_operator') throw new ProtocolError('claim_revoked', 'This service revoked the agent registration.');
  if (!isClaimable(state)) throw new ProtocolError('claim_expired', 'This agent registration has expired.');
  if (attempt.denied_at !== null) throw new ProtocolError('claim_denied', 'You denied this agent.');
  if (attempt.expires_at <= ctx.clock()) throw new ProtocolError('claim_expired', 'This link has expired. Ask the agent for a new one.');
  return { attempt, registration };
}

/** The signed-in user may act on this attempt: it names no email, or theirs. */
export function mayAct(attempt: ClaimAttemptRow, user: UserRow): boolean {
  return attempt.login_hint === null || attempt.login_hint === user.email;
}

function requireAllowed(attempt: ClaimAttemptRow, user: UserRow): void {
  if (!mayAct(attempt, user)) throw new ProtocolError('claim_denied', `This request is for ${attempt.login_hint}; sign in with that account.`);
}

/**
 * Authorize (read-back direction): records who confirmed and returns a fresh page code to show them.
 * Pressing it again replaces the code.
 */
export async function authorizeAttempt(ctx: EngineContext, attemptToken: string, user: UserRow): Promise<string> {
  const { attempt, registration } = await openAttempt(ctx, attemptToken);
  requireAllowed(attempt, user);
  const code = newCode(ctx);
  const now = ctx.clock();
  await ctx.store.transaction(async (tx) => {
    const confirmed = await tx.update(
      claimAttempts,
      attempt.id,
      { confirmed_at: now, confirmed_user_id: user.id, page_code_hash: codeDigest(ctx, 'page-code', attempt.id, code) },
      { denied_at: null, completed_at: null },
    );
    if (!confirmed) throw new ProtocolError('claim_expired', 'This request was already answered.');
    await ctx.audit.record({ type: 'code.revealed', at: now, registrationId: registration.id, data: { user_id: user.id, attempt_id: attempt.id } }, tx);
  });
  return code;
}

/** Deny: the agent's poll gets access_denied, its /complete gets claim_denied. */
export async function denyAttempt(ctx: EngineContext, attemptToken: string, user: UserRow): Promise<void> {
  const { attempt, registration } = await openAttempt(ctx, attemptToken);
  requireAllowed(attempt, user);
  const now = ctx.clock();
  await ctx.store.transaction(async (tx) => {
    const denied = await tx.update(claimAttempts, attempt.id, { denied_at: now }, { denied_at: null, completed_at: null });
    if (!denied) throw new ProtocolError('claim_expired', 'This request was already answered.');
    await ctx.audit.record({ type: 'claim.denied', at: now, registrationId: registration.id, data: { user_id: user.id, attempt_id: attempt.id } }, tx);
  });
  ctx.metrics.claim('denied');
}

/** Type-in direction (v0.7): the user enters the code the agent showed; a match completes the claim. */
export async function confirmByAgentCode(ctx: EngineContext, attemptToken: string, user: UserRow, code: string): Promise<RegistrationRow> {
  const { attempt, registration } = await openAttempt(ctx, attemptToken);
  requireAllowed(attempt, user);
  if (attempt.agent_code_hash === null) throw new ProtocolError('invalid_request', 'This agent does not show a code; press Authorize instead.');
  if (!/^\d{6}$/.test(code)) throw new ProtocolError('invalid_user_code', 'Enter the six digits your agent shows.');
  const triesLeft = await spendCodeTry(ctx, attempt).catch((error: unknown) => {
    if (error instanceof ProtocolError && error.code === 'too_many_attempts') {
      throw new ProtocolError('too_many_attempts', 'Too many wrong codes for this request. Ask your agent for a new link.');
    }
    throw error;
  });
  if (!codeMatches(ctx, 'agent-code', attempt.id, code, attempt.agent_code_hash)) {
    ctx.metrics.claim('wrong_code');
    throw new ProtocolError('invalid_user_code', `That is not the code your agent shows; ${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left.`);
  }
  return (await completeClaim(ctx, attempt.id, registration, user, { refreshToken: false })).registration;
}
