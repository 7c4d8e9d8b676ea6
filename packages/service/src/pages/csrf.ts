import { protocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import type { HttpRequest } from '../http/env.ts';
import { constantTimeEqual, keyedDigest, opaqueValue } from '../secrets.ts';
import { cookieNames, cookiePath, readCookie, setCookie } from './cookies.ts';
import { hidden } from './layout.ts';

/**
 * CSRF protection for every form: a random value in an HttpOnly cookie, and in the form an HMAC of
 * it under the service secret. A foreign site can make the browser send the cookie but can neither
 * read it nor compute the matching form value.
 */
export interface CsrfToken {
  /** The hidden field to put in the form. */
  field: string;
  /** Set-Cookie to send when the browser had no CSRF cookie yet. */
  setCookie?: string;
}

export function csrfToken(ctx: EngineContext, request: HttpRequest): CsrfToken {
  let value = readCookie(request, cookieNames(ctx).csrf);
  let cookie: string | undefined;
  if (!value) {
    value = opaqueValue(ctx.random, '', 24);
    cookie = setCookie(cookieNames(ctx).csrf, value, { path: cookiePath(ctx), maxAgeSeconds: 86_400, secure: ctx.config.secureCookies });
  }
  return { field: hidden('csrf', keyedDigest(ctx.secret, 'csrf', value)), setCookie: cookie };
}

export function checkCsrf(ctx: EngineContext, request: HttpRequest, form: Record<string, string>): void {
  const value = readCookie(request, cookieNames(ctx).csrf);
  const sent = form.csrf;
  if (!value || !sent || !constantTimeEqual(keyedDigest(ctx.secret, 'csrf', value), sent)) {
    throw protocolError('invalid_request', 'This form has expired or did not come from this site. Go back, reload the page and try again.');
  }
}
