import { describe, expect, it } from 'vitest';
import { FIRST_RUN, accessTokenFor, callApi, exchange, postJson, registerAnonymous, servicePerTest, type RunningService } from '../support/harness.ts';
import { expectError, expectInvalidGrant, expectNoStore } from '../http/helpers.ts';
import { Browser } from './browser.ts';
import {
  authorize,
  claimByReadBack,
  completeClaim,
  DAY,
  deny,
  jwtPayload,
  MINUTE,
  registerServiceAuth,
  signedIn,
  startClaim,
  wrongCode,
  type Json,
} from './flows.ts';

/** Read-back completion, `POST /agent/identity/claim/complete` (issue 3, item 5). */

const start = servicePerTest();

/** A service_auth registration whose user has pressed Authorize: the page code is known. */
async function authorized(running: RunningService, email = 'ada@example.com'): Promise<{ registration: Json; browser: Browser; code: string }> {
  const registration = await registerServiceAuth(running.base, email);
  const browser = await signedIn(running.base, email);
  const code = await authorize(browser, registration.claim.attempt.verification_uri);
  return { registration, browser, code };
}

describe('claim completion: errors', () => {
  it('unknown claim token → 400 invalid_claim', async () => {
    const { base } = await start();
    const response = await completeClaim(base, 'clm_unknown', '123456');
    await expectError(response, 400, 'invalid_claim');
    expectNoStore(response);
  });

  it('a user_code that is not six digits → 400 invalid_request', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    for (const user_code of ['12345', '1234567', 'abcdef', '12 456', 123456]) {
      await expectError(await postJson(`${base}/agent/identity/claim/complete`, { claim_token: registration.claim.token, user_code }), 400, 'invalid_request');
    }
  });

  it('before the user pressed Authorize → 409 claim_not_confirmed (even with the agent code)', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    await expectError(await completeClaim(base, registration.claim.token, '123456'), 409, 'claim_not_confirmed');
    await expectError(await completeClaim(base, registration.claim.token, registration.claim.user_code), 409, 'claim_not_confirmed');
    // Opening the page is not authorizing.
    const browser = await signedIn(base, 'ada@example.com');
    expect((await browser.open(registration.claim.attempt.verification_uri)).status).toBe(200);
    await expectError(await completeClaim(base, registration.claim.token, '123456'), 409, 'claim_not_confirmed');
  });

  it('a wrong code → 401 invalid_user_code, and the right one still works after it', async () => {
    const running = await start();
    const { registration, code } = await authorized(running);
    await expectError(await completeClaim(running.base, registration.claim.token, wrongCode(code)), 401, 'invalid_user_code');
    expect((await completeClaim(running.base, registration.claim.token, code)).status).toBe(200);
  });

  it('the agent code is not the page code: it does not complete the read-back', async () => {
    const running = await start();
    const { registration, code } = await authorized(running);
    const agentCode: string = registration.claim.user_code;
    if (agentCode !== code) await expectError(await completeClaim(running.base, registration.claim.token, agentCode), 401, 'invalid_user_code');
    expect((await completeClaim(running.base, registration.claim.token, code)).status).toBe(200);
  });

  it('the attempt expired → 410 user_code_expired, and a re-minted attempt works', async () => {
    const running = await start();
    const { registration, browser, code } = await authorized(running);
    running.clock.advance(10 * MINUTE - 1);
    const justInTime = await completeClaim(running.base, registration.claim.token, wrongCode(code));
    await expectError(justInTime, 401, 'invalid_user_code');
    running.clock.advance(1);
    await expectError(await completeClaim(running.base, registration.claim.token, code), 410, 'user_code_expired');

    const again = await startClaim(running.base, registration.claim.token, 'ada@example.com');
    const newCode = await authorize(browser, again.attempt.verification_uri);
    await expectError(await completeClaim(running.base, registration.claim.token, code === newCode ? wrongCode(code) : code), 401, 'invalid_user_code');
    expect((await completeClaim(running.base, registration.claim.token, newCode)).status).toBe(200);
  });

  it('the registration is past its claim window → 410 claim_expired', async () => {
    const running = await start();
    const { registration, code } = await authorized(running);
    running.clock.advance(DAY);
    await expectError(await completeClaim(running.base, registration.claim.token, code), 410, 'claim_expired');
  });

  it('the user denied → 403 claim_denied, whatever the code', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const denied = await deny(browser, registration.claim.attempt.verification_uri);
    expect(denied.status).toBe(200);
    await expectError(await completeClaim(base, registration.claim.token, '123456'), 403, 'claim_denied');
    await expectError(await completeClaim(base, registration.claim.token, registration.claim.user_code), 403, 'claim_denied');
    // the page cannot be used to authorize after a denial either
    expect((await browser.get(registration.claim.attempt.verification_uri)).status).toBe(403);
  });

  it('the user denied after authorizing → 403 claim_denied even with the page code', async () => {
    const running = await start();
    const { registration, browser, code } = await authorized(running);
    const claimPage = await browser.open(registration.claim.attempt.verification_uri);
    expect((await browser.submit(claimPage, '/claim/deny')).status).toBe(200);
    await expectError(await completeClaim(running.base, registration.claim.token, code), 403, 'claim_denied');
  });

  it('already claimed → 409 already_claimed, also with the same right code again', async () => {
    const { base } = await start();
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    await expectError(await completeClaim(base, claim.claimToken, claim.pageCode), 409, 'already_claimed');
    await expectError(await completeClaim(base, claim.claimToken, wrongCode(claim.pageCode)), 409, 'already_claimed');
  });
});

