import type { EngineContext } from '../engine/context.ts';
import { sessionUser } from '../engine/sessions.ts';
import { userFromHost } from '../engine/users.ts';
import type { HttpRequest } from '../http/env.ts';
import type { UserRow } from '../schema.ts';
import { cookieNames, readCookie } from './cookies.ts';
import { pagePaths } from './paths.ts';

/** Who is signed in: the host application's user (when a hook is set), else the built-in session. */
export async function currentUser(ctx: EngineContext, request: HttpRequest): Promise<UserRow | undefined> {
  const host = await ctx.signIn.authenticateUser?.(request);
  if (host) return userFromHost(ctx, host);
  return sessionUser(ctx, readCookie(request, cookieNames.session));
}

/** Where to send a browser that must sign in first, coming back to `returnTo` (a path of this site). */
export function signInUrl(ctx: EngineContext, returnTo: string): string {
  if (ctx.signIn.loginUrl) return ctx.signIn.loginUrl(ctx.config.issuer + returnTo);
  return `${ctx.config.issuerPath}${pagePaths.login}?return_to=${encodeURIComponent(returnTo)}`;
}

/**
 * Only paths of this site are followed after sign-in. The value is resolved the way a browser
 * resolves it (the URL parser drops tabs and line breaks, so `/<TAB>/evil.example` means
 * `//evil.example`), and kept only when it stays on the service's origin.
 */
export function safeReturnTo(ctx: EngineContext, value: string | undefined, fallback: string): string {
  if (!value || !value.startsWith('/')) return fallback;
  const origin = new URL(ctx.config.issuer).origin;
  const url = URL.canParse(value, origin) ? new URL(value, origin) : undefined;
  if (!url || url.origin !== origin) return fallback;
  return url.pathname + url.search;
}
