import type { StoreOps } from '@authmd/core/store';
import { isEmail, ProtocolError } from '@authmd/protocol';
import { escapeHtml } from '../html.ts';
import { signIns, type UserRow } from '../schema.ts';
import { opaqueValue } from '../secrets.ts';
import { clientSource } from './client-source.ts';
import { codeDigest, codeMatches, newCode } from './codes.ts';
import type { EngineContext } from './context.ts';
import { chargeTiers, limitSentence, rateLimited, waitInWords, type LimitTier } from './rate-limits.ts';
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
  await chargeMailTiers(ctx, ctx.store, 'sign-in-codes', address, clientIp);
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

/** The emails one network asked for (`source`: see `clientSource`), of one kind. */
export function perIpMailKey(kind: MailKind, source: string): string {
  return `${kind}-ip:${source}`;
}

/** The budgets of the emails a client can make the service send. */
export const mailKinds = ['sign-in-codes', 'claim-mail'] as const;
export type MailKind = (typeof mailKinds)[number];

/**
 * Charges one email with a code to `address`, in three tiers, in this order (docs/decisions.md,
 * "Sign-in limits"). Each refusal happens at a tier that is already spent, so it charges nothing
 * beyond that tier and the ones before it:
 * 1. the asking client (an IPv6 client by its /64): no spraying of many inboxes. Counted first, so a
 *    client over its limit writes nothing but this one counter, whatever the addresses it names;
 * 2. this address at this client's request: one client cannot spend the address's whole budget;
 * 3. this address, whoever asks: no mail bombing of one inbox.
 * Tiers 2 and 3 are charged only once every earlier check passed: for a code about to be sent. A
 * send that then fails stays charged (the mail may have gone out; counters cannot be refunded).
 * `kind` keeps the budgets of different emails (sign-in codes, claim codes) apart.
 */
export async function chargeMailTiers(ctx: EngineContext, ops: Pick<StoreOps, 'incrementTiers'>, kind: MailKind, address: string, clientIp: string | undefined): Promise<void> {
  const limits = ctx.config.limits;
  const source = clientIp ? clientSource(clientIp) : undefined;
  // Each refusal says when to try again (Retry-After too) and, for the operator, the option that sets the limit.
  const tier = (key: string, limit: number, what: string, scope: string, option: keyof typeof limits): LimitTier => ({
    key,
    limit,
    windowMs: HOUR,
    option: `limits.${option}`,
    refuse: (retryAfter) => rateLimited(`${what}; try again in ${waitInWords(retryAfter)}. ${limitSentence(limit, scope, `limits.${option}`)}`, retryAfter),
  });
  await chargeTiers(ctx, ops, [
    ...(source === undefined
      ? []
      : [
          tier(perIpMailKey(kind, source), limits.signInCodesPerIpPerHour, 'Too many codes were asked for from your network', 'from one network', 'signInCodesPerIpPerHour'),
          tier(
            `${kind}-from:${JSON.stringify([source, address])}`,
            limits.signInCodesPerAddressAndIpPerHour,
            'Too many codes were sent to this address from your network',
            'to one address from one network',
            'signInCodesPerAddressAndIpPerHour',
          ),
        ]),
    tier(`${kind}:${address}`, limits.signInCodesPerHour, 'Too many codes were sent to this address', 'to one address', 'signInCodesPerHour'),
  ]);
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
