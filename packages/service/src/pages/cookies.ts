import type { EngineContext } from '../engine/context.ts';
import type { HttpRequest } from '../http/env.ts';

/**
 * The pages' cookies. When the issuer is https their names carry the `__Host-` prefix: the browser
 * then accepts them only with Secure, Path=/ and no Domain, so neither a sibling subdomain nor a
 * plain-http page of the same host can set or shadow them (cookie tossing, session fixation). An
 * http issuer (local development) keeps the plain names, which need none of that.
 */
export function cookieNames(ctx: EngineContext): { session: string; csrf: string } {
  const prefix = ctx.config.secureCookies ? '__Host-' : '';
  return { session: `${prefix}authmd_session`, csrf: `${prefix}authmd_csrf` };
}

/**
 * One cookie of the request, or undefined. A value that is not valid percent-encoding counts as
 * absent (it was not set by this service); a later cookie of the same name is read instead.
 */
export function readCookie(request: HttpRequest, name: string): string | undefined {
  for (const part of (request.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        // undecodable: skip it
      }
    }
  }
  return undefined;
}

/** A cookie the page scripts can never read (HttpOnly), sent on top-level navigations (SameSite=Lax), Secure over https. */
export function setCookie(name: string, value: string, options: { path: string; maxAgeSeconds: number; secure: boolean }): string {
  if (name.startsWith('__Host-') && (!options.secure || options.path !== '/')) {
    throw new Error(`${name}: a __Host- cookie needs Secure and Path=/`);
  }
  const secure = options.secure ? '; Secure' : '';
  return `${name}=${encodeURIComponent(value)}; Path=${options.path}; Max-Age=${options.maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
}

/**
 * Cookies cover the service's own paths: the issuer's path, or the whole site. An https issuer's
 * `__Host-` cookies must have Path=/, whatever the issuer's path (see docs/decisions.md).
 */
export function cookiePath(ctx: EngineContext): string {
  if (ctx.config.secureCookies) return '/';
  return ctx.config.issuerPath || '/';
}
