import { describe, expect, it } from 'vitest';
import { servicePerTest } from '../support/harness.ts';
import { Browser } from './browser.ts';

/**
 * `return_to` after sign-in (issue 3, item 3): only this site's own paths are followed. The check is
 * what a browser does with the Location header: resolve it with the WHATWG URL parser against the
 * page's URL (which also drops tabs and newlines anywhere in it) and compare origins.
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

/** Where a browser goes when it follows this Location from `base`. */
function followedOrigin(location: string | null, base: string): string {
  expect(location).not.toBeNull();
  return new URL(location!, `${base}/login/code`).origin;
}

describe('return_to', () => {
  it.each(hostile)('is not followed to another site after the code step: %j', async (returnTo) => {
    const { base } = await start();
    const browser = new Browser(base);
    const done = await browser.signIn('ada@example.com', { returnTo });
    expect(done.status).toBe(303);
    expect(followedOrigin(done.location, base)).toBe(new URL(base).origin);
  });

  it.each(hostile)('is not followed to another site by GET /login when already signed in: %j', async (returnTo) => {
    const { base } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const page = await browser.get(`/login?return_to=${encodeURIComponent(returnTo)}`);
    expect(page.status).toBe(303);
    expect(followedOrigin(page.location, base)).toBe(new URL(base).origin);
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
