import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { registerAnonymous, servicePerTest } from '../support/harness.ts';
import { expectError } from '../http/helpers.ts';
import { Browser, parseForms, unescapeHtml, type Page } from './browser.ts';
import { authorize, claimByReadBack, completeClaim, MINUTE, registerServiceAuth, startClaim } from './flows.ts';

/** The claim page at verification_uri (issue 3, item 4). */

const start = servicePerTest();

/** The headers every service page must carry (clickjacking, leaks of the token in the URL, caching). */
function expectPageHeaders(page: Page): void {
  const headers = page.response.headers;
  expect(headers.get('content-type')).toMatch(/^text\/html/);
  const csp = headers.get('content-security-policy') ?? '';
  const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
  expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
  expect(directives.get('default-src')).toEqual(["'none'"]);
  expect(csp).not.toContain("'unsafe-inline'");
  expect(csp).not.toContain("'unsafe-eval'");
  expect(directives.has('script-src') ? directives.get('script-src') : ["'none'"]).toEqual(["'none'"]);
  expect(directives.get('form-action')).toEqual(["'self'"]);
  expect(headers.get('x-frame-options')).toBe('DENY');
  expect(headers.get('referrer-policy')).toBe('no-referrer');
  expect(headers.get('cache-control')).toBe('no-store');
  expect(headers.get('x-content-type-options')).toBe('nosniff');
  // The page's one inline stylesheet is exactly what the CSP allows by hash; there are no scripts.
  expect(page.html).not.toMatch(/<script/i);
  for (const style of page.html.matchAll(/<style>([\s\S]*?)<\/style>/g)) {
    const hash = createHash('sha256').update(style[1]!).digest('base64');
    expect(directives.get('style-src')).toContain(`'sha256-${hash}'`);
  }
}

function actions(page: Page): string[] {
  return parseForms(page.html).map((f) => f.action);
}

