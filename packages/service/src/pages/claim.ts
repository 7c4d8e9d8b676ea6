import { ProtocolError } from '@authmd/protocol';
import { authorizeAttempt, confirmByAgentCode, denyAttempt, mayAct, openAttempt, type OpenAttempt } from '../engine/ceremony.ts';
import type { EngineContext } from '../engine/context.ts';
import type { Endpoint, HttpRequest, HttpResponse } from '../http/env.ts';
import { readForm } from '../http/request.ts';
import type { UserRow } from '../schema.ts';
import { checkCsrf, csrfToken } from './csrf.ts';
import { currentUser, signInUrl, signOutForm } from './current-user.ts';
import { errorPage, htmlErrors } from './html-errors.ts';
import { escapeHtml, hidden, redirect, servicePage } from './layout.ts';
import { pagePaths } from './paths.ts';

/**
 * The claim page at verification_uri. A signed-in human sees who is asking (this service, the kind
 * of agent registration, the scopes it will get) and answers: type the code the agent shows (v0.7),
 * or Authorize (the page then shows a code to read back to the agent), or Deny. One of them is the
 * page's primary button (see `answers`).
 */

/** `GET /claim?token=…` */
export const getClaim: Endpoint = htmlErrors(async (request, { ctx }) => {
  const token = request.query('token') ?? '';
  const user = await currentUser(ctx, request);
  if (!user) return redirect(signInUrl(ctx, `${ctx.config.issuerPath}${pagePaths.claim}?token=${encodeURIComponent(token)}`));
  const open = await openAttempt(ctx, token);
  if (!mayAct(open.attempt, user)) return wrongAccount(ctx, request, open, user);
  return claimPage(ctx, request, token, open, user);
});

/** `POST /claim/authorize` (read-back): reveal a code for the user to read to the agent. */
export const postAuthorize: Endpoint = htmlErrors(async (request, { ctx }) => {
  const { form, user } = await signedInForm(ctx, request);
  const code = await authorizeAttempt(ctx, form.token ?? '', user);
  const minutes = Math.round(ctx.config.lifetimes.attemptMs / 60_000);
  return servicePage(ctx, {
    title: 'Read this code to your agent',
    body: `<p>Tell your agent this code. It finishes the link on its side.</p><p class="code" data-testid="page-code">${code}</p>
<p class="note">The code works once and only for this request, within ${minutes} minutes of the link being made. Do not share it with anyone else.</p>`,
  });
});

/** `POST /claim/deny` */
export const postDeny: Endpoint = htmlErrors(async (request, { ctx }) => {
  const { form, user } = await signedInForm(ctx, request);
  await denyAttempt(ctx, form.token ?? '', user);
  return servicePage(ctx, {
    title: 'Denied',
    body: '<p>The agent was told no. It gets no access to your account.</p>',
  });
});

/** `POST /claim/code` (type-in, v0.7): the code the agent shows; a match links the agent at once. */
export const postEnterCode: Endpoint = htmlErrors(async (request, { ctx }) => {
  const { form, user } = await signedInForm(ctx, request);
  const token = form.token ?? '';
  try {
    await confirmByAgentCode(ctx, token, user, (form.code ?? '').trim());
  } catch (error) {
    if (!(error instanceof ProtocolError) || error.code !== 'invalid_user_code') throw error;
    return claimPage(ctx, request, token, await openAttempt(ctx, token), user, error.description, error.status);
  }
  return servicePage(ctx, {
    title: 'Agent linked',
    body: '<p>Done. The agent is now linked to your account and will pick this up by itself; you can close this page.</p>',
  });
});

async function signedInForm(ctx: EngineContext, request: HttpRequest): Promise<{ form: Record<string, string>; user: UserRow }> {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  checkCsrf(ctx, request, form);
  const user = await currentUser(ctx, request);
  if (!user) throw new ProtocolError('unauthorized', 'Your session has ended. Open the link from your agent again and sign in.');
  return { form, user };
}

