import { describe, expect, it } from 'vitest';
import { accessToken, accessTokenFor, callApi, exchange, servicePerTest } from '../support/harness.ts';
import { authorize, claimStart, completeClaim, refresh, signedIn } from '../claim/flows.ts';
import { deliverSet, expectRefused, expectSetAccepted, expectSetRefused, presentIdJag, registerIdJag, trustedService, type Json } from './setup.ts';
import { JWKS_PATH, providerPerTest, REVOKED, type TestProvider } from './test-provider.ts';

/**
 * `POST /agent/event/notify` (RFC 8417 SETs pushed per RFC 8935; protocol-reference §2.9,
 * standards.md A7): 202 or 400 `{err, description}`; the issuer is checked before any fetch; a
 * revocation tears down everything of the delegation (profile.md §2) exactly once per jti.
 */
const start = servicePerTest();
const startProvider = providerPerTest();
const DAY_S = 86_400;

async function setup() {
  const provider = await startProvider({ displayName: 'Acme Agents' });
  const { svc, base, fetches } = await trustedService(start, { providers: [provider] });
  return { provider, svc, base, fetches };
}

/** A clean ID-JAG registration with a live access token. */
async function linked(base: string, provider: TestProvider, sub = 'user-1', email = 'ada@example.com') {
  const registration = await registerIdJag(base, provider.mintIdJag({ sub, email }));
  const token = await accessTokenFor(base, registration.identity.assertion);
  expect((await callApi(base, token)).status).toBe(200);
  return { registration, token };
}

async function expectInvalidGrant(response: Response): Promise<void> {
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(400);
  expect(body.error).toBe('invalid_grant');
}

describe('SET receiver: refusals are 400 {err, description}', () => {
  it('a wrong content type → invalid_request', async () => {
    const { provider, base } = await setup();
    await expectSetRefused(await deliverSet(base, provider.mintSet(), 'application/jwt'), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet(), 'application/json'), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet(), 'text/plain'), 'invalid_request');
  });

  it('an empty or non-JWS body → invalid_request', async () => {
    const { base } = await setup();
    await expectSetRefused(await deliverSet(base, ''), 'invalid_request');
    await expectSetRefused(await deliverSet(base, 'not.a.jwt!'), 'invalid_request');
  });

  it('an untrusted issuer → invalid_issuer, with zero fetches', async () => {
    const trusted = await startProvider();
    const stranger = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [trusted], strangers: [stranger] });
    await expectSetRefused(await deliverSet(base, stranger.mintSet()), 'invalid_issuer');
    await expectSetRefused(await deliverSet(base, trusted.mintSet({ iss: `${trusted.issuer}/` })), 'invalid_issuer');
    expect(fetches).toEqual([]);
    expect(stranger.requests).toEqual([]);
    expect(trusted.requests).toEqual([]);
  });

  it('a typ other than secevent+jwt (an ID-JAG posted as a SET, or none) is refused', async () => {
    const { provider, base } = await setup();
    await expectSetRefused(await deliverSet(base, provider.mintIdJag()), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { header: { typ: 'oauth-id-jag+jwt' } })), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { header: { typ: undefined } })), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { header: { typ: 'JWT' } })), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { header: { typ: 'logout+jwt' } })), 'invalid_request');
  });

  it('typ application/secevent+jwt is accepted', async () => {
    const { provider, base } = await setup();
    await expectSetAccepted(await deliverSet(base, provider.mintSet({}, { header: { typ: 'application/secevent+jwt' } })));
  });

  it('a bad signature → authentication_failed', async () => {
    const { provider, base } = await setup();
    const forger = provider.addKey('ES256', 'forger');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { key: forger, header: { kid: provider.keys.ES256.kid } })), 'authentication_failed');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { signature: 'garbage' })), 'authentication_failed');
  });

  it('an unknown kid → invalid_key', async () => {
    const { provider, base } = await setup();
    const unknown = provider.addKey('ES256', 'unknown');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { key: unknown })), 'invalid_key');
  });

  it('alg none / HS256 with the public key / an alg off the allow-list are refused', async () => {
    const { provider, base } = await setup();
    for (const alg of ['none', 'None', 'NONE']) {
      await expectSetRefused(await deliverSet(base, provider.mintSet({}, { header: { alg }, signature: 'garbage' })), 'invalid_request');
      const unsigned = await deliverSet(base, provider.mintSet({}, { header: { alg }, signature: 'none' }));
      expect(unsigned.status).toBe(400);
      expect(Object.keys(await unsigned.json()).sort()).toEqual(['description', 'err']);
    }
    const hs = provider.mintSet({}, { header: { alg: 'HS256' }, signature: { hmac: provider.keys.ES256.pem } });
    const refused = await deliverSet(base, hs);
    expect(refused.status).toBe(400);
    expect(Object.keys(await refused.json()).sort()).toEqual(['description', 'err']);
  });

  it('an alg not on the issuer\'s allow-list is refused, before any fetch', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider], entry: () => ({ algorithms: ['ES256'] }) });
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { key: 'RS256' })), 'invalid_request');
    expect(fetches).toEqual([]);
    await expectSetAccepted(await deliverSet(base, provider.mintSet({}, { key: 'ES256' })));
  });

  it('a wrong aud or an aud array of two → invalid_audience; an array of one is accepted', async () => {
    const { provider, base } = await setup();
    await expectSetRefused(await deliverSet(base, provider.mintSet({ aud: 'https://other-service.example' })), 'invalid_audience');
    await expectSetRefused(await deliverSet(base, provider.mintSet({ aud: [base, 'https://other-service.example'] })), 'invalid_audience');
    await expectSetRefused(await deliverSet(base, provider.mintSet({ aud: `${base}/agent/event/notify` })), 'invalid_audience');
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ aud: [base] })));
  });

  it('an iat older than 7 days or in the future is refused; one 6 days old is accepted', async () => {
    const { provider, base } = await setup();
    await expectSetRefused(await deliverSet(base, provider.mintSet({ iat: provider.now() - 8 * DAY_S })), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet({ iat: provider.now() + 600 })), 'invalid_request');
    await expectSetRefused(await deliverSet(base, provider.mintSet({ iat: undefined })), 'invalid_request');
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ iat: provider.now() - 6 * DAY_S })));
  });

  it('missing jti, sub or events, or events that are not a non-empty object, are refused', async () => {
    const { provider, base } = await setup();
    for (const claims of [{ jti: undefined }, { sub: undefined }, { events: undefined }, { events: {} }, { events: [REVOKED] }, { events: REVOKED }]) {
      await expectSetRefused(await deliverSet(base, provider.mintSet(claims as Json)), 'invalid_request');
    }
  });

  it('after a refusal nothing is revoked', async () => {
    const { provider, base } = await setup();
    const { token } = await linked(base, provider);
    await expectSetRefused(await deliverSet(base, provider.mintSet({ aud: 'https://other-service.example' })), 'invalid_audience');
    await expectSetRefused(await deliverSet(base, provider.mintSet({}, { signature: 'garbage' })), 'authentication_failed');
    expect((await callApi(base, token)).status).toBe(200);
  });
});

