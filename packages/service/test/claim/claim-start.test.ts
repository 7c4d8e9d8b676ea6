import { describe, expect, it } from 'vitest';
import { registerAnonymous, servicePerTest } from '../support/harness.ts';
import { expectError, expectNoStore } from '../http/helpers.ts';
import { Browser } from './browser.ts';
import { authorize, claimByReadBack, claimStart, completeClaim, DAY, MINUTE, registerServiceAuth, startClaim, type Json } from './flows.ts';

/** `POST /agent/identity/claim`: start or re-mint a claim attempt (issue 3, item 2). */

const start = servicePerTest();

const CURRENT_KEYS = ['id', 'type', 'attempt'];
const V07_KEYS = ['registration_id', 'registration_type', 'claim_attempt_id', 'status', 'expires_at', 'claim_attempt'];

/** Every published body form, for a claim token and an email. */
const bodyForms: [string, (claimToken: string, email: string) => Json][] = [
  ['{type:"service_auth", claim_token, login_hint}', (claim_token, email) => ({ type: 'service_auth', claim_token, login_hint: email })],
  ['{type:"login_hint", claim_token, login_hint}', (claim_token, email) => ({ type: 'login_hint', claim_token, login_hint: email })],
  ['untyped {claim_token, email}', (claim_token, email) => ({ claim_token, email })],
  ['untyped {claim_token, login_hint}', (claim_token, email) => ({ claim_token, login_hint: email })],
  [
    '{type:"service_auth", …} with extra client_id and resource',
    (claim_token, email) => ({ type: 'service_auth', claim_token, login_hint: email, client_id: 'https://agent.example/cimd', resource: 'https://x.example' }),
  ],
  ['untyped with extra fields', (claim_token, email) => ({ claim_token, email, client_id: 'agent', resource: 'https://x.example', scope: 'a b' })],
];

function expectStartedEnvelope(body: Json, base: string, now: number, registrationId: string): void {
  expect(Object.keys(body).sort()).toEqual([...CURRENT_KEYS, ...V07_KEYS].sort());
  expect(['anonymous', 'service_auth']).toContain(body.registration_type);
  // current
  expect(body.id).toBe(registrationId);
  expect(body.type).toBe('service_auth');
  expect(Object.keys(body.attempt).sort()).toEqual(['expires_at', 'verification_uri']);
  expect(body.attempt.verification_uri).toMatch(new RegExp(`^${base}/claim\\?token=cvt_`));
  expect(Date.parse(body.attempt.expires_at)).toBe(now + 10 * MINUTE);
  // v0.7
  expect(body.registration_id).toBe(registrationId);
  expect(body.claim_attempt_id).toMatch(/^cla_/);
  expect(body.status).toBe('initiated');
  expect(body.expires_at).toBe(body.attempt.expires_at);
  expect(Object.keys(body.claim_attempt).sort()).toEqual(['expires_in', 'interval', 'user_code', 'verification_uri']);
  expect(body.claim_attempt.user_code).toMatch(/^\d{6}$/);
  expect(body.claim_attempt.expires_in).toBe(600);
  expect(body.claim_attempt.verification_uri).toBe(body.attempt.verification_uri);
  expect(body.claim_attempt.interval).toBe(5);
}

