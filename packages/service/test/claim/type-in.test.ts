import { describe, expect, it } from 'vitest';
import { accessTokenFor, callApi, exchange, postForm, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { expectError, expectInvalidGrant, expectNoStore } from '../http/helpers.ts';
import { Browser, parseForms } from './browser.ts';
import {
  authorize,
  CLAIM_GRANT,
  completeClaim,
  DAY,
  deny,
  jwtPayload,
  MINUTE,
  pollClaim,
  registerServiceAuth,
  SECOND,
  signedIn,
  startClaim,
  typeIn,
  wrongCode,
  type Json,
} from './flows.ts';

/** Type-in (v0.7): the user types the agent code; the agent polls the claim grant (issue 3, item 6). */

const start = servicePerTest();

async function expectPollError(response: Response, error: string): Promise<Json> {
  const body = await expectError(response, 400, error);
  expectNoStore(response);
  return body;
}

describe('type-in ceremony', () => {
  it('pending before, then the token response with identity_assertion exactly once, then invalid_grant', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const agentCode: string = registration.claim.user_code;
    const interval: number = registration.claim.interval;
    expect(interval).toBe(5);

    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending');
    clock.advance(interval * SECOND);

    const browser = await signedIn(base, 'ada@example.com');
    const linked = await typeIn(browser, registration.claim.attempt.verification_uri, agentCode);
    expect(linked.status).toBe(200);
    expect(linked.html).not.toMatch(/data-testid="page-code"/);

    const response = await pollClaim(base, registration.claim.token);
    expect(response.status).toBe(200);
    expectNoStore(response);
    const body: Json = await response.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'assertion_expires', 'expires_in', 'identity_assertion', 'scope', 'token_type']);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(3600);
    expect(body.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
    expect(Date.parse(body.assertion_expires)).toBe(clock() + 3600 * SECOND);
    expect(jwtPayload(body.identity_assertion)).toMatchObject({ sub: registration.id, email: 'ada@example.com', email_verified: true });
    expect((await callApi(base, body.access_token, { method: 'POST' })).status).toBe(200);
    // the handed-over assertion is the registration's current one
    expect((await exchange(base, body.identity_assertion)).status).toBe(200);

    clock.advance(interval * SECOND);
    await expectInvalidGrant(await pollClaim(base, registration.claim.token));
    clock.advance(interval * SECOND);
    await expectInvalidGrant(await pollClaim(base, registration.claim.token));
    // and the read-back endpoint knows it is claimed
    await expectError(await completeClaim(base, registration.claim.token, agentCode), 409, 'already_claimed');
  });

  it('an anonymous registration claimed by type-in: pre-claim tokens die, the pre-claim assertion is superseded', async () => {
    const { base, clock } = await start();
    const registration = await registerAnonymous(base);
    const preClaimToken = await accessTokenFor(base, registration.identity.assertion);
    const started = await startClaim(base, registration.claim.token, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    expect((await typeIn(browser, started.attempt.verification_uri, started.claim_attempt.user_code)).status).toBe(200);
    expect((await callApi(base, preClaimToken)).status).toBe(401);
    await expectInvalidGrant(await exchange(base, registration.identity.assertion), 'superseded');
    clock.advance(5 * SECOND);
    const response = await pollClaim(base, registration.claim.token);
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(jwtPayload(body.identity_assertion).email).toBe('ada@example.com');
    expect((await callApi(base, body.access_token, { method: 'POST' })).status).toBe(200);
  });

  it('ten concurrent polls after the claim: the tokens are handed over once', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    expect((await typeIn(browser, registration.claim.attempt.verification_uri, registration.claim.user_code)).status).toBe(200);
    clock.advance(5 * SECOND);
    const responses = await Promise.all(Array.from({ length: 10 }, () => pollClaim(base, registration.claim.token)));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1);
  });

  it('a claim typed in just before the attempt expired is still handed over to a later poll', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    clock.advance(10 * MINUTE - SECOND);
    expect((await typeIn(browser, registration.claim.attempt.verification_uri, registration.claim.user_code)).status).toBe(200);
    clock.advance(MINUTE);
    const response = await pollClaim(base, registration.claim.token);
    expect(response.status).toBe(200);
    expect(jwtPayload((await response.json()).identity_assertion).email).toBe('ada@example.com');
  });

  it('a claim completed by read-back is not handed over a second time by the claim grant', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
    // /complete returned the identity exactly once; the claim grant must not mint another one.
    const poll = await pollClaim(base, registration.claim.token);
    expect(poll.status).not.toBe(200);
    await expectInvalidGrant(poll);
  });

  it('a wrong code typed on the page shows the page again with an error; the right one then links', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const wrong = await typeIn(browser, registration.claim.attempt.verification_uri, wrongCode(registration.claim.user_code));
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('class="error"');
    expect(parseForms(wrong.html).map((f) => f.action)).toContain('/claim/code');
    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending');
    expect((await browser.submit(wrong, '/claim/code', { code: registration.claim.user_code })).status).toBe(200);
  });
});