describe('SET receiver: a revocation', () => {
  it('202, then the delegation\'s access tokens are 401 and its assertions invalid_grant', async () => {
    const { provider, base } = await setup();
    const { registration, token } = await linked(base, provider);
    const second = await registerIdJag(base, provider.mintIdJag());
    const response = await deliverSet(base, provider.mintSet());
    expect(response.status).toBe(202);
    expect(await response.text()).toBe('');
    expect((await callApi(base, token)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, registration.identity.assertion));
    await expectInvalidGrant(await exchange(base, second.identity.assertion));
  });

  it('only that (iss, sub) is affected: another user, and the same sub at another provider, keep working', async () => {
    const a = await startProvider({ displayName: 'Provider A' });
    const b = await startProvider({ displayName: 'Provider B' });
    const { base } = await trustedService(start, { providers: [a, b] });
    const revoked = await linked(base, a, 'user-1', 'one@example.com');
    const otherUser = await linked(base, a, 'user-2', 'two@example.com');
    const otherProvider = await linked(base, b, 'user-1', 'three@example.com');
    await expectSetAccepted(await deliverSet(base, a.mintSet({ sub: 'user-1' })));
    expect((await callApi(base, revoked.token)).status).toBe(401);
    expect((await callApi(base, otherUser.token)).status).toBe(200);
    expect((await callApi(base, otherProvider.token)).status).toBe(200);
    expect((await exchange(base, otherProvider.registration.identity.assertion)).status).toBe(200);
  });

  it('a revocation from provider B for provider A\'s sub does nothing to A\'s delegation', async () => {
    const a = await startProvider();
    const b = await startProvider();
    const { base } = await trustedService(start, { providers: [a, b] });
    const { token } = await linked(base, a, 'shared-sub', 'x@example.com');
    await expectSetAccepted(await deliverSet(base, b.mintSet({ sub: 'shared-sub' })));
    expect((await callApi(base, token)).status).toBe(200);
  });

  it('a step-up delegation completed through the ceremony: its refresh token dies too', async () => {
    const { provider, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const step = await (await presentIdJag(base, provider.mintIdJag({ sub: 'ada' }))).json();
    expect(step.error).toBe('interaction_required');
    const code = await authorize(browser, step.claim.attempt.verification_uri);
    const claimed = await (await completeClaim(base, step.claim.token, code)).json();
    const refreshToken: string = claimed.identity.refresh_token.value;
    const token = await accessTokenFor(base, claimed.identity.assertion);

    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'ada' })));
    expect((await callApi(base, token)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, claimed.identity.assertion));
    const refreshed = await refresh(base, refreshToken);
    expect(refreshed.status).toBe(400);
    expect((await refreshed.json()).error).toBe('invalid_refresh_token');
  });

  it('a pending step-up claim for that (iss, sub) dies: its claim token, its page and its code', async () => {
    const { provider, svc, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const step = await (await presentIdJag(base, provider.mintIdJag({ sub: 'ada' }))).json();
    expect(step.error).toBe('interaction_required');
    const code = await authorize(browser, step.claim.attempt.verification_uri);

    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'ada' })));
    expect((await completeClaim(base, step.claim.token, code)).status).not.toBe(200);
    const restart = await claimStart(base, { type: 'service_auth', claim_token: step.claim.token, login_hint: 'ada@example.com' });
    expect(restart.status).toBe(401);
    expect((await restart.json()).error).toBe('invalid_claim_token');
    expect((await browser.open(step.claim.attempt.verification_uri)).status).not.toBe(200);
    // No link was made: a fresh ID-JAG (minted after the revocation) asks the human again.
    svc.clock.advance(2000);
    expect((await presentIdJag(base, provider.mintIdJag({ sub: 'ada' }))).status).toBe(401);
  });

  it('a pending v0.7 ID-JAG claim of an anonymous registration (started by that (iss, sub)) dies too', async () => {
    const { provider, svc, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const { registration } = await accessToken(base);
    const started = await claimStart(base, { type: 'identity_assertion', claim_token: registration.claim.token, assertion: provider.mintIdJag({ sub: 'ada' }) });
    const ceremony = await started.json();
    expect(ceremony.status, JSON.stringify(ceremony)).toBe('initiated');
    const code = await authorize(browser, ceremony.claim_attempt.verification_uri);

    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'ada' })));
    const completed = await completeClaim(base, registration.claim.token, code);
    expect.soft(completed.status, 'the ceremony started by the revoked delegation must not complete').not.toBe(200);
    // …and it must not have linked the revoked provider account to ada.
    svc.clock.advance(2000);
    expect.soft((await presentIdJag(base, provider.mintIdJag({ sub: 'ada' }))).status, 'a fresh ID-JAG must need the human again').toBe(401);
  });

  it('an anonymous registration claimed with that (iss, sub)\'s ID-JAG (v0.7) is revoked too', async () => {
    const { provider, base } = await setup();
    const { registration } = await accessToken(base);
    const claimed = await (await claimStart(base, { type: 'identity_assertion', claim_token: registration.claim.token, assertion: provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }) })).json();
    expect(claimed.status).toBe('claimed');
    const token = await accessTokenFor(base, claimed.identity_assertion);
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'bob' })));
    expect((await callApi(base, token)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, claimed.identity_assertion));
  });

  it('after that revocation, a new ID-JAG of that (iss, sub) gets a registration of its own: the anonymous one stays revoked', async () => {
    const { provider, svc, base } = await setup();
    const { registration } = await accessToken(base);
    const claimed = await (await claimStart(base, { type: 'identity_assertion', claim_token: registration.claim.token, assertion: provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }) })).json();
    expect(claimed.status).toBe('claimed');
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'bob' })));
    svc.clock.advance(2000);
    const own = await registerIdJag(base, provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }));
    expect(own.id).not.toBe(registration.id);
    expect(own.type).toBe('identity_assertion');
    await expectInvalidGrant(await exchange(base, claimed.identity_assertion));
    expect((await callApi(base, await accessTokenFor(base, own.identity.assertion))).status).toBe(200);
  });

  it('a duplicate SET (same jti) gets 202 and no second effect, even after a revival', async () => {
    const { provider, svc, base } = await setup();
    const { registration } = await linked(base, provider);
    const set = provider.mintSet();
    await expectSetAccepted(await deliverSet(base, set));

    svc.clock.advance(2000);
    const revived = await registerIdJag(base, provider.mintIdJag());
    expect(revived.id).toBe(registration.id);
    const token = await accessTokenFor(base, revived.identity.assertion);

    await expectSetAccepted(await deliverSet(base, set));
    expect((await callApi(base, token)).status).toBe(200);
    expect((await exchange(base, revived.identity.assertion)).status).toBe(200);

    // A new SET (new jti) does revoke again.
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('concurrent deliveries of one SET are all acknowledged', async () => {
    const { provider, base } = await setup();
    await linked(base, provider);
    const set = provider.mintSet();
    const responses = await Promise.all(Array.from({ length: 5 }, () => deliverSet(base, set)));
    expect(responses.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
  });

  it('an unknown event type → 202 and nothing happens', async () => {
    const { provider, base } = await setup();
    const { registration, token } = await linked(base, provider);
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ events: { 'https://schemas.example/events/unknown': {} } })));
    await expectSetAccepted(
      await deliverSet(base, provider.mintSet({ events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })),
    );
    expect((await callApi(base, token)).status).toBe(200);
    expect((await exchange(base, registration.identity.assertion)).status).toBe(200);
    await registerIdJag(base, provider.mintIdJag());
  });

  it('an ID-JAG minted before the revocation is refused (reason revoked); one minted after revives the same registration', async () => {
    const { provider, svc, base } = await setup();
    const { registration, token: oldToken } = await linked(base, provider);
    const before = provider.mintIdJag();
    const unusedBefore = provider.mintIdJag();
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    await expectRefused(await presentIdJag(base, before), 'revoked');

    svc.clock.advance(2000);
    const revived = await registerIdJag(base, provider.mintIdJag());
    expect(revived.id).toBe(registration.id);
    // The revival does not forget the revocation: what was minted before it stays refused.
    await expectRefused(await presentIdJag(base, unusedBefore), 'revoked');
    const token = await accessTokenFor(base, revived.identity.assertion);
    expect((await callApi(base, token, { method: 'POST' })).status).toBe(200);
    // The credentials of before the revocation stay dead after the revival.
    await expectInvalidGrant(await exchange(base, registration.identity.assertion));
    expect((await callApi(base, oldToken)).status).toBe(401);
  });

  it('a revocation of a provider account never seen here, then consent again: its first ID-JAG makes its user and registration', async () => {
    const { provider, svc, base } = await setup();
    const before = provider.mintIdJag({ sub: 'new-person', email: 'new@example.com' });
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'new-person' })));
    svc.clock.advance(2000);
    // The revocation left a link without an account; matching used to try to make it again for ever.
    const answer = await Promise.race([
      presentIdJag(base, provider.mintIdJag({ sub: 'new-person', email: 'new@example.com' })),
      new Promise<undefined>((settle) => setTimeout(settle, 5000)),
    ]);
    expect(answer, 'no answer within 5 s').toBeDefined();
    const registration = await answer!.json();
    expect(answer!.status, JSON.stringify(registration)).toBe(200);
    const token = await accessTokenFor(base, registration.identity.assertion);
    expect((await callApi(base, token)).status).toBe(200);
    // The ID-JAGs minted before the revocation stay refused, and the next one finds the same registration.
    await expectRefused(await presentIdJag(base, before), 'revoked');
    expect((await registerIdJag(base, provider.mintIdJag({ sub: 'new-person', email: 'new@example.com' }))).id).toBe(registration.id);
  });

  it('an ID-JAG minted before the revocation cannot restart the pending step-up the revocation killed', async () => {
    const { provider, svc, base } = await setup();
    await signedIn(base, 'ada@example.com');
    const step = await (await presentIdJag(base, provider.mintIdJag({ sub: 'ada' }))).json();
    expect(step.error).toBe('interaction_required');
    const before = provider.mintIdJag({ sub: 'ada' });
    await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'ada' })));
    await expectRefused(await presentIdJag(base, before), 'revoked');
    // Fresh consent (an ID-JAG minted after the revocation) may ask the human again.
    svc.clock.advance(2000);
    expect((await presentIdJag(base, provider.mintIdJag({ sub: 'ada' }))).status).toBe(401);
  });

  it('the revocation is keyed by issuer before any fetch: a SET for a trusted provider fetches only its JWKS', async () => {
    const { provider, base, fetches } = await setup();
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    expect(fetches).toEqual([provider.jwksUri]);
    expect(provider.hits(JWKS_PATH)).toBe(1);
  });

  it('a SET with the jti of another issuer\'s SET is processed (dedupe is per issuer)', async () => {
    const a = await startProvider();
    const b = await startProvider();
    const { base } = await trustedService(start, { providers: [a, b] });
    const { token } = await linked(base, b, 'b-user', 'b@example.com');
    await expectSetAccepted(await deliverSet(base, a.mintSet({ jti: 'same', sub: 'a-user' })));
    await expectSetAccepted(await deliverSet(base, b.mintSet({ jti: 'same', sub: 'b-user' })));
    expect((await callApi(base, token)).status).toBe(401);
  });
});
