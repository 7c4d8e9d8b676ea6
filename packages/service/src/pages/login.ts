import { ProtocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import { createSession, endSession } from '../engine/sessions.ts';
import { finishSignIn, sendSignInCode } from '../engine/sign-in.ts';
import type { Endpoint, HttpRequest, HttpResponse } from '../http/env.ts';
import { readForm } from '../http/request.ts';
import { cookieNames, cookiePath, readCookie, setCookie } from './cookies.ts';
import { checkCsrf, csrfToken } from './csrf.ts';
import { currentUser, safeReturnTo } from './current-user.ts';
import { htmlErrors } from './html-errors.ts';
import { escapeHtml, hidden, redirect, servicePage } from './layout.ts';
import { pagePaths } from './paths.ts';

/**
 * The built-in passwordless sign-in: email → a six-digit code by mail → a session cookie. Used when
 * the host application does not sign users in itself (`signIn.authenticateUser`).
 */

/** `GET /login?return_to=…`: the email form, or straight back when already signed in. */
export const getLogin: Endpoint = htmlErrors(async (request, { ctx }) => {
  const returnTo = safeReturnTo(ctx, request.query('return_to'), home(ctx));
  if (await currentUser(ctx, request)) return redirect(returnTo);
  return emailForm(ctx, request, returnTo);
});

/** `POST /login`: mail a code and ask for it. */
export const postLogin: Endpoint = htmlErrors(async (request, { ctx }) => {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  checkCsrf(ctx, request, form);
  const returnTo = safeReturnTo(ctx, form.return_to, home(ctx));
  try {
    const signInId = await sendSignInCode(ctx, form.email ?? '', request.clientIp);
    return codeForm(ctx, request, { signInId, email: form.email!.trim(), returnTo });
  } catch (error) {
    if (error instanceof ProtocolError) return emailForm(ctx, request, returnTo, error);
    throw error;
  }
});

/** `POST /login/code`: check the code, start a session, go back where the user came from. */
export const postLoginCode: Endpoint = htmlErrors(async (request, { ctx }) => {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  checkCsrf(ctx, request, form);
  const returnTo = safeReturnTo(ctx, form.return_to, home(ctx));
  try {
    const user = await finishSignIn(ctx, form.sign_in ?? '', (form.code ?? '').trim());
    const session = await createSession(ctx, user.id);
    const cookie = setCookie(cookieNames(ctx).session, session, {
      path: cookiePath(ctx),
      maxAgeSeconds: Math.floor(ctx.config.lifetimes.sessionMs / 1000),
      secure: ctx.config.secureCookies,
    });
    return redirect(returnTo, { 'Set-Cookie': cookie });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    if (error.code === 'invalid_user_code') {
      return codeForm(ctx, request, { signInId: form.sign_in ?? '', email: form.email ?? '', returnTo }, error.description, error.status);
    }
    return emailForm(ctx, request, returnTo, error);
  }
});

/** `POST /logout`: ends the session. */
export const postLogout: Endpoint = htmlErrors(async (request, { ctx }) => {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  checkCsrf(ctx, request, form);
  await endSession(ctx, readCookie(request, cookieNames(ctx).session));
  const cleared = setCookie(cookieNames(ctx).session, '', { path: cookiePath(ctx), maxAgeSeconds: 0, secure: ctx.config.secureCookies });
  return redirect(`${ctx.config.issuerPath}${pagePaths.login}?return_to=${encodeURIComponent(safeReturnTo(ctx, form.return_to, home(ctx)))}`, {
    'Set-Cookie': cleared,
  });
});

/** The email step; after a refusal, with its sentence, its status and its headers (a 429's Retry-After). */
function emailForm(ctx: EngineContext, request: HttpRequest, returnTo: string, error?: ProtocolError): HttpResponse {
  const csrf = csrfToken(ctx, request);
  return servicePage(ctx, {
    title: 'Sign in',
    status: error?.status ?? 200,
    headers: error?.headers,
    csrf,
    body: `${error ? `<p class="error">${escapeHtml(error.description)}</p>` : ''}
<p>Enter your email address. We will send you a six-digit code; no password needed.</p>
<form method="post" action="${ctx.config.issuerPath}${pagePaths.login}">${csrf.field}${hidden('return_to', returnTo)}
<p><label for="email">Email</label><br><input id="email" type="email" name="email" autocomplete="email" required autofocus></p>
<button type="submit">Send me a code</button></form>`,
  });
}

function codeForm(
  ctx: EngineContext,
  request: HttpRequest,
  state: { signInId: string; email: string; returnTo: string },
  error?: string,
  status = 200,
): HttpResponse {
  const csrf = csrfToken(ctx, request);
  return servicePage(ctx, {
    title: 'Check your email',
    status,
    csrf,
    body: `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<p>We sent a six-digit code to <b>${escapeHtml(state.email)}</b>. Enter it here.</p>
<form method="post" action="${ctx.config.issuerPath}${pagePaths.loginCode}">${csrf.field}${hidden('sign_in', state.signInId)}${hidden('email', state.email)}${hidden('return_to', state.returnTo)}
<p><label for="code">Code</label><br><input id="code" type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus></p>
<button type="submit">Sign in</button></form>`,
  });
}


function home(ctx: EngineContext): string {
  return `${ctx.config.issuerPath}/`;
}
