import { isEmail, protocolError, ProtocolError, type V01CredentialView } from '@authmd/protocol';
import { claimAttempts, registrations, type ClaimAttemptRow, type RegistrationRow } from '../schema.ts';
import { createAttempt, currentAttempt, EMAIL_CODE, spendCodeTry } from './attempts.ts';
import { openAttempt } from './ceremony.ts';
import { completeClaim } from './claim-completion.ts';
import { registrationByClaimToken } from './claims.ts';
import { codeDigest, codeMatches, newCode } from './codes.ts';
import type { EngineContext } from './context.ts';
import { requireClaimable, stateOf } from './registration-lifecycle.ts';
import { normalizeEmail, userForVerifiedEmail } from './users.ts';
import { hasLiveApiKey, issueCredential } from './v01-credentials.ts';
import { chargeClaimEmail, sendClaimEmail } from './v01-mail.ts';

/**
 * The v0.1 claim ceremony: the person is emailed a six-digit code (and a link), and reads the code
 * to the agent, which sends it to `/agent/auth/claim/complete`. Holding the mailbox is the proof:
 * no sign-in. The limits are the other dialects': 5 tries per code, 10 attempts per registration,
 * codes HMAC'd at rest and compared in constant time.
 */

/**
 * `POST /agent/auth/claim {claim_token, email}`: anonymous registrations only. The same email while
 * its attempt is open gets the same attempt back (no second email); another email, or a closed
 * attempt, starts a new one and replaces the previous. An email that could not be sent (a 503) leaves
 * no emailed attempt behind, so the retry sends one.
 */
export async function startV01Claim(ctx: EngineContext, claimToken: string, email: string, clientIp: string | undefined): Promise<{ registrationId: string; attempt: { id: string; expiresAt: number } }> {
  const registration = await registrationByClaimToken(ctx, claimToken, 'invalid_claim_token');
  if (registration.type !== 'anonymous' || stateOf(registration, ctx.clock()) === 'claimed') {
    throw protocolError('claimed_or_in_flight', registration.type === 'anonymous' ? 'This registration is already claimed.' : 'This registration is claimed by its own emailed code, not by a new email.');
  }
  requireClaimable(registration, ctx.clock());
  const address = normalizeEmail(email);
  if (!isEmail(address)) throw protocolError('invalid_request', 'email: must be an email address such as name@example.com.');
  const open = await currentAttempt(ctx, registration);
  if (open && open.emailed_at !== null && open.login_hint === address && isOpen(ctx, open)) {
    return { registrationId: registration.id, attempt: { id: open.id, expiresAt: open.expires_at } };
  }
  const attempt = await ctx.store.transaction(async (tx) => {
    await chargeClaimEmail(ctx, tx, address, clientIp);
    return createAttempt(ctx, tx, registration, address, { emailCode: true });
  });
  await sendClaimEmail(ctx, { to: address, code: attempt.emailCode!, attemptToken: attempt.attemptToken, registration }).catch(async (error: unknown) => {
    // Not emailed after all (the SMTP server is down, say): the agent's retry, with the same email,
    // must send a new one rather than get this attempt back as if its email had gone out.
    await ctx.store.update(claimAttempts, attempt.row.id, { emailed_at: null });
    throw error;
  });
  return { registrationId: registration.id, attempt: { id: attempt.row.id, expiresAt: attempt.row.expires_at } };
}

export type V01Claimed = { credential: V01CredentialView } | { upgraded: { type: 'api_key'; scopes: string[] } };

/**
 * `POST /agent/auth/claim/complete {claim_token, otp}`: the code the person read from the email (or
 * from the link's page). The account is the email's, found or made. An anonymous registration keeps
 * its API key, now with the post-claim scopes; any other gets the credential it asked for.
 */