describe('codes are bound to their attempt', () => {
  it('after a re-mint, the old agent code does not work on the new page', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const again = await startClaim(base, registration.claim.token, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    if (registration.claim.user_code !== again.claim_attempt.user_code) {
      expect((await typeIn(browser, again.attempt.verification_uri, registration.claim.user_code)).status).toBe(401);
    }
    expect((await typeIn(browser, again.attempt.verification_uri, again.claim_attempt.user_code)).status).toBe(200);
  });

  it("another registration's agent code or page code does not work", async () => {
    const { base } = await start();
    const one = await registerServiceAuth(base, 'ada@example.com');
    const two = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    if (one.claim.user_code !== two.claim.user_code) {
      expect((await typeIn(browser, two.claim.attempt.verification_uri, one.claim.user_code)).status).toBe(401);
    }
    const pageCodeOne = await authorize(browser, one.claim.attempt.verification_uri);
    const pageCodeTwo = await authorize(browser, two.claim.attempt.verification_uri);
    if (pageCodeOne !== pageCodeTwo) await expectError(await completeClaim(base, two.claim.token, pageCodeOne), 401, 'invalid_user_code');
    expect((await completeClaim(base, two.claim.token, pageCodeTwo)).status).toBe(200);
    expect((await completeClaim(base, one.claim.token, pageCodeOne)).status).toBe(200);
  });
});

describe('races between the two directions', () => {
  it('20 concurrent type-ins of the right code link the agent exactly once', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const page = await browser.open(registration.claim.attempt.verification_uri);
    const form = parseForms(page.html).find((f) => f.action === '/claim/code')!;
    const results = await Promise.all(Array.from({ length: 20 }, () => browser.post('/claim/code', { ...form.fields, code: registration.claim.user_code })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const result of results) if (result.status !== 200) expect([409, 410, 429]).toContain(result.status);
    clock.advance(5 * SECOND);
    expect((await pollClaim(base, registration.claim.token)).status).toBe(200);
  });

  it('type-in and read-back at the same moment: exactly one completes', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const pageCode = await authorize(browser, registration.claim.attempt.verification_uri);
    const page = await browser.open(registration.claim.attempt.verification_uri);
    const form = parseForms(page.html).find((f) => f.action === '/claim/code')!;
    const [typed, readBack] = await Promise.all([
      browser.post('/claim/code', { ...form.fields, code: registration.claim.user_code }),
      completeClaim(base, registration.claim.token, pageCode),
    ]);
    expect([typed.status === 200, readBack.status === 200].filter(Boolean)).toHaveLength(1);
  });
});

