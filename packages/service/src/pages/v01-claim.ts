import { denyV01, openEmailedAttempt, revealV01Code } from '../engine/v01-claim.ts';
import { V01_DENY_PATH, V01_VIEW_PATH, whoAsks } from '../engine/v01-mail.ts';
import type { Endpoint } from '../http/env.ts';
import { readForm } from '../http/request.ts';
import { htmlErrors } from './html-errors.ts';
import { escapeHtml, hidden, servicePage } from './layout.ts';

/**
 * The page the v0.1 claim email links to. Opening it changes nothing (mail scanners open links):
 * it says who is asking, and offers two buttons, a new code to read to the agent, or no. The link
 * token is the credential, carried in the form body (never a cookie), so there is no session to
 * forge requests with.
 */

/** `GET /agent/auth/claim/view?token=…` */
export const getV01View: Endpoint = htmlErrors(async (request, { ctx }) => {
  const token = request.query('token') ?? '';
  const { attempt, registration } = await openEmailedAttempt(ctx, token);
  const scopes = ctx.config.scopes.postClaim.map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`).join('');
  const minutesLeft = Math.max(1, Math.round((attempt.expires_at - ctx.clock()) / 60_000));
  const action = (path: string) => `${ctx.config.issuerPath}${path}`;
  return servicePage(ctx, {
    title: 'An agent asks to act for you',
    body: `<p>An AI agent ${escapeHtml(whoAsks(ctx, registration))} asks to act on <b>${escapeHtml(ctx.config.name)}</b> as <b>${escapeHtml(attempt.login_hint ?? '')}</b>. It would be able to:</p><ul>${scopes}</ul>
<p>If you asked it to, read it the six-digit code from the email. Only do so if you started this from your own agent just now; this request ends in about ${minutesLeft} minutes.</p>
<div class="row">
<form method="post" action="${action(V01_VIEW_PATH)}">${hidden('token', token)}<button type="submit" class="secondary">Show me a new code</button></form>
<form method="post" action="${action(V01_DENY_PATH)}">${hidden('token', token)}<button type="submit">This was not me</button></form>
</div>
<p class="note">A new code replaces the one in the email.</p>`,
  });
});

/** `POST /agent/auth/claim/view` (the button): a new code, shown once. */
export const postV01Reveal: Endpoint = htmlErrors(async (request, { ctx }) => {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  const code = await revealV01Code(ctx, form.token ?? '');
  return servicePage(ctx, {
    title: 'Read this code to your agent',
    body: `<p>Tell your agent this code. It replaces the one in the email.</p><p class="code" data-testid="page-code">${code}</p>
<p class="note">It works for this request only. Do not share it with anyone else.</p>`,
  });
});

/** `POST /agent/auth/claim/deny` */
export const postV01Deny: Endpoint = htmlErrors(async (request, { ctx }) => {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  await denyV01(ctx, form.token ?? '');
  return servicePage(ctx, { title: 'Denied', body: '<p>The agent was told no. It gets no access to your account.</p>' });
});