describe('claim completion: success', () => {
  it('answers {id, status:"claimed", identity{assertion, expires_at, refresh_token}} plus the v0.7 flat keys', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    const response = await completeClaim(base, registration.claim.token, code);
    expect(response.status).toBe(200);
    expectNoStore(response);
    const body: Json = await response.json();
    const now = clock();
    expect(Object.keys(body).sort()).toEqual(['assertion_expires', 'id', 'identity', 'identity_assertion', 'registration_id', 'registration_type', 'status'].sort());
    expect(body.id).toBe(registration.id);
    expect(body.status).toBe('claimed');
    expect(Object.keys(body.identity).sort()).toEqual(['assertion', 'expires_at', 'refresh_token']);
    expect(body.identity.assertion.split('.')).toHaveLength(3);
    expect(Date.parse(body.identity.expires_at)).toBe(now + 3600_000);
    expect(Object.keys(body.identity.refresh_token).sort()).toEqual(['expires_at', 'value']);
    expect(body.identity.refresh_token.value.length).toBeGreaterThanOrEqual(32);
    expect(Date.parse(body.identity.refresh_token.expires_at)).toBe(now + 30 * DAY);
    expect(body.registration_id).toBe(registration.id);
    expect(body.registration_type).toBe('service_auth');
    expect(body.identity_assertion).toBe(body.identity.assertion);
    expect(body.assertion_expires).toBe(body.identity.expires_at);

    const claims = jwtPayload(body.identity.assertion);
    expect(claims.sub).toBe(registration.id);
    expect(claims.email).toBe('ada@example.com');
    expect(claims.email_verified).toBe(true);
    const token = await exchange(base, body.identity.assertion);
    expect(token.status).toBe(200);
    const tokenBody = await token.json();
    expect(tokenBody.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
    expect((await callApi(base, tokenBody.access_token, { method: 'POST' })).status).toBe(200);
  });

  it('an anonymous registration: pre-claim access tokens die, the pre-claim assertion is superseded, the new one has the email and post-claim scopes', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    const preClaimAssertion: string = registration.identity.assertion;
    const preClaimTokens = [await accessTokenFor(base, preClaimAssertion), await accessTokenFor(base, preClaimAssertion)];
    for (const token of preClaimTokens) {
      expect((await callApi(base, token)).status).toBe(200);
      expect((await callApi(base, token, { method: 'POST' })).status).toBe(403); // notes.write is post-claim only
    }
    expect(jwtPayload(preClaimAssertion).email).toBeUndefined();

    const started = await startClaim(base, registration.claim.token, 'Ada@Example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const code = await authorize(browser, started.attempt.verification_uri);
    const response = await completeClaim(base, registration.claim.token, code);
    expect(response.status).toBe(200);
    const body: Json = await response.json();
    expect(body.registration_type).toBe('anonymous');

    for (const token of preClaimTokens) expect((await callApi(base, token)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, preClaimAssertion), 'superseded');

    expect(jwtPayload(body.identity.assertion)).toMatchObject({ sub: registration.id, email: 'ada@example.com', email_verified: true });
    const token = await exchange(base, body.identity.assertion);
    expect(token.status).toBe(200);
    const tokenBody = await token.json();
    expect(tokenBody.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
    expect((await callApi(base, tokenBody.access_token, { method: 'POST' })).status).toBe(200);
    const principal = (await (await callApi(base, tokenBody.access_token)).json()).principal;
    expect(JSON.stringify(principal)).toContain(registration.id);
  });

  it('binds to the user who authorized on the page (an anonymous registration names no account)', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    const started = await startClaim(base, registration.claim.token, 'ada@example.com');
    // The page enforces the hint: only Ada can authorize, and the assertion is hers.
    const bob = await signedIn(base, 'bob@example.com');
    expect((await bob.get(started.attempt.verification_uri)).status).toBe(403);
    const ada = await signedIn(base, 'ada@example.com');
    const code = await authorize(ada, started.attempt.verification_uri);
    const body = await (await completeClaim(base, registration.claim.token, code)).json();
    expect(jwtPayload(body.identity.assertion).email).toBe('ada@example.com');
  });
});

