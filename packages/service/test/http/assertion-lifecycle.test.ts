import { describe, expect, it } from 'vitest';
import { accessTokenFor, callApi, exchange, postForm, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { DAY, expectInvalidGrant, HOUR, SECOND } from './helpers.ts';

/** When an identity assertion stops working: expiry, revocation, supersession, the claim window. */

const start = servicePerTest();

describe('expiry (3600 s lifetime, 60 s clock skew)', () => {
  it('still exchanges an assertion just inside the skew after exp', async () => {
    const { base, clock } = await start();
    const { identity } = await registerAnonymous(base);
    clock.advance(HOUR + 59 * SECOND);
    expect((await exchange(base, identity.assertion)).status).toBe(200);
  });

  it('refuses an assertion past exp plus the skew with invalid_grant expired', async () => {
    const { base, clock } = await start();
    const { identity } = await registerAnonymous(base);
    clock.advance(HOUR + 60 * SECOND + SECOND);
    await expectInvalidGrant(await exchange(base, identity.assertion), 'expired');
  });

  it('reports expires_at consistent with the lifetime', async () => {
    const { base, clock } = await start();
    const { identity } = await registerAnonymous(base);
    expect(Date.parse(identity.expires_at)).toBe(clock() + HOUR);
  });
});

describe('revoking an assertion at /oauth2/revoke', () => {
  it('supersedes the assertion and kills the access tokens issued from it at once', async () => {
    const { base } = await start();
    const { identity } = await registerAnonymous(base);
    const first = await accessTokenFor(base, identity.assertion);
    const second = await accessTokenFor(base, identity.assertion);
    expect((await callApi(base, first)).status).toBe(200);

    expect((await postForm(`${base}/oauth2/revoke`, { token: identity.assertion })).status).toBe(200);

    await expectInvalidGrant(await exchange(base, identity.assertion), 'superseded');
    expect((await callApi(base, first)).status).toBe(401);
    expect((await callApi(base, second)).status).toBe(401);
  });

  it('leaves no working access token when exchanges race with the revocation', async () => {
    const { base } = await start();
    const { identity } = await registerAnonymous(base);
    const exchanges = Array.from({ length: 20 }, () => exchange(base, identity.assertion));
    const revocations = Array.from({ length: 3 }, () => postForm(`${base}/oauth2/revoke`, { token: identity.assertion }));
    const [exchanged, revoked] = await Promise.all([Promise.all(exchanges), Promise.all(revocations)]);
    expect(revoked.map((response) => response.status)).toEqual([200, 200, 200]);
    const tokens: string[] = [];
    for (const response of exchanged) {
      if (response.status === 200) tokens.push((await response.json()).access_token);
      else await expectInvalidGrant(response, 'superseded');
    }
    for (const token of tokens) expect((await callApi(base, token)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, identity.assertion), 'superseded');
  });

  it('leaves other registrations alone', async () => {
    const { base } = await start();
    const victim = await registerAnonymous(base);
    const bystander = await registerAnonymous(base);
    const bystanderToken = await accessTokenFor(base, bystander.identity.assertion);
    await postForm(`${base}/oauth2/revoke`, { token: victim.identity.assertion });
    expect((await callApi(base, bystanderToken)).status).toBe(200);
    expect((await exchange(base, bystander.identity.assertion)).status).toBe(200);
  });
});

describe('operator revocation: service.revokeRegistration(id)', () => {
  it('refuses the registration assertion and its access tokens at once', async () => {
    const { base, service } = await start();
    const registration = await registerAnonymous(base);
    const accessToken = await accessTokenFor(base, registration.identity.assertion);
    expect((await callApi(base, accessToken)).status).toBe(200);

    expect(await service.revokeRegistration(registration.id)).toBe(true);

    await expectInvalidGrant(await exchange(base, registration.identity.assertion), 'registration_revoked');
    expect((await callApi(base, accessToken)).status).toBe(401);
    expect(await service.revokeRegistration(registration.id)).toBe(false);
  });
});

describe('the claim window of an unclaimed anonymous registration', () => {
  it('refuses the assertion once the 24 h claim window is over (default lifetimes)', async () => {
    const { base, clock } = await start();
    const { identity } = await registerAnonymous(base);
    clock.advance(DAY + SECOND);
    await expectInvalidGrant(await exchange(base, identity.assertion));
  });

  it('refuses a still-unexpired assertion of a registration whose claim window is over', async () => {
    const { base, clock } = await start({ lifetimes: { assertionSeconds: 3 * 86_400 } });
    const { identity } = await registerAnonymous(base);
    clock.advance(DAY - SECOND);
    expect((await exchange(base, identity.assertion)).status).toBe(200);
    clock.advance(2 * SECOND);
    await expectInvalidGrant(await exchange(base, identity.assertion), 'registration_expired');
  });
});