function claimPage(ctx: EngineContext, request: HttpRequest, token: string, open: OpenAttempt, user: UserRow, error?: string, status = 200): HttpResponse {
  const csrf = csrfToken(ctx, request);
  const fields = `${csrf.field}${hidden('token', token)}`;
  const action = (path: string) => `${ctx.config.issuerPath}${path}`;
  const readBack = ctx.config.dialects.includes('current');
  const typeIn = open.attempt.agent_code_hash !== null;
  const scopes = ctx.config.scopes.postClaim.map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`).join('');
  const minutesLeft = Math.max(1, Math.round((open.attempt.expires_at - ctx.clock()) / 60_000));
  const provider = open.registration.provider_iss ? ctx.trust.get(open.registration.provider_iss)?.displayName : undefined;
  return servicePage(ctx, {
    title: provider ? `Link ${provider} to your account?` : 'Authorize this agent?',
    status,
    csrf,
    body: `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<p>An AI agent ${describeRegistration(ctx, open)} wants to act on <b>${escapeHtml(ctx.config.name)}</b> as <b>${escapeHtml(user.email ?? user.phone ?? user.id)}</b>.</p>
<p>If you authorize it, it can:</p><ul>${scopes}</ul>
<p class="note">Only continue if you started this from your own agent just now. This request ends in about ${minutesLeft} minutes.</p>
${answers(typeIn, readBack, fields, action)}`,
  });
}

/**
 * The page's answers, with exactly one primary (filled) button. When the agent has a code of its own,
 * typing it in is the primary path: that is what the agent, following auth.md, asks its person to do.
 * The read-back is then the alternative for a person without a code, a link-styled button that says
 * so; Deny is a secondary button set apart. Without the agent's code, Authorize (read-back) is primary.
 * Actions, field names and button labels are what drivers and tests use: keep them.
 */
function answers(typeIn: boolean, readBack: boolean, fields: string, action: (path: string) => string): string {
  // Each form opens exactly as `<form method="post" action="…">`, as drivers and tests find them: a class goes on a wrapper.
  const form = (path: string, inner: string) => `<form method="post" action="${action(path)}">${fields}${inner}</form>`;
  const deny = form(pagePaths.deny, '<button type="submit" class="secondary">Deny</button>');
  if (!typeIn) return `<div class="row">${readBack ? form(pagePaths.authorize, '<button type="submit">Authorize</button>') : ''}${deny}</div>`;
  const typeInForm = form(
    pagePaths.enterCode,
    '<p><label for="code">Does your agent show you a six-digit code? Enter it to authorize:</label><br><input id="code" type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="off" required></p><button type="submit">Authorize with this code</button>',
  );
  const readBackForm = readBack
    ? `<div class="alt">${form(
        pagePaths.authorize,
        '<p>No code from your agent? <button type="submit" class="link">Authorize and show me a code</button> instead: this page then shows a code for you to read to your agent.</p>',
      )}</div>`
    : '';
  return `${typeInForm}${readBackForm}<div class="deny">${deny}</div>`;
}

function describeRegistration(ctx: EngineContext, open: OpenAttempt): string {
  const { registration, attempt } = open;
  if (registration.provider_iss) {
    // The trust list's display name, never anything the provider said about itself.
    const provider = escapeHtml(ctx.trust.get(registration.provider_iss)?.displayName ?? registration.provider_iss);
    return `from <b>${provider}</b>, linking your ${provider} account to this one for the first time,`;
  }
  switch (registration.type) {
    case 'anonymous':
      return 'that signed up on its own';
    case 'service_auth':
      return `that asked for ${escapeHtml(attempt.login_hint ?? 'your account')}`;
    default:
      return 'sent by an agent provider';
  }
}

function wrongAccount(ctx: EngineContext, request: HttpRequest, open: OpenAttempt, user: UserRow): HttpResponse {
  const csrf = csrfToken(ctx, request);
  const back = `${ctx.config.issuerPath}${pagePaths.claim}?token=${encodeURIComponent(request.query('token') ?? '')}`;
  const signOut = signOutForm(ctx, csrf.field, back);
  return errorPage(
    ctx,
    403,
    'Not for this account',
    `This request is for ${open.attempt.login_hint}, but you are signed in as ${user.email ?? user.id}. Sign out and sign in with that account.`,
    csrf.setCookie ? { 'Set-Cookie': csrf.setCookie } : {},
    signOut,
  );
}
