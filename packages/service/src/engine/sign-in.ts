import { isEmail, ProtocolError } from '@authmd/protocol';
import { escapeHtml } from '../html.ts';
import { signIns, type UserRow } from '../schema.ts';
import { opaqueValue } from '../secrets.ts';
import { codeDigest, codeMatches, newCode } from './codes.ts';
import type { EngineContext } from './context.ts';
import { normalizeEmail, userForVerifiedEmail } from './users.ts';

const HOUR = 3_600_000;

/**
 * Passwordless sign-in: a six-digit code goes to the address; whoever types it back owns the
 * address. A new address becomes an account whose email is verified by that code. Errors are read by
 * a person on a page: plain sentences, without the agent-directed hints of the catalogue.
 */
export async function sendSignInCode(ctx: EngineContext, email: string, clientIp: string | undefined): Promise<string> {
  if (!isEmail(email)) throw new ProtocolError('invalid_request', 'email: enter an email address such as name@example.com.');
  const address = normalizeEmail(email);
  const now = ctx.clock();
  // Per address (no mail bombing of one inbox) and per client (no spraying of many inboxes).
  const limits: [string, number, string][] = [
    [`sign-in-codes:${address}`, ctx.config.limits.signInCodesPerHour, 'Too many codes were sent to this address'],
    ...(clientIp ? ([[`sign-in-codes-ip:${clientIp}`, ctx.config.limits.signInCodesPerIpPerHour, 'Too many codes were asked for from your network']] as [string, number, string][]) : []),
  ];
  for (const [key, limit, what] of limits) {
    const sent = await ctx.store.incrementWithin(key, HOUR, now);
    if (sent.count > limit) {
      const retryAfter = Math.ceil((sent.resetAt - now) / 1000);
      throw new ProtocolError('rate_limit_exceeded', `${what}; try again in ${Math.ceil(retryAfter / 60)} minutes.`, {
        headers: { 'Retry-After': String(retryAfter) },
        extra: { retry_after: retryAfter },
      });
    }
  }
  const id = opaqueValue(ctx.random, 'sgn_', 16);
  const code = newCode(ctx);
  const expiresAt = now + ctx.config.lifetimes.signInCodeMs;
  await ctx.store.insert(signIns, { id, email: address, code_hash: codeDigest(ctx, 'sign-in', id, code), created_at: now, expires_at: expiresAt });
  const minutes = Math.round(ctx.config.lifetimes.signInCodeMs / 60_000);
  const message = {
    to: address,
    subject: `Your ${ctx.config.name} sign-in code: ${code}`,
    text: `Your sign-in code for ${ctx.config.name} is ${code}.\n\nIt works once, for ${minutes} minutes. If you did not ask for it, ignore this message.\n`,
    html: `<p>Your sign-in code for ${escapeHtml(ctx.config.name)} is</p><p style="font-size:28px;letter-spacing:4px"><b>${code}</b></p><p>It works once, for ${minutes} minutes. If you did not ask for it, ignore this message.</p>`,
  };
  await ctx.mailer.send(message).catch((error: unknown) => {
    ctx.logger.error('sending a sign-in code failed', { error: String(error) });
    throw new ProtocolError('server_error', 'The sign-in email could not be sent right now; try again in a few minutes.');
  });
  return id;
}

/** Checks the code (at most `codeTriesPerAttempt` tries per code) and returns the signed-in user. */
export async function finishSignIn(ctx: EngineContext, signInId: string, code: string): Promise<UserRow> {
  const now = ctx.clock();
  const signIn = await ctx.store.get(signIns, signInId);
  if (!signIn || signIn.expires_at <= now) throw new ProtocolError('user_code_expired', 'This sign-in code has expired; ask for a new one.');
  const tries = await ctx.store.incrementWithin(`sign-in-tries:${signInId}`, ctx.config.lifetimes.signInCodeMs, now);
  if (tries.count > ctx.config.limits.codeTriesPerAttempt) {
    await ctx.store.delete(signIns, signInId);
    throw new ProtocolError('too_many_attempts', 'Too many wrong codes; ask for a new one.');
  }
  if (!/^\d{6}$/.test(code) || !codeMatches(ctx, 'sign-in', signInId, code, signIn.code_hash)) {
    throw new ProtocolError('invalid_user_code', 'That code is not right; check the latest email and try again.');
  }
  if (!(await ctx.store.consumeOne(signIns, signInId))) throw new ProtocolError('user_code_expired', 'This sign-in code was already used; ask for a new one.');
  return userForVerifiedEmail(ctx, signIn.email);
}