describe('claim start', () => {
  describe.each(bodyForms)('body form %s', (_name, form) => {
    it('starts an attempt for an anonymous registration, and the attempt can be completed', async () => {
      const { base, clock } = await start();
      const registration = await registerAnonymous(base);
      const response = await claimStart(base, form(registration.claim.token, 'Ada@Example.com'));
      expect(response.status).toBe(200);
      expectNoStore(response);
      const body: Json = await response.json();
      expectStartedEnvelope(body, base, clock(), registration.id);

      const browser = new Browser(base);
      await browser.signIn('ada@example.com');
      const code = await authorize(browser, body.attempt.verification_uri);
      expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
    });

    it('re-mints an attempt for a service_auth registration', async () => {
      const { base, clock } = await start();
      const registration = await registerServiceAuth(base, 'ada@example.com');
      const response = await claimStart(base, form(registration.claim.token, 'ada@example.com'));
      expect(response.status).toBe(200);
      const body: Json = await response.json();
      expectStartedEnvelope(body, base, clock(), registration.id);
      expect(body.attempt.verification_uri).not.toBe(registration.claim.attempt.verification_uri);
      expect(body.claim_attempt_id).toMatch(/^cla_/);
    });
  });

  it('refuses an identity_assertion claim on a service that trusts no provider, without starting anything', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    const response = await claimStart(base, { type: 'identity_assertion', claim_token: registration.claim.token, assertion: 'a.b.c' });
    expect(response.status).toBe(400);
    expect((await response.json()).error).toBe('issuer_not_enabled');
  });

  it('re-mints after the attempt expired: the old verification_uri is refused on the page, the new one works', async () => {
    const { base, clock } = await start();
    const registration = await registerAnonymous(base);
    const first = await startClaim(base, registration.claim.token, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    expect((await browser.open(first.attempt.verification_uri)).status).toBe(200);

    clock.advance(10 * MINUTE + 1);
    const expiredPage = await browser.open(first.attempt.verification_uri);
    expect(expiredPage.status).toBe(410);

    const second = await startClaim(base, registration.claim.token, 'ada@example.com');
    expect(second.attempt.verification_uri).not.toBe(first.attempt.verification_uri);
    expect(second.claim_attempt_id).not.toBe(first.claim_attempt_id);
    expect((await browser.open(first.attempt.verification_uri)).status).toBe(410);
    const code = await authorize(browser, second.attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
  });

  it('a re-mint replaces a live attempt: the earlier link stops working at once', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const second = await startClaim(base, registration.claim.token, 'ada@example.com');
    expect((await browser.open(registration.claim.attempt.verification_uri)).status).toBe(410);
    expect((await browser.open(second.attempt.verification_uri)).status).toBe(200);
  });

  it('refuses an unknown claim token with 401 invalid_claim_token', async () => {
    const { base } = await start();
    for (const claim_token of ['clm_unknown', 'x']) {
      const response = await claimStart(base, { type: 'service_auth', claim_token, login_hint: 'ada@example.com' });
      await expectError(response, 401, 'invalid_claim_token');
      expectNoStore(response);
    }
  });

  it('refuses a registration past its 24 h claim window with 410 claim_expired', async () => {
    const { base, clock } = await start();
    const anonymous = await registerAnonymous(base);
    const serviceAuth = await registerServiceAuth(base, 'ada@example.com');
    clock.advance(DAY - 1);
    expect((await claimStart(base, { claim_token: anonymous.claim.token, email: 'ada@example.com' })).status).toBe(200);
    clock.advance(1);
    await expectError(await claimStart(base, { claim_token: anonymous.claim.token, email: 'ada@example.com' }), 410, 'claim_expired');
    await expectError(await claimStart(base, { claim_token: serviceAuth.claim.token, email: 'ada@example.com' }), 410, 'claim_expired');
  });

  it('refuses a claimed registration with 409 already_claimed', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'anonymous', email: 'ada@example.com' });
    await expectError(await claimStart(base, { type: 'service_auth', claim_token: claim.claimToken, login_hint: 'ada@example.com' }), 409, 'already_claimed');
    const serviceAuth = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com', browser: claim.browser });
    await expectError(await claimStart(base, { claim_token: serviceAuth.claimToken, email: 'ada@example.com' }), 409, 'already_claimed');
  });

  it.each([
    ['{type:"service_auth"}', (claim_token: string) => ({ type: 'service_auth', claim_token, login_hint: 'not-an-email' })],
    ['{type:"login_hint"}', (claim_token: string) => ({ type: 'login_hint', claim_token, login_hint: 'ada@' })],
    ['untyped', (claim_token: string) => ({ claim_token, email: 'ada at example.com' })],
  ])('refuses a malformed email in %s with 400 invalid_login_hint', async (_name, body) => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    await expectError(await claimStart(base, body(registration.claim.token)), 400, 'invalid_login_hint');
  });

  it('refuses a body without a claim token or without an email as invalid_request', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    await expectError(await claimStart(base, { type: 'service_auth', login_hint: 'ada@example.com' }), 400, 'invalid_request');
    await expectError(await claimStart(base, { claim_token: registration.claim.token }), 400, 'invalid_request');
    await expectError(await claimStart(base, { type: 'bogus', claim_token: registration.claim.token, login_hint: 'ada@example.com' }), 400, 'invalid_request');
  });

  it('allows 10 attempts per anonymous registration; the 11th is 429 too_many_attempts', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    for (let i = 1; i <= 10; i++) {
      const response = await claimStart(base, { claim_token: registration.claim.token, email: 'ada@example.com' });
      expect(response.status, `attempt ${i}`).toBe(200);
    }
    const eleventh = await claimStart(base, { claim_token: registration.claim.token, email: 'ada@example.com' });
    await expectError(eleventh, 429, 'too_many_attempts');
    expectNoStore(eleventh);
  });

  it('counts the attempt a service_auth registration starts with: 9 re-mints, then 429', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    for (let i = 2; i <= 10; i++) {
      expect((await claimStart(base, { claim_token: registration.claim.token, email: 'ada@example.com' })).status, `attempt ${i}`).toBe(200);
    }
    await expectError(await claimStart(base, { claim_token: registration.claim.token, email: 'ada@example.com' }), 429, 'too_many_attempts');
  });

  it('the attempt limit is per registration: another registration is unaffected', async () => {
    const { base } = await start({ limits: { attemptsPerRegistration: 2 } });
    const one = await registerAnonymous(base);
    const two = await registerAnonymous(base);
    for (let i = 0; i < 2; i++) expect((await claimStart(base, { claim_token: one.claim.token, email: 'ada@example.com' })).status).toBe(200);
    await expectError(await claimStart(base, { claim_token: one.claim.token, email: 'ada@example.com' }), 429, 'too_many_attempts');
    expect((await claimStart(base, { claim_token: two.claim.token, email: 'ada@example.com' })).status).toBe(200);
  });
});
