import { describe, expect, it } from 'vitest';
import { createMemoryStore, createService, silentLogger } from '@authmd/service';
import { servicePerTest } from '../support/harness.ts';
import { Browser, field, latestCode, mailbox, parseForms, type Page } from './browser.ts';
import { MINUTE, registerServiceAuth, wrongCode } from './flows.ts';

/** The built-in passwordless sign-in at /login (issue 3, item 3). */

const start = servicePerTest();

/** Email step only: returns the code form page. */
async function askForCode(browser: Browser, email: string, returnTo = '/'): Promise<Page> {
  const form = await browser.get(`/login?return_to=${encodeURIComponent(returnTo)}`);
  expect(form.status).toBe(200);
  return browser.submit(form, '/login', { email });
}

/** Whether the browser is signed in: the claim page of a fresh registration answers 200 instead of redirecting. */
async function isSignedIn(browser: Browser, base: string, email: string): Promise<boolean> {
  const registration = await registerServiceAuth(base, email);
  const page = await browser.get(registration.claim.attempt.verification_uri);
  if (page.status === 200) return true;
  expect(page.status).toBe(303);
  expect(page.location).toMatch(/^\/login\?return_to=/);
  return false;
}

describe('email sign-in', () => {
  it('email → a six-digit code by mail → a session cookie (HttpOnly, SameSite=Lax, not Secure on http)', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const codeForm = await askForCode(browser, 'Ada@Example.com', '/claim?token=abc');
    expect(codeForm.status).toBe(200);
    expect(parseForms(codeForm.html).map((f) => f.action)).toContain('/login/code');
    expect(codeForm.html).toContain('Ada@Example.com');

    const messages = await mailbox(base);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.to).toBe('ada@example.com');
    const code = /\b(\d{6})\b/.exec(messages[0]!.subject)![1]!;
    expect(messages[0]!.text).toContain(code);

    const signedIn = await browser.submit(codeForm, '/login/code', { code });
    expect(signedIn.status).toBe(303);
    expect(signedIn.location).toBe('/claim?token=abc');
    const sessionLines = signedIn.response.headers.getSetCookie();
    expect(sessionLines).toHaveLength(1);
    const [pair, ...attributes] = sessionLines[0]!.split(';').map((part) => part.trim());
    expect(pair).toMatch(/^[A-Za-z_]+=.{20,}$/);
    const names = attributes.map((a) => a.split('=')[0]!.toLowerCase());
    expect(names).toContain('httponly');
    expect(attributes.map((a) => a.toLowerCase())).toContain('samesite=lax');
    expect(attributes.map((a) => a.toLowerCase())).toContain('path=/');
    expect(names).not.toContain('secure');
    expect(names).not.toContain('domain');
    // every cookie the pages set has the same protections (the CSRF cookie too)
    for (const line of browser.setCookieLog) {
      expect(line).toMatch(/;\s*HttpOnly/i);
      expect(line).toMatch(/;\s*SameSite=Lax/i);
      expect(line).not.toMatch(/;\s*Secure/i);
    }
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(true);
  });

  it('marks every cookie Secure when the issuer is https', async () => {
    const service = await createService({
      issuer: 'https://auth.example',
      scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
      store: createMemoryStore(),
      logger: silentLogger,
      maintenanceIntervalSeconds: 0,
      mail: { outbox: true },
    });
    try {
      const browser = new Browser('https://auth.example', {}, (url, init) => service.handler(new Request(url, init), { clientIp: '192.0.2.1' }));
      const done = await browser.signIn('ada@example.com');
      expect(done.status).toBe(303);
      expect(browser.setCookieLog.length).toBeGreaterThanOrEqual(2);
      for (const line of browser.setCookieLog) {
        expect(line).toMatch(/;\s*Secure/i);
        expect(line).toMatch(/;\s*HttpOnly/i);
        expect(line).toMatch(/;\s*SameSite=Lax/i);
      }
    } finally {
      await service.close();
    }
  });

  it('a wrong code shows the code form again with an error, and no session', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const codeForm = await askForCode(browser, 'ada@example.com');
    const code = await latestCode(base, 'ada@example.com');
    const wrong = await browser.submit(codeForm, '/login/code', { code: wrongCode(code) });
    expect(wrong.status).toBe(401);
    expect(wrong.response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(wrong.html).toContain('class="error"');
    expect(parseForms(wrong.html).map((f) => f.action)).toContain('/login/code');
    expect(wrong.response.headers.getSetCookie().join()).not.toMatch(/session/i);
    // the right code still works (one wrong try is within the budget)
    expect((await browser.submit(wrong, '/login/code', { code })).status).toBe(303);
  });

  it('the 6th try on one sign-in is refused even with the right code', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    let page = await askForCode(browser, 'ada@example.com');
    const code = await latestCode(base, 'ada@example.com');
    for (let i = 0; i < 5; i++) {
      page = await browser.submit(page, '/login/code', { code: wrongCode(code) });
      expect(page.status, `wrong try ${i + 1}`).toBe(401);
    }
    const sixth = await browser.submit(page, '/login/code', { code });
    expect(sixth.status).toBe(429);
    expect(sixth.response.headers.getSetCookie()).toEqual([]);
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(false);
    // and the sign-in is dead for good, not just for a moment
    const seventh = await browser.submit(page, '/login/code', { code });
    expect(seventh.status).not.toBe(303);
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(false);
  });

  it('a code is single-use: a second browser replaying the same form gets no session', async () => {
    const { base } = await start();
    const first = new Browser(base);
    const codeForm = await askForCode(first, 'ada@example.com');
    const code = await latestCode(base, 'ada@example.com');
    expect((await first.submit(codeForm, '/login/code', { code })).status).toBe(303);

    const again = await first.submit(codeForm, '/login/code', { code });
    expect(again.status).not.toBe(303);
    expect(again.status).toBeGreaterThanOrEqual(400);

    // Another browser with the same sign-in id and code (its own CSRF pair) gets nothing either.
    const second = new Browser(base);
    const loginPage = await second.get('/login');
    const replay = await second.post('/login/code', { csrf: field(loginPage.html, 'csrf'), sign_in: field(codeForm.html, 'sign_in'), email: 'ada@example.com', code, return_to: '/' });
    expect(replay.status).toBeGreaterThanOrEqual(400);
    expect(await isSignedIn(second, base, 'ada@example.com')).toBe(false);
  });

  it('a code expires after 10 minutes', async () => {
    const { base, clock } = await start();
    const browser = new Browser(base);
    const codeForm = await askForCode(browser, 'ada@example.com');
    const code = await latestCode(base, 'ada@example.com');
    clock.advance(10 * MINUTE);
    const late = await browser.submit(codeForm, '/login/code', { code });
    expect(late.status).toBe(410);
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(false);
  });

  it('a code of one sign-in does not work for another', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const adaForm = await askForCode(browser, 'ada@example.com');
    const adaCode = await latestCode(base, 'ada@example.com');
    const bobForm = await askForCode(browser, 'bob@example.com');
    const bobCode = await latestCode(base, 'bob@example.com');
    if (bobCode !== adaCode) expect((await browser.submit(bobForm, '/login/code', { code: adaCode })).status).toBe(401);
    expect((await browser.submit(adaForm, '/login/code', { code: adaCode })).status).toBe(303);
  });

  it('refuses a malformed email on the form with an error page, and sends nothing', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const page = await askForCode(browser, 'not an email');
    expect(page.status).toBe(400);
    expect(parseForms(page.html).map((f) => f.action)).toContain('/login');
    expect(await mailbox(base)).toHaveLength(0);
  });

  it('sends at most signInCodesPerHour codes per address per hour (one client here, so its own limit is raised to match)', async () => {
    // The defaults (10 per address, 3 per address and client) are in sign-in-limits.test.ts.
    const { base, clock } = await start({ limits: { signInCodesPerHour: 5, signInCodesPerAddressAndIpPerHour: 5 } });
    const browser = new Browser(base);
    for (let i = 0; i < 5; i++) expect((await askForCode(browser, 'ada@example.com')).status).toBe(200);
    const sixth = await askForCode(browser, 'ada@example.com');
    expect(sixth.status).toBe(429);
    expect(await mailbox(base)).toHaveLength(5);
    clock.advance(60 * MINUTE);
    expect((await askForCode(browser, 'ada@example.com')).status).toBe(200);
  });

  it('sends at most signInCodesPerIpPerHour codes to one client, whatever the addresses', async () => {
    const { base, clock } = await start({ limits: { signInCodesPerIpPerHour: 3 } });
    const browser = new Browser(base);
    for (let i = 0; i < 3; i++) expect((await askForCode(browser, `person${i}@example.com`)).status).toBe(200);
    const fourth = await askForCode(browser, 'someone.else@example.com');
    expect(fourth.status).toBe(429);
    expect(fourth.html).toContain('from your network');
    expect(await mailbox(base)).toHaveLength(3);
    clock.advance(60 * MINUTE);
    expect((await askForCode(browser, 'someone.else@example.com')).status).toBe(200);
  });

  it('the session lasts 24 hours', async () => {
    const { base, clock } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    clock.advance(24 * 60 * MINUTE - 1);
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(true);
    clock.advance(1);
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(false);
  });

  it('GET /login when already signed in goes straight back to return_to', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const page = await browser.get(`/login?return_to=${encodeURIComponent('/claim?token=x')}`);
    expect(page.status).toBe(303);
    expect(page.location).toBe('/claim?token=x');
  });

  it('sign-out ends the session on the server, not only in this browser', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const done = await browser.signIn('ada@example.com');
    const sessionName = done.response.headers.getSetCookie()[0]!.split('=')[0]!;
    const session = browser.cookie(sessionName)!;
    const stolen = new Browser(base, { cookie: `${session.name}=${session.value}` });
    expect(await isSignedIn(stolen, base, 'ada@example.com')).toBe(true);

    const registration = await registerServiceAuth(base, 'bob@example.com');
    const wrongAccount = await browser.get(registration.claim.attempt.verification_uri);
    expect(wrongAccount.status).toBe(403);
    const out = await browser.submit(wrongAccount, '/logout');
    expect(out.status).toBe(303);
    expect(out.location).toMatch(/^\/login\?return_to=/);
    expect(out.response.headers.getSetCookie().some((line) => line.startsWith(`${session.name}=`) && /Max-Age=0/i.test(line))).toBe(true);
    expect(await isSignedIn(browser, base, 'ada@example.com')).toBe(false);
    expect(await isSignedIn(stolen, base, 'ada@example.com')).toBe(false);
  });
});