describe('polling the claim grant', () => {
  it('polling faster than interval → slow_down, and the stored interval grows by 5 s per violation', async () => {
    const { base, clock } = await start();
    const { claim } = await registerServiceAuth(base, 'ada@example.com');
    const poll = () => pollClaim(base, claim.token);

    await expectPollError(await poll(), 'authorization_pending'); // t = 0
    clock.advance(1 * SECOND); // t = 1
    expect((await expectPollError(await poll(), 'slow_down')).interval).toBe(10);
    clock.advance(10 * SECOND); // t = 11: the new interval is kept
    await expectPollError(await poll(), 'authorization_pending');
    clock.advance(5 * SECOND); // t = 16: 5 s is too fast now
    expect((await expectPollError(await poll(), 'slow_down')).interval).toBe(15);
    clock.advance(9 * SECOND); // t = 25: still too fast for 15 s
    expect((await expectPollError(await poll(), 'slow_down')).interval).toBe(20);
    clock.advance(19 * SECOND); // t = 44
    expect((await expectPollError(await poll(), 'slow_down')).interval).toBe(25);
    clock.advance(25 * SECOND); // t = 69
    await expectPollError(await poll(), 'authorization_pending');
    clock.advance(25 * SECOND); // t = 94: the grown interval is for good (RFC 8628 §3.5)
    await expectPollError(await poll(), 'authorization_pending');
  });

  it('once the person approved, a poll gets the tokens whatever its pace: slow_down only while pending (RFC 8628 §3.5)', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending'); // t = 0
    const browser = await signedIn(base, 'ada@example.com');
    expect((await typeIn(browser, registration.claim.attempt.verification_uri, registration.claim.user_code)).status).toBe(200);
    clock.advance(1 * SECOND); // far sooner than the 5 s interval
    const response = await pollClaim(base, registration.claim.token);
    expect(response.status, await response.clone().text()).toBe(200);
    expect((await response.json()).access_token).toMatch(/^at_/);
  });

  it('a denial or an expiry is answered at once too, not with slow_down', async () => {
    const { base, clock } = await start();
    const denied = await registerServiceAuth(base, 'ada@example.com');
    const lapsed = await registerServiceAuth(base, 'bob@example.com');
    await expectPollError(await pollClaim(base, denied.claim.token), 'authorization_pending');
    await expectPollError(await pollClaim(base, lapsed.claim.token), 'authorization_pending');
    await deny(await signedIn(base, 'ada@example.com'), denied.claim.attempt.verification_uri);
    await expectPollError(await pollClaim(base, denied.claim.token), 'access_denied');
    clock.advance(10 * MINUTE);
    await expectPollError(await pollClaim(base, lapsed.claim.token), 'expired_token');
    await expectPollError(await pollClaim(base, lapsed.claim.token), 'expired_token');
  });

  it('a client that fell behind the grown interval converges in one step by taking the interval of the answer', async () => {
    const { base, clock } = await start();
    const { claim } = await registerServiceAuth(base, 'ada@example.com');
    const poll = () => pollClaim(base, claim.token);
    await expectPollError(await poll(), 'authorization_pending');
    // Another poller of the same claim grew the interval to 15 s behind this client's back.
    clock.advance(1 * SECOND);
    await expectPollError(await poll(), 'slow_down');
    clock.advance(1 * SECOND);
    await expectPollError(await poll(), 'slow_down');
    // This client still polls every 5 s; the answer names the interval to use, and it does so.
    let interval = 5;
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) {
      clock.advance(interval * SECOND);
      const body = await (await poll()).json();
      answers.push(body.error);
      if (body.error === 'slow_down') interval = Math.max(interval + 5, body.interval);
      else expect(body.interval).toBe(interval);
    }
    expect(answers).toEqual(['slow_down', 'authorization_pending', 'authorization_pending', 'authorization_pending']);
  });

  it('polling at exactly the interval is fine', async () => {
    const { base, clock } = await start();
    const { claim } = await registerServiceAuth(base, 'ada@example.com');
    for (let i = 0; i < 5; i++) {
      await expectPollError(await pollClaim(base, claim.token), 'authorization_pending');
      clock.advance(5 * SECOND);
    }
  });

  it('after the attempt expired → expired_token; a re-minted attempt polls pending again', async () => {
    const { base, clock } = await start();
    const { claim } = await registerServiceAuth(base, 'ada@example.com');
    await expectPollError(await pollClaim(base, claim.token), 'authorization_pending');
    clock.advance(10 * MINUTE);
    await expectPollError(await pollClaim(base, claim.token), 'expired_token');
    await startClaim(base, claim.token, 'ada@example.com');
    clock.advance(5 * SECOND);
    await expectPollError(await pollClaim(base, claim.token), 'authorization_pending');
  });

  it('an unknown claim token or an expired registration → expired_token', async () => {
    const { base, clock } = await start();
    await expectPollError(await pollClaim(base, 'clm_unknown'), 'expired_token');
    const { claim } = await registerServiceAuth(base, 'ada@example.com');
    clock.advance(DAY);
    await expectPollError(await pollClaim(base, claim.token), 'expired_token');
  });

  it('a claim grant without claim_token → invalid_request', async () => {
    const { base } = await start();
    await expectPollError(await postForm(`${base}/oauth2/token`, { grant_type: CLAIM_GRANT }), 'invalid_request');
  });
});

describe('one budget of 5 wrong codes per attempt, both directions together', () => {
  it('3 wrong typed on the page and 2 wrong read back: the right agent code is then refused', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const agentCode: string = registration.claim.user_code;
    const browser = await signedIn(base, 'ada@example.com');
    const pageCode = await authorize(browser, registration.claim.attempt.verification_uri);
    for (let i = 0; i < 3; i++) expect((await typeIn(browser, registration.claim.attempt.verification_uri, wrongCode(agentCode))).status).toBe(401);
    for (let i = 0; i < 2; i++) await expectError(await completeClaim(base, registration.claim.token, wrongCode(pageCode)), 401, 'invalid_user_code');
    const sixth = await typeIn(browser, registration.claim.attempt.verification_uri, agentCode);
    expect(sixth.status).toBe(429);
    await expectError(await completeClaim(base, registration.claim.token, pageCode), 429, 'too_many_attempts');
    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending');
    clock.advance(5 * SECOND);
    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending');
  });

  it('5 wrong typed on the page: the 6th, although right, is refused', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    for (let i = 0; i < 5; i++) {
      expect((await typeIn(browser, registration.claim.attempt.verification_uri, wrongCode(registration.claim.user_code))).status).toBe(401);
    }
    const sixth = await typeIn(browser, registration.claim.attempt.verification_uri, registration.claim.user_code);
    expect(sixth.status).toBe(429);
    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending');
  });

  it('5 wrong typed on the page: the right page code read back is then refused', async () => {
    const { base } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const pageCode = await authorize(browser, registration.claim.attempt.verification_uri);
    for (let i = 0; i < 5; i++) {
      expect((await typeIn(browser, registration.claim.attempt.verification_uri, wrongCode(registration.claim.user_code))).status).toBe(401);
    }
    await expectError(await completeClaim(base, registration.claim.token, pageCode), 429, 'too_many_attempts');
  });
});

