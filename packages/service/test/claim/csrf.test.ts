import { describe, expect, it } from 'vitest';
import { servicePerTest } from '../support/harness.ts';
import { expectError } from '../http/helpers.ts';
import { Browser, latestCode, mailbox, parseForms, type Page } from './browser.ts';
import { authorize, completeClaim, pollClaim, registerServiceAuth, SECOND } from './flows.ts';

/**
 * Every form of the service's pages carries a CSRF token (issue 3, item 3/4): a POST without it, with
 * a wrong one, or with one that belongs to another browser is refused (4xx) and changes nothing.
 */

const start = servicePerTest();

type Forge = (fields: Record<string, string>) => Record<string, string>;

const forgeries: [string, Forge][] = [
  ['without a csrf field', ({ csrf: _csrf, ...rest }) => rest],
  ['with an empty csrf field', (fields) => ({ ...fields, csrf: '' })],
  ['with a wrong csrf field', (fields) => ({ ...fields, csrf: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })],
  ['with a csrf field altered by one character', (fields) => ({ ...fields, csrf: fields.csrf!.slice(0, -1) + (fields.csrf!.endsWith('A') ? 'B' : 'A') })],
];

/** The form of `page` with action `action`, its fields as the page gave them. */
function formFields(page: Page, action: string): Record<string, string> {
  const form = parseForms(page.html).find((f) => f.action === action);
  if (!form) throw new Error(`no ${action} form`);
  return { ...form.fields };
}

async function expectRefused(page: Page): Promise<void> {
  expect(page.status).toBeGreaterThanOrEqual(400);
  expect(page.status).toBeLessThan(500);
  expect(page.response.headers.getSetCookie().filter((line) => !/^[^=]*csrf/i.test(line))).toEqual([]);
}

describe.each(forgeries)('a form posted %s', (_name, forge) => {
  it('POST /login sends no code', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const page = await browser.get('/login');
    await expectRefused(await browser.post('/login', forge({ ...formFields(page, '/login'), email: 'ada@example.com' })));
    expect(await mailbox(base)).toEqual([]);
  });

  it('POST /login/code starts no session (and spends no try)', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const codeForm = await browser.submit(await browser.get('/login'), '/login', { email: 'ada@example.com' });
    const code = await latestCode(base, 'ada@example.com');
    const fields = { ...formFields(codeForm, '/login/code'), code };
    for (let i = 0; i < 6; i++) await expectRefused(await browser.post('/login/code', forge(fields)));
    // The real form still works: the forged posts were not counted as tries.
    expect((await browser.post('/login/code', fields)).status).toBe(303);
  });

  it('POST /logout keeps the session', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const registration = await registerServiceAuth(base, 'bob@example.com');
    const wrongAccount = await browser.get(registration.claim.attempt.verification_uri);
    expect(wrongAccount.status).toBe(403);
    await expectRefused(await browser.post('/logout', forge(formFields(wrongAccount, '/logout'))));
    expect((await browser.get('/login')).status).toBe(303); // still signed in
  });

  it('POST /claim/authorize reveals no code and confirms nothing', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const page = await browser.open(registration.claim.attempt.verification_uri);
    const refused = await browser.post('/claim/authorize', forge(formFields(page, '/claim/authorize')));
    await expectRefused(refused);
    expect(refused.html).not.toMatch(/data-testid="page-code"/);
    await expectError(await completeClaim(base, registration.claim.token, '123456'), 409, 'claim_not_confirmed');
  });

  it('POST /claim/deny denies nothing', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const page = await browser.open(registration.claim.attempt.verification_uri);
    await expectRefused(await browser.post('/claim/deny', forge(formFields(page, '/claim/deny'))));
    await expectError(await pollClaim(base, registration.claim.token), 400, 'authorization_pending');
    clock.advance(5 * SECOND);
    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
  });

  it('POST /claim/code claims nothing (and spends no try)', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const page = await browser.open(registration.claim.attempt.verification_uri);
    const fields = { ...formFields(page, '/claim/code'), code: registration.claim.user_code };
    for (let i = 0; i < 6; i++) await expectRefused(await browser.post('/claim/code', forge(fields)));
    await expectError(await pollClaim(base, registration.claim.token), 400, 'authorization_pending');
    expect((await browser.post('/claim/code', fields)).status).toBe(200);
  });
});

describe('a CSRF field from another browser', () => {
  it('does not work with this browser’s cookie (the token is bound to the browser)', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const attacker = new Browser(base);
    const attackerFields = formFields(await attacker.get('/login'), '/login');

    const victim = new Browser(base);
    await victim.signIn('ada@example.com');
    const victimPage = await victim.open(registration.claim.attempt.verification_uri);
    const fields = { ...formFields(victimPage, '/claim/authorize'), csrf: attackerFields.csrf! };
    await expectRefused(await victim.post('/claim/authorize', fields));
    await expectError(await completeClaim(base, registration.claim.token, '123456'), 409, 'claim_not_confirmed');
  });

  it('a CSRF field with no CSRF cookie at all is refused', async () => {
    const { base } = await start();
    const browser = new Browser(base);
    const fields = formFields(await browser.get('/login'), '/login');
    const cookieless = new Browser(base);
    await expectRefused(await cookieless.post('/login', { ...fields, email: 'ada@example.com' }));
    expect(await mailbox(base)).toEqual([]);
  });
});