describe('the claim page', () => {
  it('sends a visitor who is not signed in to sign in, and back to the page afterwards', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const uri: string = registration.claim.attempt.verification_uri;
    const browser = new Browser(base);
    const first = await browser.get(uri);
    expect(first.status).toBe(303);
    const login = new URL(first.location!, base);
    expect(login.pathname).toBe('/login');
    const returnTo = login.searchParams.get('return_to')!;
    expect(new URL(returnTo, base).toString()).toBe(uri);

    const done = await browser.signIn('ada@example.com', { returnTo });
    expect(new URL(done.location!, base).toString()).toBe(uri);
    const page = await browser.get(done.location!);
    expect(page.status).toBe(200);
    expect(actions(page)).toEqual(expect.arrayContaining(['/claim/authorize', '/claim/deny', '/claim/code']));
  });

  it('names who is asking: service name and logo, the post-claim scopes, the registration type and the account', async () => {
    const { base } = await start({ name: 'Acme Notes', logoUri: 'https://cdn.acme.example/logo.png' });
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');

    const serviceAuth = await registerServiceAuth(base, 'ada@example.com');
    const page = await browser.open(serviceAuth.claim.attempt.verification_uri);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Acme Notes');
    expect(page.html).toContain('<img src="https://cdn.acme.example/logo.png"');
    const imgSrc = / img-src ([^;]*)/.exec(page.response.headers.get('content-security-policy') ?? '')?.[1] ?? '';
    expect(imgSrc.split(' ')).toContain('https://cdn.acme.example');
    for (const scope of ['notes.read', 'notes.write']) expect(page.html).toContain(scope);
    expect(page.html).toContain('ada@example.com');
    expect(page.html).toMatch(/asked for/i);

    const anonymous = await registerAnonymous(base);
    const started = await startClaim(base, anonymous.claim.token, 'ada@example.com');
    const anonymousPage = await browser.open(started.attempt.verification_uri);
    expect(anonymousPage.status).toBe(200);
    expect(anonymousPage.html).toMatch(/on its own/i);
    // The two kinds of registration are described differently.
    const describe = (html: string) => /An AI agent ([^<]*)/.exec(html)?.[1];
    expect(describe(page.html)).toBeTruthy();
    expect(describe(page.html)).not.toBe(describe(anonymousPage.html));
  });

  it('without logoUri shows no image and allows images from itself only', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const page = await browser.open(registration.claim.attempt.verification_uri);
    expect(page.html).not.toMatch(/<img/);
    expect(/ img-src ([^;]*)/.exec(page.response.headers.get('content-security-policy') ?? '')?.[1]).toBe("'self'");
  });

  it('refuses a signed-in account that is not the login_hint with a 403 page and no way to authorize', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const mallory = new Browser(base);
    await mallory.signIn('mallory@example.com');
    const page = await mallory.open(registration.claim.attempt.verification_uri);
    expect(page.status).toBe(403);
    expectPageHeaders(page);
    expect(actions(page)).not.toContain('/claim/authorize');
    expect(actions(page)).not.toContain('/claim/code');
    expect(actions(page)).toContain('/logout');

    // Posting the forms anyway (with a valid CSRF pair of her own) changes nothing.
    const adaBrowser = new Browser(base);
    await adaBrowser.signIn('ada@example.com');
    const adaPage = await adaBrowser.open(registration.claim.attempt.verification_uri);
    const token = parseForms(adaPage.html).find((f) => f.action === '/claim/authorize')!.fields.token!;
    const csrf = parseForms(page.html)[0]!.fields.csrf!;
    const forced = await mallory.post('/claim/authorize', { csrf, token });
    expect(forced.status).toBe(403);
    expect(forced.html).not.toMatch(/data-testid="page-code"/);
    expect((await mallory.post('/claim/code', { csrf, token, code: registration.claim.user_code })).status).toBe(403);
    expect((await mallory.post('/claim/deny', { csrf, token })).status).toBe(403);
    await expectError(await completeClaim(base, registration.claim.token, '000000'), 409, 'claim_not_confirmed');
    // Ada can still authorize.
    const code = await authorize(adaBrowser, registration.claim.attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
  });

  it('compares the login_hint case-insensitively', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'Ada@Example.COM');
    const browser = new Browser(base);
    await browser.signIn('ADA@example.com');
    expect((await browser.open(registration.claim.attempt.verification_uri)).status).toBe(200);
  });

  it('carries CSP (frame-ancestors none, no unsafe-inline), X-Frame-Options, Referrer-Policy and no-store on every page', async () => {
    const { base, clock } = await start({ logoUri: 'https://cdn.acme.example/logo.png' });
    const browser = new Browser(base);
    const pages: [string, Page][] = [];
    pages.push(['login form', await browser.get('/login')]);
    const registration = await registerServiceAuth(base, 'ada@example.com');
    pages.push(['sign-in redirect target', await browser.get(registration.claim.attempt.verification_uri)]);
    await browser.signIn('ada@example.com');
    const claimPage = await browser.open(registration.claim.attempt.verification_uri);
    pages.push(['claim page', claimPage]);
    const revealed = await browser.submit(claimPage, '/claim/authorize');
    pages.push(['page code', revealed]);
    const other = await registerServiceAuth(base, 'ada@example.com');
    const denied = await browser.submit(await browser.open(other.claim.attempt.verification_uri), '/claim/deny');
    pages.push(['denied', denied]);
    pages.push(['unknown link', await browser.get('/claim?token=cvt_nope')]);
    pages.push(['dev mailbox', await browser.get('/dev/mailbox')]);
    const third = await registerServiceAuth(base, 'ada@example.com');
    clock.advance(10 * MINUTE);
    pages.push(['expired link', await browser.get(third.claim.attempt.verification_uri)]);
    for (const [name, page] of pages) {
      if (page.status >= 300 && page.status < 400) {
        expect(page.response.headers.get('cache-control'), name).toBe('no-store');
        continue;
      }
      expectPageHeaders(page);
    }
    expect(pages.filter(([, p]) => p.status === 200).length).toBeGreaterThanOrEqual(4);
  });

  it('escapes user-controlled values: an email with <script> characters never appears unescaped', async () => {
    const { base } = await start({ name: 'Acme <b>Notes</b> & "Co"' });
    const evil = '"><script>alert(1)</script>@evil.example';
    const registration = await registerServiceAuth(base, evil);

    // Someone else signed in: the 403 page names the requested account.
    const ada = new Browser(base);
    await ada.signIn('ada@example.com');
    const wrong = await ada.open(registration.claim.attempt.verification_uri);
    expect(wrong.status).toBe(403);

    // The owner of that (odd but syntactically valid) address signs in: code form, claim page.
    const owner = new Browser(base);
    const loginForm = await owner.get('/login');
    const codeForm = await owner.submit(loginForm, '/login', { email: evil });
    expect(codeForm.status).toBe(200);
    await owner.signIn(evil);
    const claimPage = await owner.open(registration.claim.attempt.verification_uri);
    expect(claimPage.status).toBe(200);
    const mailboxPage = await owner.get('/dev/mailbox');

    for (const page of [wrong, codeForm, claimPage, mailboxPage]) {
      expect(page.html).not.toContain('<script>');
      expect(page.html).not.toContain('"><script');
      expect(page.html).not.toContain('</script>');
      expect(page.html).not.toContain('<b>Notes</b>');
      expectPageHeaders(page);
    }
    // …but they are there, escaped, for the person to read.
    expect(unescapeHtml(claimPage.html)).toContain(evil);
    expect(unescapeHtml(wrong.html)).toContain(evil);
    expect(unescapeHtml(claimPage.html)).toContain('Acme <b>Notes</b> & "Co"');
  });

  it('an expired attempt, an unknown link and a claimed registration are error pages without Authorize', async () => {
    const { base, clock } = await start();
    const claim = await claimByReadBack(base, { type: 'anonymous', email: 'ada@example.com' });
    const claimed = await claim.browser.get(claim.verificationUri);
    expect(claimed.status).toBeGreaterThanOrEqual(400);
    expect(actions(claimed)).not.toContain('/claim/authorize');

    const unknown = await claim.browser.get('/claim?token=cvt_unknown');
    expect([400, 404]).toContain(unknown.status);
    expect(actions(unknown)).not.toContain('/claim/authorize');

    const registration = await registerServiceAuth(base, 'ada@example.com');
    clock.advance(10 * MINUTE);
    const expired = await claim.browser.get(registration.claim.attempt.verification_uri);
    expect(expired.status).toBe(410);
    expect(actions(expired)).not.toContain('/claim/authorize');
  });

  it('POSTs to the page need a session: without one nothing is authorized', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const ada = new Browser(base);
    const signedIn = await ada.signIn('ada@example.com');
    const sessionName = signedIn.response.headers.getSetCookie()[0]!.split('=')[0]!;
    const page = await ada.open(registration.claim.attempt.verification_uri);
    const form = parseForms(page.html).find((f) => f.action === '/claim/authorize')!;
    // The same CSRF cookie and field, every cookie but the session.
    const withoutSession = [...ada.cookies.values()].filter((c) => c.name !== sessionName).map((c) => `${c.name}=${c.value}`).join('; ');
    expect(withoutSession).not.toBe('');
    const anonymousBrowser = new Browser(base, { cookie: withoutSession });
    const response = await anonymousBrowser.post('/claim/authorize', form.fields);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.html).not.toMatch(/data-testid="page-code"/);
    await expectError(await completeClaim(base, registration.claim.token, '000000'), 409, 'claim_not_confirmed');
  });
});