describe('a denied claim', () => {
  it('gives access_denied to a poller and claim_denied to /complete', async () => {
    const { base, clock } = await start();
    const registration = await registerServiceAuth(base, 'ada@example.com');
    await expectPollError(await pollClaim(base, registration.claim.token), 'authorization_pending');
    const browser = await signedIn(base, 'ada@example.com');
    const denied = await deny(browser, registration.claim.attempt.verification_uri);
    expect(denied.status).toBe(200);
    clock.advance(5 * SECOND);
    await expectPollError(await pollClaim(base, registration.claim.token), 'access_denied');
    await expectError(await completeClaim(base, registration.claim.token, registration.claim.user_code), 403, 'claim_denied');
    // typing the agent code after the denial changes nothing
    const page = await browser.get(registration.claim.attempt.verification_uri);
    expect(page.status).toBe(403);
    clock.advance(5 * SECOND);
    await expectPollError(await pollClaim(base, registration.claim.token), 'access_denied');
  });
});

describe('dialect switches', () => {
  it("with v0.7 off: no agent code, the claim grant is unsupported_grant_type, the page has no type-in form", async () => {
    const { base } = await start({ dialects: { 'v0.7': false } });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    expect(registration.claim.attempt.verification_uri).toBeTruthy();
    for (const key of ['user_code', 'expires_in', 'interval', 'verification_uri']) expect(registration.claim).not.toHaveProperty(key);
    expect(JSON.stringify(registration)).not.toMatch(/user_code/);
    await expectPollError(await pollClaim(base, registration.claim.token), 'unsupported_grant_type');

    const anonymous = await registerAnonymous(base);
    const started = await startClaim(base, anonymous.claim.token, 'ada@example.com');
    expect(started).not.toHaveProperty('claim_attempt');
    expect(JSON.stringify(started)).not.toMatch(/user_code/);

    const browser = await signedIn(base, 'ada@example.com');
    const page = await browser.open(registration.claim.attempt.verification_uri);
    expect(page.status).toBe(200);
    const actions = parseForms(page.html).map((f) => f.action);
    expect(actions).not.toContain('/claim/code');
    expect(actions).toContain('/claim/authorize');
    expect(page.html).not.toMatch(/name="code"/);
    const csrf = parseForms(page.html)[0]!.fields;
    expect((await browser.post('/claim/code', { ...csrf, code: '123456' })).status).toBe(404);
    // read-back still works
    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
  });

  it('with current off: /complete is 404 and the page has no Authorize button; type-in still works', async () => {
    const { base, clock } = await start({ dialects: { current: false } });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const claimToken: string = registration.claim_token;
    const agentCode: string = registration.claim.user_code;
    const verificationUri: string = registration.claim.verification_uri;
    expect(registration).not.toHaveProperty('id');
    expect((await completeClaim(base, claimToken, agentCode)).status).toBe(404);

    const browser = await signedIn(base, 'ada@example.com');
    const page = await browser.open(verificationUri);
    expect(page.status).toBe(200);
    const forms = parseForms(page.html);
    expect(forms.map((f) => f.action)).not.toContain('/claim/authorize');
    expect(forms.flatMap((f) => f.buttons).some((label) => /^Authorize$|show me a code/i.test(label))).toBe(false);
    expect((await browser.post('/claim/authorize', forms[0]!.fields)).status).toBe(404);

    await expectPollError(await pollClaim(base, claimToken), 'authorization_pending');
    expect((await browser.submit(page, '/claim/code', { code: agentCode })).status).toBe(200);
    clock.advance(5 * SECOND);
    const token = await pollClaim(base, claimToken);
    expect(token.status).toBe(200);
    expect(jwtPayload((await token.json()).identity_assertion).email).toBe('ada@example.com');
  });

  it('with current off, Deny still works and the poller gets access_denied', async () => {
    const { base, clock } = await start({ dialects: { current: false } });
    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');
    await expectPollError(await pollClaim(base, registration.claim_token), 'authorization_pending');
    expect((await deny(browser, registration.claim.verification_uri)).status).toBe(200);
    clock.advance(5 * SECOND);
    await expectPollError(await pollClaim(base, registration.claim_token), 'access_denied');
  });
});