export async function completeV01Claim(ctx: EngineContext, claimToken: string, otp: string): Promise<{ registrationId: string; outcome: V01Claimed }> {
  const registration = await registrationByClaimToken(ctx, claimToken, 'invalid_claim_token');
  requireClaimable(registration, ctx.clock());
  const attempt = await currentAttempt(ctx, registration);
  if (!attempt || attempt.emailed_at === null || attempt.login_hint === null) {
    throw protocolError('otp_not_generated', 'No code was emailed for this registration.');
  }
  if (attempt.denied_at !== null) throw protocolError('claim_denied', 'The person said no to this agent.');
  if (attempt.completed_at !== null) throw protocolError('already_claimed', 'This registration is already claimed.');
  if (attempt.expires_at <= ctx.clock()) throw protocolError('user_code_expired', 'The emailed code has expired.');
  const triesLeft = await spendCodeTry(ctx, attempt);
  if (!codeMatches(ctx, EMAIL_CODE, attempt.id, otp, attempt.page_code_hash)) {
    ctx.metrics.claim('wrong_code');
    throw protocolError('invalid_user_code', `The code does not match; ${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left for this code.`, {
      extra: { tries_left: triesLeft },
    });
  }
  const user = await userForVerifiedEmail(ctx, attempt.login_hint);
  const claimed = await completeClaim(ctx, attempt.id, registration, user, { refreshToken: false });
  if (registration.credential_type === 'api_key' && registration.type === 'anonymous' && (await hasLiveApiKey(ctx, registration.id))) {
    return { registrationId: registration.id, outcome: { upgraded: { type: 'api_key', scopes: ctx.config.scopes.postClaim } } };
  }
  const credential = await ctx.store.transaction(async (tx) => {
    const current = (await tx.get(registrations, registration.id))!;
    return issueCredential(ctx, tx, current, claimed.registration.credential_type ?? 'access_token');
  });
  return { registrationId: registration.id, outcome: { credential } };
}

/**
 * The link's page, "Show me a code": a new code for the holder of the link, replacing the emailed
 * one (so a code a mail scanner might have seen on the page is never the live one unless pressed).
 */
export async function revealV01Code(ctx: EngineContext, attemptToken: string): Promise<string> {
  const { attempt } = await openEmailedAttempt(ctx, attemptToken);
  const code = newCode(ctx);
  await ctx.store.transaction(async (tx) => {
    const replaced = await tx.update(claimAttempts, attempt.id, { page_code_hash: codeDigest(ctx, EMAIL_CODE, attempt.id, code) }, { denied_at: null, completed_at: null });
    if (!replaced) throw new ProtocolError('claim_expired', 'This request was already answered.');
    await ctx.audit.record({ type: 'code.revealed', at: ctx.clock(), registrationId: attempt.registration_id, data: { attempt_id: attempt.id, channel: 'email-link' } }, tx);
  });
  return code;
}

/** The link's page, "This was not me": the agent's next /complete gets claim_denied. */
export async function denyV01(ctx: EngineContext, attemptToken: string): Promise<void> {
  const { attempt } = await openEmailedAttempt(ctx, attemptToken);
  await ctx.store.transaction(async (tx) => {
    const denied = await tx.update(claimAttempts, attempt.id, { denied_at: ctx.clock() }, { denied_at: null, completed_at: null });
    if (!denied) throw new ProtocolError('claim_expired', 'This request was already answered.');
    await ctx.audit.record({ type: 'claim.denied', at: ctx.clock(), registrationId: attempt.registration_id, data: { attempt_id: attempt.id, channel: 'email-link' } }, tx);
  });
  ctx.metrics.claim('denied');
}

/** The emailed attempt behind a link token, if it can still be acted on (errors are for the person). */
export async function openEmailedAttempt(ctx: EngineContext, attemptToken: string): Promise<{ attempt: ClaimAttemptRow; registration: RegistrationRow }> {
  const open = await openAttempt(ctx, attemptToken);
  if (open.attempt.emailed_at === null) throw new ProtocolError('not_found', 'This link is not valid. Use the link in the latest email.');
  return open;
}


function isOpen(ctx: EngineContext, attempt: ClaimAttemptRow): boolean {
  return attempt.expires_at > ctx.clock() && attempt.denied_at === null && attempt.completed_at === null;
}
