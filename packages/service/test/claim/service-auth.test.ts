import { describe, expect, it } from 'vitest';
import { exchange, postJson, servicePerTest } from '../support/harness.ts';
import { craftAssertion, expectError, expectInvalidGrant, expectNoStore } from '../http/helpers.ts';
import { Browser } from './browser.ts';
import { authorize, completeClaim, jwtPayload, registerServiceAuth, shapeOf, type Json } from './flows.ts';

/** `POST /agent/identity {type:"service_auth", login_hint}` (issue 3, item 1). */

const start = servicePerTest();

function register(base: string, loginHint: unknown): Promise<Response> {
  return postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: loginHint });
}

describe('service_auth registration', () => {
  it.each(['not-an-email', 'ada@', '@example.com', 'ada@example', 'ada smith@example.com', 'ada@@example.com'])(
    'refuses login_hint %j with 400 invalid_login_hint',
    async (hint) => {
      const { base } = await start();
      const response = await register(base, hint);
      await expectError(response, 400, 'invalid_login_hint');
      expectNoStore(response);
    },
  );

  it('refuses a missing or empty login_hint as invalid_request', async () => {
    const { base } = await start();
    await expectError(await postJson(`${base}/agent/identity`, { type: 'service_auth' }), 400, 'invalid_request');
    await expectError(await register(base, ''), 400, 'invalid_request');
  });

  it('is refused with 403 service_auth_not_enabled when switched off (and anonymous still works)', async () => {
    const { base } = await start({ methods: { serviceAuth: false } });
    await expectError(await register(base, 'ada@example.com'), 403, 'service_auth_not_enabled');
    expect((await postJson(`${base}/agent/identity`, { type: 'anonymous' })).status).toBe(200);
  });

  it('answers with the superset shape: current claim.attempt, v0.7 ceremony keys, and no identity', async () => {
    const { base, clock } = await start();
    const response = await register(base, 'Ada@Example.com');
    expect(response.status).toBe(200);
    expectNoStore(response);
    const body: Json = await response.json();
    const now = clock();

    // current
    expect(body.id).toMatch(/^reg_/);
    expect(body.type).toBe('service_auth');
    expect(body.scopes).toEqual({ post_claim: ['notes.read', 'notes.write'] });
    expect(body.claim.token).toMatch(/^clm_/);
    expect(body.claim.url).toBe(`${base}/agent/identity/claim`);
    expect(Date.parse(body.claim.expires_at)).toBe(now + 24 * 3600_000);
    expect(body.claim.attempt.verification_uri).toMatch(new RegExp(`^${base}/claim\\?token=`));
    expect(Date.parse(body.claim.attempt.expires_at)).toBe(now + 600_000);
    // v0.7 (flat keys and the RFC 8628-shaped ceremony block, merged into `claim`)
    expect(body.registration_id).toBe(body.id);
    expect(body.registration_type).toBe('service_auth');
    expect(body.claim_token).toBe(body.claim.token);
    expect(body.claim_url).toBe(body.claim.url);
    expect(body.claim_token_expires).toBe(body.claim.expires_at);
    expect(body.post_claim_scopes).toEqual(['notes.read', 'notes.write']);
    expect(body.claim.user_code).toMatch(/^\d{6}$/);
    expect(body.claim.expires_in).toBe(600);
    expect(body.claim.verification_uri).toBe(body.claim.attempt.verification_uri);
    expect(body.claim.interval).toBe(5);
    // nothing usable before the human confirms
    for (const key of ['identity', 'identity_assertion', 'assertion_expires', 'pre_claim_scopes']) expect(body).not.toHaveProperty(key);
    expect(JSON.stringify(body)).not.toMatch(/eyJ/); // no JWT anywhere
    expect(Object.keys(body).sort()).toEqual(
      ['id', 'type', 'scopes', 'claim', 'registration_id', 'registration_type', 'post_claim_scopes', 'claim_token', 'claim_url', 'claim_token_expires'].sort(),
    );
  });

  it('gives byte-identical response shapes for an email with an account and one without', async () => {
    const { base } = await start();
    // ada@example.com has an account (she signed in and claimed something before); bob has none.
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    const earlier = await registerServiceAuth(base, 'ada@example.com');
    const code = await authorize(browser, earlier.claim.attempt.verification_uri);
    expect((await completeClaim(base, earlier.claim.token, code)).status).toBe(200);

    const known = await register(base, 'ada@example.com');
    const unknown = await register(base, 'bob@example.com');
    expect(known.status).toBe(unknown.status);
    const headerNames = (r: Response) => [...r.headers.keys()].filter((name) => name !== 'date').sort();
    expect(headerNames(known)).toEqual(headerNames(unknown));
    const knownText = await known.text();
    const unknownText = await unknown.text();
    expect(knownText.length).toBe(unknownText.length);
    const knownBody = JSON.parse(knownText);
    const unknownBody = JSON.parse(unknownText);
    expect(shapeOf(knownBody)).toEqual(shapeOf(unknownBody));
    // Only random values differ: the same key order, and every non-random value equal.
    expect(JSON.stringify(Object.keys(knownBody))).toBe(JSON.stringify(Object.keys(unknownBody)));
    const stable = (b: Json) => ({ ...b, id: 0, registration_id: 0, claim_token: 0, claim: { ...b.claim, token: 0, user_code: 0, verification_uri: 0, attempt: { ...b.claim.attempt, verification_uri: 0 } } });
    expect(stable(knownBody)).toEqual(stable(unknownBody));
  });

  it('never hands out an assertion that works before the claim: a forged-by-the-service one gets invalid_grant not_claimed', async () => {
    const { base, service } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    // The service's own key signs an assertion for this registration at its current generation, as
    // it would if it ever minted one before the claim: the token endpoint must still refuse it.
    const anonymous = await (await postJson(`${base}/agent/identity`, { type: 'anonymous' })).json();
    const forged = await craftAssertion(service, anonymous.identity.assertion, { payload: { sub: registration.id, gen: 0 } });
    expect(jwtPayload(forged).sub).toBe(registration.id);
    await expectInvalidGrant(await exchange(base, forged), 'not_claimed');
  });
});
