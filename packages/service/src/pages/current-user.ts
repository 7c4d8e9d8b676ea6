import type { EngineContext } from '../engine/context.ts';
import { sessionUser } from '../engine/sessions.ts';
import { userFromHost } from '../engine/users.ts';
import type { HttpRequest } from '../http/env.ts';
import type { UserRow } from '../schema.ts';
import { cookieNames, readCookie } from './cookies.ts';
import { escapeHtml, hidden, isProtocolRelative } from './layout.ts';
import { pagePaths } from './paths.ts';

/** Who is signed in: the host application's user (when a hook is set), else the built-in session. */
export async function currentUser(ctx: EngineContext, request: HttpRequest): Promise<UserRow | undefined> {
  const host = await ctx.signIn.authenticateUser?.(request);
  if (host) return userFromHost(ctx, host);
  return sessionUser(ctx, readCookie(request, cookieNames(ctx).session));
}

/** Where to send a browser that must sign in first, coming back to `returnTo` (a path of this site). */
export function signInUrl(ctx: EngineContext, returnTo: string): string {
  if (ctx.signIn.loginUrl) return ctx.signIn.loginUrl(ctx.config.issuer + returnTo);
  return `${ctx.config.issuerPath}${pagePaths.login}?return_to=${encodeURIComponent(returnTo)}`;
}

/**
 * The form that signs the browser out and sends it back to `returnTo` (a path of this site). `lead`
 * is HTML already escaped, shown before the button.
 */
export function signOutForm(
  ctx: EngineContext,
  csrfField: string,
  returnTo: string,
  options: { lead?: string; formClass?: string; buttonClass?: string } = {},
): string {
  const formClass = options.formClass ? ` class="${options.formClass}"` : '';
  const buttonClass = options.buttonClass ? ` class="${options.buttonClass}"` : '';
  return `<form method="post"${formClass} action="${escapeHtml(ctx.config.issuerPath + pagePaths.logout)}">${csrfField}${hidden('return_to', returnTo)}${options.lead ?? ''}<button type="submit"${buttonClass}>Sign out</button></form>`;
}

/**
 * Only paths of this service are followed after sign-in. The value is resolved the way a browser
 * resolves it, with the WHATWG URL parser against the issuer (it drops tabs and line breaks, reads
 * backslashes as slashes, and removes dot segments, `%2e` included), and kept only when it stays on
 * the issuer's origin and under the issuer's path. What is returned is the normalised path and query:
 * `/.//evil.example` normalises to `//evil.example`, which a browser reads as another host, so a
 * result starting with two slashes is refused as well. Anything refused becomes `fallback`.
 */
export function safeReturnTo(ctx: EngineContext, value: string | undefined, fallback: string): string {
  if (!value || !value.startsWith('/')) return fallback;
  const issuer = new URL(ctx.config.issuer);
  const url = URL.canParse(value, issuer) ? new URL(value, issuer) : undefined;
  if (!url || url.origin !== issuer.origin) return fallback;
  const prefix = ctx.config.issuerPath;
  if (prefix && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return fallback;
  const target = url.pathname + url.search;
  return isProtocolRelative(target) ? fallback : target;
}