describe('claim completion: brute force and races', () => {
  it('the 6th code on an attempt is refused even when correct (5 wrong, then the right one → 429)', async () => {
    const running = await start();
    const { registration, browser, code } = await authorized(running);
    for (let i = 0; i < 5; i++) {
      await expectError(await completeClaim(running.base, registration.claim.token, wrongCode(code)), 401, 'invalid_user_code');
    }
    const sixth = await completeClaim(running.base, registration.claim.token, code);
    await expectError(sixth, 429, 'too_many_attempts');
    expectNoStore(sixth);
    await expectError(await completeClaim(running.base, registration.claim.token, code), 429, 'too_many_attempts');
    // Authorizing again on the same attempt does not reset the budget.
    const again = await authorize(browser, registration.claim.attempt.verification_uri);
    await expectError(await completeClaim(running.base, registration.claim.token, again), 429, 'too_many_attempts');
    // A new attempt has a fresh budget.
    const next = await startClaim(running.base, registration.claim.token, 'ada@example.com');
    const nextCode = await authorize(browser, next.attempt.verification_uri);
    expect((await completeClaim(running.base, registration.claim.token, nextCode)).status).toBe(200);
  });

  it('concurrent wrong guesses cannot get more than 5 comparisons', async () => {
    const running = await start();
    const { registration, code } = await authorized(running);
    const guesses = Array.from({ length: 30 }, (_, i) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0'));
    const responses = await Promise.all(guesses.map((guess) => completeClaim(running.base, registration.claim.token, guess)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(25);
    await expectError(await completeClaim(running.base, registration.claim.token, code), 429, 'too_many_attempts');
  });

  // Each store is named here: the first run covers them all (FIRST_RUN).
  if (FIRST_RUN) {
    it.each(['memory', 'sqlite', 'postgres'] as const)('20 concurrent /complete calls with the right code give exactly one 200 (%s store)', async (backend) => {
      const running = await start({ backend });
      const { registration, code } = await authorized(running);
      const responses = await Promise.all(Array.from({ length: 20 }, () => completeClaim(running.base, registration.claim.token, code)));
      const bodies = await Promise.all(responses.map((r) => r.json()));
      const winners = responses.filter((r) => r.status === 200);
      expect(winners).toHaveLength(1);
      for (const [i, response] of responses.entries()) {
        if (response.status === 200) continue;
        expect([409, 429], JSON.stringify(bodies[i])).toContain(response.status);
        expect(['already_claimed', 'too_many_attempts']).toContain(bodies[i].error);
      }
      // Exactly one refresh token family exists: the winner's works, once.
      const winner = bodies[responses.findIndex((r) => r.status === 200)];
      const refreshed = await postJson(`${running.base}/agent/identity`, { type: 'refresh', refresh_token: winner.identity.refresh_token.value });
      expect(refreshed.status).toBe(200);
    });
  }
});
