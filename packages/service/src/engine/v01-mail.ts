import type { StoreOps } from '@authmd/core/store';
import { protocolError } from '@authmd/protocol';
import { escapeHtml } from '../html.ts';
import type { RegistrationRow } from '../schema.ts';
import type { EngineContext } from './context.ts';
import { chargeMailTiers } from './sign-in.ts';

/** Where the emailed link goes (v0.1): the person sees who asks, and can reveal a new code or deny. */
export const V01_VIEW_PATH = '/agent/auth/claim/view';
export const V01_DENY_PATH = '/agent/auth/claim/deny';

/**
 * Before a claim email is made: the sign-in codes' three budgets (per client, per client and
 * address, per address), kept apart from theirs, so registrations cannot flood an inbox and one
 * client cannot spend an address's whole budget.
 */
export function chargeClaimEmail(ctx: EngineContext, tx: StoreOps, email: string, clientIp: string | undefined): Promise<void> {
  return chargeMailTiers(ctx, tx, 'claim-mail', email, clientIp);
}

/**
 * The v0.1 claim email: the code itself, so that the person can finish from the email alone by
 * reading it to the agent, and a link to see who is asking or to say no. Sent after the attempt
 * committed; a send that fails is a 503 the agent may retry by asking for a new attempt.
 */
export async function sendClaimEmail(
  ctx: EngineContext,
  message: { to: string; code: string; attemptToken: string; registration: Pick<RegistrationRow, 'type' | 'provider_iss'> },
): Promise<void> {
  const service = ctx.config.name;
  const link = `${ctx.config.issuer}${V01_VIEW_PATH}?token=${encodeURIComponent(message.attemptToken)}`;
  const minutes = Math.round(ctx.config.lifetimes.attemptMs / 60_000);
  const scopes = ctx.config.scopes.postClaim.join(', ');
  const who = whoAsks(ctx, message.registration);
  const text = [
    `An AI agent ${who} asks to act for you (${message.to}) on ${service}, with these permissions: ${scopes}.`,
    '',
    `If you asked it to, read this code to your agent: ${message.code}`,
    '',
    `The code works for ${minutes} minutes, for this request only. To see who is asking, or to say no: ${link}`,
    '',
    'If you did not ask for this, ignore this email: nothing happens without the code.',
    '',
  ].join('\n');
  const html = `<p>An AI agent ${escapeHtml(who)} asks to act for you (<b>${escapeHtml(message.to)}</b>) on <b>${escapeHtml(service)}</b>, with these permissions: ${escapeHtml(scopes)}.</p>
<p>If you asked it to, read this code to your agent:</p><p style="font-size:28px;letter-spacing:4px"><b>${message.code}</b></p>
<p>The code works for ${minutes} minutes, for this request only. <a href="${escapeHtml(link)}">See who is asking, or say no</a>.</p>
<p>If you did not ask for this, ignore this email: nothing happens without the code.</p>`;
  await ctx.mailer.send({ to: message.to, subject: `Your code to let an agent use ${service}: ${message.code}`, text, html }).catch((error: unknown) => {
    ctx.logger.error('sending a claim email failed', { error: String(error) });
    throw protocolError('temporarily_unavailable', 'The claim email could not be sent right now.', { headers: { 'Retry-After': '60' }, extra: { retry_after: 60 } });
  });
}

/** Who is asking, in words for the person (a provider by the trust list's name, never its own). */
export function whoAsks(ctx: EngineContext, registration: Pick<RegistrationRow, 'type' | 'provider_iss'>): string {
  if (registration.provider_iss) return `from ${ctx.trust.get(registration.provider_iss)?.displayName ?? registration.provider_iss}`;
  return registration.type === 'anonymous' ? 'that signed up on its own' : 'that gave your email address';
}
