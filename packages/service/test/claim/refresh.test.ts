import { describe, expect, it } from 'vitest';
import { FIRST_RUN, accessTokenFor, callApi, exchange, servicePerTest } from '../support/harness.ts';
import { expectError, expectInvalidGrant, expectNoStore } from '../http/helpers.ts';
import { claimByReadBack, DAY, jwtPayload, pollClaim, refresh, type Json } from './flows.ts';

/** Rotating refresh tokens, `POST /agent/identity {type:"refresh"}` (issue 3, item 7). */

const start = servicePerTest();

async function refreshed(base: string, refreshToken: string): Promise<Json> {
  const response = await refresh(base, refreshToken);
  expect(response.status, await response.clone().text()).toBe(200);
  expectNoStore(response);
  return response.json();
}

async function expectInvalidRefresh(response: Response): Promise<Json> {
  const body = await expectError(response, 400, 'invalid_refresh_token');
  expectNoStore(response);
  return body;
}

describe('refresh', () => {
  it('rotates one for one: a new refresh token and a new assertion of the next generation; the previous assertion is superseded', async () => {
    const { base, clock } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    let assertion: string = claim.claimed.identity.assertion;
    let refreshToken: string = claim.claimed.identity.refresh_token.value;
    const seen = new Set([refreshToken]);

    for (let round = 0; round < 3; round++) {
      clock.advance(60_000);
      const body = await refreshed(base, refreshToken);
      expect(Object.keys(body).sort()).toEqual(['id', 'identity', 'type']);
      expect(body.id).toBe(claim.registration.id);
      expect(body.type).toBe('refresh');
      expect(Object.keys(body.identity).sort()).toEqual(['assertion', 'expires_at', 'refresh_token']);
      expect(Date.parse(body.identity.expires_at)).toBe(clock() + 3600_000);
      expect(Date.parse(body.identity.refresh_token.expires_at)).toBe(clock() + 30 * DAY);
      expect(seen.has(body.identity.refresh_token.value)).toBe(false);
      seen.add(body.identity.refresh_token.value);

      const before = jwtPayload(assertion);
      const after = jwtPayload(body.identity.assertion);
      expect(after.sub).toBe(before.sub);
      expect(after.gen).toBe(before.gen + 1);
      expect(after.email).toBe('ada@example.com');
      expect(after.email_verified).toBe(true);

      await expectInvalidGrant(await exchange(base, assertion), 'superseded');
      const token = await accessTokenFor(base, body.identity.assertion);
      expect((await callApi(base, token, { method: 'POST' })).status).toBe(200);

      assertion = body.identity.assertion;
      refreshToken = body.identity.refresh_token.value;
    }
  });

  it('presenting a spent token revokes the whole family and the registration’s access tokens', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'anonymous', email: 'ada@example.com' });
    const first: string = claim.claimed.identity.refresh_token.value;
    const second = await refreshed(base, first);
    const third = await refreshed(base, second.identity.refresh_token.value);
    const newest: string = third.identity.refresh_token.value;
    const accessToken = await accessTokenFor(base, third.identity.assertion);
    expect((await callApi(base, accessToken)).status).toBe(200);

    const reuse = await expectInvalidRefresh(await refresh(base, first));
    expect(reuse.reason).toBe('refresh_token_reused');

    await expectInvalidRefresh(await refresh(base, newest));
    expect((await callApi(base, accessToken)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, third.identity.assertion));
    // Reusing the one just before the newest is the same signal, and nothing comes back to life.
    await expectInvalidRefresh(await refresh(base, second.identity.refresh_token.value));
    await expectInvalidRefresh(await refresh(base, newest));
  });

  it('after refresh-token reuse, the claim token cannot revive the registration through the claim grant', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const first: string = claim.claimed.identity.refresh_token.value;
    await refreshed(base, first);
    await expectInvalidRefresh(await refresh(base, first)); // theft signal: everything is revoked
    const poll = await pollClaim(base, claim.claimToken);
    const body = await poll.json();
    expect(poll.status, JSON.stringify(body)).not.toBe(200);
    if (body.identity_assertion) await expectInvalidGrant(await exchange(base, body.identity_assertion));
    if (body.access_token) expect((await callApi(base, body.access_token)).status).toBe(401);
  });

  it('reuse of a spent token kills the newest token of the family even when nobody used the newest yet', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const first: string = claim.claimed.identity.refresh_token.value;
    const next = await refreshed(base, first);
    await expectInvalidRefresh(await refresh(base, first));
    await expectInvalidRefresh(await refresh(base, next.identity.refresh_token.value));
  });

  it('the family of one registration burns alone', async () => {
    const { base } = await start();
    const ada = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const bob = await claimByReadBack(base, { type: 'service_auth', email: 'bob@example.com' });
    const bobToken = await accessTokenFor(base, bob.claimed.identity.assertion);
    await refreshed(base, ada.claimed.identity.refresh_token.value);
    await expectInvalidRefresh(await refresh(base, ada.claimed.identity.refresh_token.value));
    expect((await callApi(base, bobToken)).status).toBe(200);
    await refreshed(base, bob.claimed.identity.refresh_token.value);
  });

  it('a refresh token expires after 30 days', async () => {
    const { base, clock } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const other = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com', browser: claim.browser });
    clock.advance(30 * DAY - 1);
    const stillFine = await refreshed(base, other.claimed.identity.refresh_token.value);
    clock.advance(1);
    await expectInvalidRefresh(await refresh(base, claim.claimed.identity.refresh_token.value));
    // the rotated one has its own 30 days
    clock.advance(30 * DAY - 2);
    await refreshed(base, stillFine.identity.refresh_token.value);
  });

  it('an unknown refresh token → 400 invalid_refresh_token', async () => {
    const { base } = await start();
    await expectInvalidRefresh(await refresh(base, 'art_unknown'));
    await expectInvalidRefresh(await refresh(base, 'x'.repeat(200)));
  });

  it('a claim token or an access token is not a refresh token', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const accessToken = await accessTokenFor(base, claim.claimed.identity.assertion);
    await expectInvalidRefresh(await refresh(base, claim.claimToken));
    await expectInvalidRefresh(await refresh(base, accessToken));
    await expectInvalidRefresh(await refresh(base, claim.claimed.identity.assertion));
  });

  it('a registration the operator revoked cannot be refreshed', async () => {
    const { base, service } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    expect(await service.revokeRegistration(claim.registration.id)).toBe(true);
    await expectInvalidRefresh(await refresh(base, claim.claimed.identity.refresh_token.value));
  });

  // Each store is named here: the first run covers them all (FIRST_RUN).
  if (FIRST_RUN) {
    it.each(['memory', 'sqlite', 'postgres'] as const)('concurrent use of one refresh token: at most one 200, then the family is dead (%s store)', async (backend) => {
      const { base } = await start({ backend });
      const claim = await claimByReadBack(base, { type: 'anonymous', email: 'ada@example.com' });
      const accessToken = await accessTokenFor(base, claim.claimed.identity.assertion);
      const token: string = claim.claimed.identity.refresh_token.value;
      const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(base, token)));
      const bodies: Json[] = await Promise.all(responses.map((r) => r.json()));
      const ok = bodies.filter((_, i) => responses[i]!.status === 200);
      expect(ok.length).toBeLessThanOrEqual(1);
      for (const [i, body] of bodies.entries()) if (responses[i]!.status !== 200) expect(body.error).toBe('invalid_refresh_token');
      if (ok.length === 1) {
        // The winner's successor belongs to the burnt family, its assertion to a dead generation.
        await expectInvalidRefresh(await refresh(base, ok[0]!.identity.refresh_token.value));
        await expectInvalidGrant(await exchange(base, ok[0]!.identity.assertion));
      }
      await expectInvalidRefresh(await refresh(base, token));
      expect((await callApi(base, accessToken)).status).toBe(401);
    });
  }
});

describe('revoking a refresh token (RFC 7009)', () => {
  it('ends the family, the registration\'s assertions and its access tokens, and answers 200', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const assertion: string = claim.claimed.identity.assertion;
    const accessToken = await accessTokenFor(base, assertion);
    const rotated = await refreshed(base, claim.claimed.identity.refresh_token.value);
    const liveToken = await accessTokenFor(base, rotated.identity.assertion);
    expect((await callApi(base, liveToken)).status).toBe(200);

    const revoke = await fetch(`${base}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: rotated.identity.refresh_token.value, token_type_hint: 'refresh_token' }),
    });
    expect(revoke.status).toBe(200);
    expectNoStore(revoke);

    await expectInvalidRefresh(await refresh(base, rotated.identity.refresh_token.value));
    await expectInvalidGrant(await exchange(base, rotated.identity.assertion), 'superseded');
    expect((await callApi(base, liveToken)).status).toBe(401);
    expect((await callApi(base, accessToken)).status).toBe(401);
  });
});
