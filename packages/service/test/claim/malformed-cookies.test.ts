import { describe, expect, it } from 'vitest';
import { postForm, servicePerTest } from '../support/harness.ts';
import { Browser } from './browser.ts';

/**
 * Cookies that are not valid percent-encoding (issue 10): `Cookie: authmd_session=%` once made every
 * page answer 500, because decoding threw. An undecodable cookie now counts as absent, on every page
 * and for both the session and the CSRF cookie.
 */

const start = servicePerTest();

const undecodable = ['%', '%zz', '%E0%A4%A'];

/** Every page route, with a body for the forms (a CSRF value that cannot match: the cookie is bad). */
const pages: { method: 'GET' | 'POST'; path: string; form?: Record<string, string> }[] = [
  { method: 'GET', path: '/login' },
  { method: 'GET', path: '/login?return_to=%2Fclaim%3Ftoken%3Dx' },
  { method: 'POST', path: '/login', form: { csrf: 'x', email: 'ada@example.com' } },
  { method: 'POST', path: '/login/code', form: { csrf: 'x', sign_in: 'x', code: '123456' } },
  { method: 'POST', path: '/logout', form: { csrf: 'x', return_to: '/claim?token=x' } },
  { method: 'GET', path: '/claim?token=x' },
  { method: 'POST', path: '/claim/authorize', form: { csrf: 'x', token: 'x' } },
  { method: 'POST', path: '/claim/deny', form: { csrf: 'x', token: 'x' } },
  { method: 'POST', path: '/claim/code', form: { csrf: 'x', token: 'x', code: '123456' } },
  { method: 'GET', path: '/dev/mailbox' },
  { method: 'GET', path: '/dev/mailbox.json' },
];

describe('undecodable cookies', () => {
  it.each(undecodable)('no page answers 5xx with session or CSRF cookie %j', async (value) => {
    const { base } = await start();
    const cookies = [`authmd_session=${value}`, `authmd_csrf=${value}`, `authmd_session=${value}; authmd_csrf=${value}`, `other=1; authmd_csrf=${value}; x=%`];
    for (const cookie of cookies) {
      for (const { method, path, form } of pages) {
        const response =
          method === 'GET' ? await fetch(base + path, { headers: { cookie }, redirect: 'manual' }) : await postForm(base + path, form!, { cookie });
        const what = `${method} ${path} with Cookie: ${cookie}`;
        expect(response.status, what).toBeLessThan(500);
        await response.text();
      }
    }
  });

  it('an undecodable session cookie is a visitor who is not signed in', async () => {
    const { base } = await start();
    const claim = await fetch(`${base}/claim?token=x`, { headers: { cookie: 'authmd_session=%' }, redirect: 'manual' });
    expect(claim.status).toBe(303);
    expect(claim.headers.get('location')).toBe(`/login?return_to=${encodeURIComponent('/claim?token=x')}`);
    const login = await fetch(`${base}/login`, { headers: { cookie: 'authmd_session=%' } });
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('Send me a code');
  });

  it('an undecodable CSRF cookie is replaced by a new one, and a form posted with it is refused with 400', async () => {
    const { base } = await start();
    const login = await fetch(`${base}/login`, { headers: { cookie: 'authmd_csrf=%E0%A4%A' } });
    expect(login.status).toBe(200);
    expect(login.headers.getSetCookie().join('\n')).toMatch(/^authmd_csrf=[^%;]+;/m);
    const posted = await postForm(`${base}/login`, { csrf: 'x', email: 'ada@example.com' }, { cookie: 'authmd_csrf=%E0%A4%A' });
    expect(posted.status).toBe(400);
    expect(posted.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('a later cookie of the same name is read when the first cannot be decoded', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const session = browser.cookie('authmd_session')!.value;
    const page = await browser.get('/login', { cookie: `authmd_session=%; authmd_session=${session}` });
    expect(page.status).toBe(303);
  });
});
