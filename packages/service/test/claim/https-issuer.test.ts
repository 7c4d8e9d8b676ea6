import { describe, expect, it } from 'vitest';
import { issuerServerPerTest } from '../support/issuer-server.ts';
import { Browser, field, type Cookie } from './browser.ts';

/**
 * What an https issuer changes on the pages (issue 10): `__Host-` cookie names (Secure, Path=/, no
 * Domain, so no sibling subdomain and no other path can set or shadow them) and
 * `Strict-Transport-Security` on every answer. An http issuer keeps the plain names and sends no HSTS.
 * The services listen on 127.0.0.1 over plain HTTP; the issuer alone decides.
 */

const start = issuerServerPerTest();

const HSTS = 'max-age=31536000';

function attributeNames(cookie: Cookie): string[] {
  return Object.keys(cookie.attributes);
}

/**
 * Signs in through the pages and returns the browser (its cookie jar holds what the service set) and
 * the CSRF form value of the sign-in form, which stays valid with the browser's CSRF cookie.
 */
async function signedIn(base: string, prefix = ''): Promise<Browser & { csrf: string }> {
  const browser = new Browser(base);
  const form = await browser.get(`${prefix}/login`);
  expect(form.status).toBe(200);
  const csrf = field(form.html, 'csrf');
  const codeForm = await browser.submit(form, `${prefix}/login`, { email: 'ada@example.com' });
  expect(codeForm.status).toBe(200);
  const messages = (await (await fetch(`${base}${prefix}/dev/mailbox.json`)).json()).messages as { subject: string }[];
  const code = /\b(\d{6})\b/.exec(messages[0]!.subject)![1]!;
  const done = await browser.submit(codeForm, `${prefix}/login/code`, { code });
  expect(done.status).toBe(303);
  return Object.assign(browser, { csrf });
}

describe('cookie names and attributes by issuer scheme', () => {
  it('an https issuer sets __Host- cookies (Secure, Path=/, no Domain) and reads them back; an http issuer keeps the plain names', async () => {
    const http = await signedIn((await start((listening) => listening)).base);
    expect([...http.cookies.keys()].sort()).toEqual(['authmd_csrf', 'authmd_session']);
    for (const cookie of http.cookies.values()) {
      expect(attributeNames(cookie), cookie.raw).not.toContain('secure');
      expect(cookie.attributes.path, cookie.raw).toBe('/');
    }

    const { base } = await start((listening) => listening.replace('http:', 'https:'));
    const browser = await signedIn(base);
    expect([...browser.cookies.keys()].sort()).toEqual(['__Host-authmd_csrf', '__Host-authmd_session']);
    for (const line of browser.setCookieLog) expect(line).toMatch(/^__Host-authmd_(csrf|session)=/);
    for (const cookie of browser.cookies.values()) {
      expect(attributeNames(cookie), cookie.raw).toContain('secure');
      expect(cookie.attributes.path, cookie.raw).toBe('/');
      expect(attributeNames(cookie), cookie.raw).not.toContain('domain');
      expect(attributeNames(cookie), cookie.raw).toContain('httponly');
      expect(String(cookie.attributes.samesite).toLowerCase(), cookie.raw).toBe('lax');
    }
    // the prefixed session is the one read: a signed-in browser at /login goes straight on
    expect((await browser.get('/login')).status).toBe(303);
    // the plain name is not read at all on an https issuer
    const session = browser.cookie('__Host-authmd_session')!.value;
    const plain = await fetch(`${base}/login`, { headers: { cookie: `authmd_session=${session}` }, redirect: 'manual' });
    expect(plain.status).toBe(200);
  });

  it('an https issuer with a path still uses __Host- with Path=/; an http one keeps its cookies on that path', async () => {
    const http = await signedIn((await start((listening) => `${listening}/auth`)).base, '/auth');
    expect([...http.cookies.keys()].sort()).toEqual(['authmd_csrf', 'authmd_session']);
    for (const cookie of http.cookies.values()) expect(cookie.attributes.path, cookie.raw).toBe('/auth');

    const { base } = await start((listening) => `${listening.replace('http:', 'https:')}/auth`);
    const browser = await signedIn(base, '/auth');
    expect([...browser.cookies.keys()].sort()).toEqual(['__Host-authmd_csrf', '__Host-authmd_session']);
    for (const cookie of browser.cookies.values()) {
      expect(cookie.attributes.path, cookie.raw).toBe('/');
      expect(attributeNames(cookie), cookie.raw).toContain('secure');
    }
    expect((await browser.get('/auth/login')).status).toBe(303);
  });

  it('signing out on an https issuer clears the __Host- session cookie', async () => {
    const { base } = await start((listening) => listening.replace('http:', 'https:'));
    const browser = await signedIn(base);
    const out = await browser.post('/logout', { csrf: browser.csrf });
    expect(out.status).toBe(303);
    const cleared = out.response.headers.getSetCookie();
    expect(cleared).toHaveLength(1);
    expect(cleared[0]).toMatch(/^__Host-authmd_session=; Path=\/; Max-Age=0;.*; Secure$/);
    expect((await browser.get('/login')).status).toBe(200);
  });
});

/** One request of each kind the service answers: pages, redirects, discovery, JSON errors, 404, 405. */
const requests: { what: string; path: string; init?: RequestInit }[] = [
  { what: 'the sign-in page', path: '/login' },
  { what: 'a page redirect', path: '/claim?token=x' },
  { what: 'a page refusal', path: '/logout', init: { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' } },
  { what: 'auth.md', path: '/auth.md' },
  { what: 'authorization server metadata', path: '/.well-known/oauth-authorization-server' },
  { what: 'the JWKS', path: '/.well-known/jwks.json' },
  { what: 'a registration', path: '/agent/identity', init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' } },
  { what: 'a JSON refusal', path: '/oauth2/token', init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' } },
  { what: 'a 405', path: '/agent/identity' },
  { what: 'a 404', path: '/nothing-here' },
  { what: 'the dev mailbox', path: '/dev/mailbox.json' },
];

describe('Strict-Transport-Security', () => {
  it(`is ${HSTS} on every answer when the issuer is https, and never sent when it is http`, async () => {
    const http = await start((listening) => listening);
    const https = await start((listening) => listening.replace('http:', 'https:'));
    for (const { what, path, init } of requests) {
      const plain = await fetch(http.base + path, { ...init, redirect: 'manual' });
      await plain.text();
      expect(plain.headers.get('strict-transport-security'), `http issuer, ${what}: ${plain.status}`).toBeNull();

      const secure = await fetch(https.base + path, { ...init, redirect: 'manual' });
      await secure.text();
      expect(secure.headers.get('strict-transport-security'), `https issuer, ${what}: ${secure.status}`).toBe(HSTS);
    }
  });
});
