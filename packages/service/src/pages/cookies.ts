import type { EngineContext } from '../engine/context.ts';
import type { HttpRequest } from '../http/env.ts';

export const cookieNames = { session: 'authmd_session', csrf: 'authmd_csrf' } as const;

/** One cookie of the request, or undefined. */
export function readCookie(request: HttpRequest, name: string): string | undefined {
  for (const part of (request.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** A cookie the page scripts can never read (HttpOnly), sent on top-level navigations (SameSite=Lax), Secure over https. */
export function setCookie(name: string, value: string, options: { path: string; maxAgeSeconds: number; secure: boolean }): string {
  const secure = options.secure ? '; Secure' : '';
  return `${name}=${encodeURIComponent(value)}; Path=${options.path}; Max-Age=${options.maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
}

/** Cookies cover the service's own paths: its issuer's path, or the whole site. */
export function cookiePath(ctx: EngineContext): string {
  return ctx.config.issuerPath || '/';
}
