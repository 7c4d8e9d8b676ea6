import { describe, expect, it } from 'vitest';
import type { HttpRequest } from '@authmd/service';
import { exchange, servicePerTest } from '../support/harness.ts';
import { Browser, mailbox } from './browser.ts';
import { authorize, completeClaim, jwtPayload, registerServiceAuth } from './flows.ts';

/** `signIn.authenticateUser` and `signIn.loginUrl`: a host application's own sign-in (issue 3, item 3). */

const start = servicePerTest();

/** The host application's "session": a header its reverse proxy sets after its own login. */
async function hostUser(request: HttpRequest) {
  const email = request.header('x-host-user');
  return email ? { id: `host-${email.split('@')[0]}`, email } : undefined;
}

describe('a host application that signs users in itself', () => {
  it('its user is used on the claim page without the built-in login, and the claim binds to them', async () => {
    const { base } = await start({ signIn: { authenticateUser: hostUser } });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base, { 'x-host-user': 'Ada@Example.com' });
    const page = await browser.get(registration.claim.attempt.verification_uri);
    expect(page.status).toBe(200);
    expect(page.html).toContain('ada@example.com');

    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    const done = await completeClaim(base, registration.claim.token, code);
    expect(done.status).toBe(200);
    const claimed = await done.json();
    expect(jwtPayload(claimed.identity.assertion).email).toBe('ada@example.com');
    expect((await exchange(base, claimed.identity.assertion)).status).toBe(200);
    // no built-in sign-in happened: no code was mailed, no session cookie was set
    expect(await mailbox(base)).toEqual([]);
    expect(browser.setCookieLog.some((line) => /session/i.test(line))).toBe(false);
    // and /login just sends a host user back
    const login = await browser.get('/login?return_to=%2Fclaim%3Ftoken%3Dx');
    expect(login.status).toBe(303);
    expect(login.location).toBe('/claim?token=x');
  });

  it('a host user who is not the login_hint gets the 403 page', async () => {
    const { base } = await start({ signIn: { authenticateUser: hostUser } });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base, { 'x-host-user': 'mallory@example.com' });
    expect((await browser.get(registration.claim.attempt.verification_uri)).status).toBe(403);
  });

  it('with loginUrl, a visitor the hook does not know is sent to the host sign-in, which brings them back', async () => {
    const { base } = await start({
      signIn: { authenticateUser: hostUser, loginUrl: (returnTo) => `https://host.example/signin?next=${encodeURIComponent(returnTo)}` },
    });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const uri: string = registration.claim.attempt.verification_uri;
    const visitor = new Browser(base);
    const page = await visitor.get(uri);
    expect(page.status).toBe(303);
    const location = new URL(page.location!);
    expect(location.origin).toBe('https://host.example');
    expect(location.pathname).toBe('/signin');
    const next = location.searchParams.get('next')!;
    expect(next).toBe(uri);
    expect(new URL(next).origin).toBe(base);

    // the host signs them in and sends them to `next`
    const afterHostLogin = new Browser(base, { 'x-host-user': 'ada@example.com' });
    expect((await afterHostLogin.get(next)).status).toBe(200);
  });

  it('without loginUrl, a visitor the hook does not know gets the built-in sign-in, whose session then works', async () => {
    const { base } = await start({ signIn: { authenticateUser: hostUser } });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const visitor = new Browser(base);
    const page = await visitor.get(registration.claim.attempt.verification_uri);
    expect(page.status).toBe(303);
    expect(page.location).toMatch(/^\/login\?return_to=/);
    await visitor.signIn('ada@example.com');
    const code = await authorize(visitor, registration.claim.attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
  });

  it('a host user whose email already has a built-in account is still served (no 500)', async () => {
    const { base } = await start({ signIn: { authenticateUser: hostUser } });
    // Ada signed in with the built-in email code first (say, before the host added its own sign-in).
    await new Browser(base).signIn('ada@example.com');
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base, { 'x-host-user': 'ada@example.com' });
    const page = await browser.get(registration.claim.attempt.verification_uri);
    expect(page.status, page.html.slice(-400)).toBe(200);
    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    const done = await completeClaim(base, registration.claim.token, code);
    expect(done.status).toBe(200);
    expect(jwtPayload((await done.json()).identity.assertion).email).toBe('ada@example.com');
  });
});
