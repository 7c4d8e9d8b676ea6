import { describe, expect, it } from 'vitest';
import { redirect } from '../../src/pages/layout.ts';
import { servicePerTest } from '../support/harness.ts';
import { issuerServerPerTest } from '../support/issuer-server.ts';
import { Browser, latestCode } from './browser.ts';

/**
 * `return_to` after sign-in (issue 3, item 3): only this site's own paths are followed. The check is
 * what a browser does with the Location header: resolve it with the WHATWG URL parser against the
 * page's URL (which also drops tabs and newlines anywhere in it) and compare origins. Issue 10 adds
 * paths that the parser normalises into `//host` (dot segments, `%2e`, backslashes) and the issuer path.
 */

const start = servicePerTest();

const hostile = [
  '//evil.example',
  '//evil.example/claim',
  'https://evil.example',
  'https://evil.example/claim?token=x',
  '/\\evil.example',
  '\\\\evil.example',
  '\\/evil.example',
  'http:evil.example',
  'javascript:alert(1)',
  '/\t/evil.example',
  '/\t\\evil.example',
  '\t//evil.example',
  ' //evil.example',
];

/**
 * Paths of this site that a browser normalises into `//evil.example/x` (issue 10): dot segments,
 * percent-encoded dots, backslashes, and tabs or line breaks, which the URL parser drops.
 */
const normalisedAway = [
  '/.//evil.example/x',
  '/..//evil.example/x',
  '/%2e//evil.example/x',
  '/%2E%2e//evil.example/x',
  '/./\\evil.example/x',
  '/.\\/evil.example/x',
  '/a/..//evil.example/x',
  '/a/%2e%2e//evil.example/x',
  '/./.././/evil.example/x',
  '/.\t//evil.example/x',
  '/%2e/\\evil.example/x',
];

/** Where a browser goes when it follows this Location from `base`. */
function followedOrigin(location: string | null, base: string): string {
  expect(location).not.toBeNull();
  return new URL(location!, `${base}/login/code`).origin;
}

/** Location is a path of this site: one slash, then anything but a slash or backslash. */
function expectSitePath(location: string | null): void {
  expect(location).toMatch(/^\/(?![/\\])/);
  expect(location).not.toMatch(/[\t\r\n]/);
}

const startWithIssuer = issuerServerPerTest();

describe('redirect()', () => {
  it.each(['//evil.example/x', '/\\evil.example/x', '\\\\evil.example', '/\t/evil.example', '\t//evil.example', ' //evil.example'])(
    'refuses a protocol-relative Location: %j',
    (location) => {
      expect(() => redirect(location)).toThrow(/protocol-relative/);
    },
  );

  it('sends a path or an absolute URL on', () => {
    expect(redirect('/claim?token=a').headers.Location).toBe('/claim?token=a');
    expect(redirect('https://host.example/signin?next=x').headers.Location).toBe('https://host.example/signin?next=x');
  });
});

describe('return_to', () => {
  it.each(hostile)('is not followed to another site after the code step: %j', async (returnTo) => {
    const { base } = await start();
    const browser = new Browser(base);
    const done = await browser.signIn('ada@example.com', { returnTo });
    expect(done.status).toBe(303);
    expect(followedOrigin(done.location, base)).toBe(new URL(base).origin);
  });

  it.each([...hostile, ...normalisedAway])('is not followed to another site by GET /login when already signed in: %j', async (returnTo) => {
    const { base } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const page = await browser.get(`/login?return_to=${encodeURIComponent(returnTo)}`);
    expect(page.status).toBe(303);
    expectSitePath(page.location);
    expect(followedOrigin(page.location, base)).toBe(new URL(base).origin);
  });

  it.each(normalisedAway)('a path that normalises to //host is not followed by POST /login/code: %j', async (returnTo) => {
    const { base } = await start();
    const browser = new Browser(base);
    const form = await browser.get(`/login?return_to=${encodeURIComponent(returnTo)}`);
    const codeForm = await browser.submit(form, '/login', { email: 'ada@example.com' });
    expect(codeForm.status).toBe(200);
    // The form as posted by anyone holding the CSRF pair: return_to straight from the request.
    const done = await browser.submit(codeForm, '/login/code', { code: await latestCode(base, 'ada@example.com'), return_to: returnTo });
    expect(done.status).toBe(303);
    expectSitePath(done.location);
    expect(followedOrigin(done.location, base)).toBe(new URL(base).origin);
    // and the session works: the browser really signed in
    expect((await browser.get('/login')).status).toBe(303);
  });

  it('the sign-in form never carries a return_to that normalises to //host', async () => {
    const { base } = await start();
    const form = await new Browser(base).get(`/login?return_to=${encodeURIComponent('/.//evil.example/x')}`);
    expect(form.status).toBe(200);
    expect(form.html).not.toContain('value="//');
  });

  it('stays under the issuer path when the service is mounted below one', async () => {
    const { base, issuer } = await startWithIssuer((listening) => `${listening}/auth`);
    const browser = new Browser(base);
    const form = await browser.get(`/auth/login?return_to=${encodeURIComponent('/auth/claim?token=abc')}`);
    const codeForm = await browser.submit(form, '/auth/login', { email: 'ada@example.com' });
    const done = await browser.submit(codeForm, '/auth/login/code', { code: await latestCode(issuer, 'ada@example.com') });
    expect(done.location).toBe('/auth/claim?token=abc');
    for (const outside of ['/other', '/', '/authx', '/auth/../other', '/auth/%2e%2e/other', '/auth/..//evil.example/x']) {
      const page = await browser.get(`/auth/login?return_to=${encodeURIComponent(outside)}`);
      expect(page.status, outside).toBe(303);
      expect(page.location, outside).toBe('/auth/');
    }
  });

  it('is followed for a path of this site, query included', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const done = await browser.signIn('ada@example.com', { returnTo: '/claim?token=abc&x=1' });
    expect(done.location).toBe('/claim?token=abc&x=1');
  });

  it.each(['/\r\n/evil.example', '/\n/evil.example', '/x\r\nSet-Cookie: a=b'])(
    'a line break in return_to is answered (no header injection, no crash): %j',
    async (returnTo) => {
      const { base } = await start();
      const browser = new Browser(base);
      await browser.signIn('ada@example.com');
      const page = await browser.request(`/login?return_to=${encodeURIComponent(returnTo)}`, { signal: AbortSignal.timeout(3000) });
      expect([303, 400]).toContain(page.status);
      if (page.status === 303) expect(followedOrigin(page.location, base)).toBe(new URL(base).origin);
      expect(page.response.headers.getSetCookie().join()).not.toContain('a=b');
      // the service still answers afterwards
      expect((await fetch(`${base}/login`)).status).toBe(200);
    },
  );
});
