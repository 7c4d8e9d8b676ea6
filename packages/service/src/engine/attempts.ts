import type { StoreOps } from '@authmd/core/store';
import { prefixes, protocolError, type AttemptView } from '@authmd/protocol';
import * as lifecycle from './registration-lifecycle.ts';
import { pagePaths } from '../pages/paths.ts';
import { claimAttempts, type ClaimAttemptRow, type RegistrationRow } from '../schema.ts';
import { secretKey, timeOrderedSecret, timeOrderedValue } from '../secrets.ts';
import { codeDigest, newCode, type CodePurpose } from './codes.ts';
import type { EngineContext } from './context.ts';

/** How long an attempt's row outlives the attempt, so late visitors of its page get "expired". */
const KEEP_AFTER_EXPIRY_MS = 86_400_000;

/**
 * Starts a claim attempt for a registration, replacing its live one (whose page and codes stop
 * working). At most `attemptsPerRegistration` attempts per registration. Runs inside `tx`. With
 * `link`, the attempt is a first link of a provider account, which only the matched account can finish.
 */
export async function newAttempt(
  ctx: EngineContext,
  tx: StoreOps,
  registration: RegistrationRow,
  loginHint: string | null,
  link?: Parameters<typeof lifecycle.startAttempt>[4],
): Promise<AttemptView> {
  const { row, attemptToken, agentCode } = await createAttempt(ctx, tx, registration, loginHint, { link });
  return {
    id: row.id,
    verificationUri: `${ctx.config.issuer}${pagePaths.claim}?token=${attemptToken}`,
    expiresAt: row.expires_at,
    agentCode,
    interval: row.interval_seconds,
  };
}

/**
 * The attempt itself, with its secrets: the attempt token (the page link), the agent code (v0.7),
 * and with `emailCode` (v0.1) the code the person is emailed, which works without signing in.
 */
export async function createAttempt(
  ctx: EngineContext,
  tx: StoreOps,
  registration: RegistrationRow,
  loginHint: string | null,
  options: { link?: Parameters<typeof lifecycle.startAttempt>[4]; emailCode?: boolean },
): Promise<{ row: ClaimAttemptRow; attemptToken: string; agentCode?: string; emailCode?: string }> {
  const now = ctx.clock();
  const made = await tx.incrementWithin(`claim-attempts:${registration.id}`, ctx.config.lifetimes.claimWindowMs, now);
  if (made.count > ctx.config.limits.attemptsPerRegistration) {
    throw protocolError('too_many_attempts', `This registration has used its ${ctx.config.limits.attemptsPerRegistration} claim attempts; register again.`);
  }
  const id = timeOrderedValue(ctx.random, prefixes.attempt, now);
  const attemptToken = timeOrderedSecret(ctx.random, prefixes.attemptToken, now);
  // The type-in direction exists only for agents that speak v0.7; otherwise no agent code is made.
  const agentCode = ctx.config.dialects.includes('v0.7') && !options.emailCode ? newCode(ctx) : undefined;
  const emailCode = options.emailCode ? newCode(ctx) : undefined;
  const expiresAt = now + ctx.config.lifetimes.attemptMs;
  const row: ClaimAttemptRow = {
    id,
    registration_id: registration.id,
    attempt_token_hash: secretKey(attemptToken),
    login_hint: loginHint,
    agent_code_hash: agentCode === undefined ? null : codeDigest(ctx, 'agent-code', id, agentCode),
    page_code_hash: emailCode === undefined ? null : codeDigest(ctx, EMAIL_CODE, id, emailCode),
    created_at: now,
    expires_at: expiresAt,
    confirmed_at: null,
    confirmed_user_id: null,
    denied_at: null,
    completed_at: null,
    handed_over_at: null,
    interval_seconds: ctx.config.limits.pollIntervalSeconds,
    last_polled_at: null,
    purge_at: expiresAt + KEEP_AFTER_EXPIRY_MS,
    emailed_at: emailCode === undefined ? null : now,
  };
  await tx.append(claimAttempts, row);
  await lifecycle.startAttempt(ctx, tx, registration, { id, loginHint }, options.link);
  await ctx.audit.record({ type: 'claim.requested', at: now, registrationId: registration.id, data: { attempt_id: id, login_hint: loginHint, ...(emailCode ? { channel: 'email' } : {}) } }, tx);
  return { row, attemptToken, agentCode, emailCode };
}

/** The code domain of v0.1's emailed code: it never matches at the read-back endpoint, nor the reverse. */
export const EMAIL_CODE = 'email-code' satisfies CodePurpose;

/** The registration's live attempt, or undefined when there is none (never started, or replaced). */
export async function currentAttempt(ctx: EngineContext, registration: RegistrationRow): Promise<ClaimAttemptRow | undefined> {
  return registration.current_attempt_id ? ctx.store.get(claimAttempts, registration.current_attempt_id) : undefined;
}

/**
 * Counts one code try against the attempt (both directions share the budget) *before* the code is
 * compared, so concurrent guesses cannot get more comparisons than the limit.
 */
export async function spendCodeTry(ctx: EngineContext, attempt: ClaimAttemptRow): Promise<number> {
  const now = ctx.clock();
  const limit = ctx.config.limits.codeTriesPerAttempt;
  const tries = await ctx.store.incrementWithin(`code-tries:${attempt.id}`, Math.max(1, attempt.expires_at - now), now);
  if (tries.count > limit) {
    ctx.metrics.claim('too_many_attempts');
    throw protocolError('too_many_attempts', `This claim attempt has had ${limit} code tries and is closed.`);
  }
  return limit - tries.count;
}
