import { describe, expect, it } from 'vitest';
import { callApi, postForm, postJson, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { authorize, completeClaim as completeReadBack, HOUR, MINUTE, signedIn, startClaim as startReadBack } from '../claim/flows.ts';
import { claim, claimEmail, complete, mailbox, refusal, registered, wrongCode } from './v01.ts';

/** issue 12: the v0.1 claim ceremony (protocol-reference §7.3): the emailed code, read back by the agent. */
const start = servicePerTest();

const anonymous = (base: string) => registered(base, { type: 'anonymous', requested_credential_type: 'api_key' });
const byEmail = (base: string, email: string, credential?: string) =>
  registered(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: email, ...(credential ? { requested_credential_type: credential } : {}) });

describe('claiming an anonymous v0.1 registration by email', () => {
  it('emails the code; the same API key then has the post-claim scopes', async () => {
    const { base } = await start();
    const agent = await anonymous(base);
    const started = await claim(base, agent.claim_token, 'Cy@Example.com');
    const body = await started.json();
    expect(started.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ registration_id: agent.registration_id, status: 'initiated' });
    expect(body.claim_attempt_id).toMatch(/^cla_/);
    expect(body.claim_attempt_id).not.toBe(agent.registration_id);
    expect(Date.parse(body.expires_at)).toBeGreaterThan(0);
    const { code } = await claimEmail(base, 'cy@example.com');

    expect((await callApi(base, agent.credential, { method: 'POST' })).status).toBe(403);
    const done = await complete(base, agent.claim_token, code);
    const claimed = await done.json();
    expect(done.status, JSON.stringify(claimed)).toBe(200);
    expect(claimed).toEqual({ registration_id: agent.registration_id, status: 'claimed', credential_type: 'api_key', scopes: ['notes.read', 'notes.write'] });
    // Upgraded in place: the key the agent already holds now writes, and belongs to the person.
    const write = await callApi(base, agent.credential, { method: 'POST' });
    expect(write.status).toBe(200);
    expect((await write.json()).principal.userId).toMatch(/^user_/);
  });

  it('the same email while the attempt is open gets the same attempt and no second email; another email replaces it', async () => {
    const { base } = await start();
    const agent = await anonymous(base);
    const first = await (await claim(base, agent.claim_token, 'dee@example.com')).json();
    const again = await (await claim(base, agent.claim_token, 'DEE@example.com')).json();
    expect(again.claim_attempt_id).toBe(first.claim_attempt_id);
    expect((await mailbox(base)).filter((m) => m.to === 'dee@example.com')).toHaveLength(1);
    const old = await claimEmail(base, 'dee@example.com');
    const other = await (await claim(base, agent.claim_token, 'eve@example.com')).json();
    expect(other.claim_attempt_id).not.toBe(first.claim_attempt_id);
    // The first address's code no longer works: only the live attempt's does.
    const stale = await refusal(await complete(base, agent.claim_token, old.code));
    expect(stale.error).toBe('otp_invalid');
    expect((await complete(base, agent.claim_token, (await claimEmail(base, 'eve@example.com')).code)).status).toBe(200);
  });

  it('a claim email that could not be sent is a 503, and asking again with the same email sends one (issue 14)', async () => {
    const sent: { to: string; text: string }[] = [];
    let down = true;
    const { base } = await start({
      mail: {
        mailer: {
          send: async (message) => {
            if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:2525');
            sent.push(message);
          },
        },
      },
    });
    const agent = await anonymous(base);
    const failed = await claim(base, agent.claim_token, 'ivy@example.com');
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('60');
    expect((await refusal(await complete(base, agent.claim_token, '123456'))).error, 'no code went out').toBe('otp_not_generated');

    down = false;
    const retried = await claim(base, agent.claim_token, 'ivy@example.com');
    expect(retried.status, 'not the unsent attempt back as if it had been emailed').toBe(200);
    expect(sent.map((message) => message.to)).toEqual(['ivy@example.com']);
    const code = /read this code to your agent: (\d{6})/.exec(sent[0]!.text)?.[1];
    expect((await complete(base, agent.claim_token, code!)).status).toBe(200);
  });

  it('refuses an email registration, a claimed one, a bad claim token and a bad email, with v0.1 names', async () => {
    const { base } = await start();
    const emailed = await byEmail(base, 'fay@example.com');
    expect(await refusal(await claim(base, emailed.claim_token, 'fay@example.com'))).toMatchObject({ status: 409, error: 'claimed_or_in_flight' });
    expect(await refusal(await claim(base, 'clm_nope', 'fay@example.com'))).toMatchObject({ status: 401, error: 'invalid_claim_token' });
    const agent = await anonymous(base);
    expect(await refusal(await claim(base, agent.claim_token, 'not-an-email'))).toMatchObject({ status: 400, error: 'invalid_request' });
    expect(await refusal(await postJson(`${base}/agent/auth/claim`, { claim_token: agent.claim_token }))).toMatchObject({ status: 400, error: 'invalid_request' });
    await claim(base, agent.claim_token, 'gus@example.com');
    expect((await complete(base, agent.claim_token, (await claimEmail(base, 'gus@example.com')).code)).status).toBe(200);
    expect(await refusal(await claim(base, agent.claim_token, 'gus@example.com'))).toMatchObject({ status: 409, error: 'claimed_or_in_flight' });
  });

  it('a registration past its claim window: claim_expired on both endpoints', async () => {
    const svc = await start();
    const agent = await anonymous(svc.base);
    await claim(svc.base, agent.claim_token, 'hal@example.com');
    const { code } = await claimEmail(svc.base, 'hal@example.com');
    svc.clock.advance(25 * HOUR);
    expect(await refusal(await claim(svc.base, agent.claim_token, 'hal@example.com'))).toMatchObject({ status: 410, error: 'claim_expired' });
    expect(await refusal(await complete(svc.base, agent.claim_token, code))).toMatchObject({ status: 410, error: 'claim_expired' });
  });
});

describe('completing a v0.1 claim', () => {
  it('otp_not_generated before any email, otp_invalid with the tries left, then too_many_attempts after five wrong codes', async () => {
    const { base } = await start();
    const agent = await anonymous(base);
    expect(await refusal(await complete(base, agent.claim_token, '123456'))).toMatchObject({ status: 400, error: 'otp_not_generated' });
    await claim(base, agent.claim_token, 'ida@example.com');
    const { code } = await claimEmail(base, 'ida@example.com');
    for (let left = 4; left >= 0; left--) {
      const wrong = await refusal(await complete(base, agent.claim_token, wrongCode(code)));
      expect(wrong).toMatchObject({ status: 401, error: 'otp_invalid', body: { tries_left: left } });
    }
    // Even the right code is refused now: the attempt is closed, a new one must be started.
    expect(await refusal(await complete(base, agent.claim_token, code))).toMatchObject({ status: 429, error: 'too_many_attempts' });
    const fresh = await (await claim(base, agent.claim_token, 'ida2@example.com')).json();
    expect(fresh.status).toBe('initiated');
    expect((await complete(base, agent.claim_token, (await claimEmail(base, 'ida2@example.com')).code)).status).toBe(200);
  });

  it('otp_expired once the attempt is over, previously_claimed after a success, invalid_claim_token for an unknown token', async () => {
    const svc = await start();
    const expired = await byEmail(svc.base, 'jon@example.com');
    const { code } = await claimEmail(svc.base, 'jon@example.com');
    svc.clock.advance(11 * MINUTE);
    expect(await refusal(await complete(svc.base, expired.claim_token, code))).toMatchObject({ status: 410, error: 'otp_expired' });

    const fine = await byEmail(svc.base, 'kim@example.com');
    const kim = await claimEmail(svc.base, 'kim@example.com');
    expect((await complete(svc.base, fine.claim_token, kim.code)).status).toBe(200);
    expect(await refusal(await complete(svc.base, fine.claim_token, kim.code))).toMatchObject({ status: 409, error: 'previously_claimed' });
    expect(await refusal(await complete(svc.base, 'clm_unknown', kim.code))).toMatchObject({ status: 401, error: 'invalid_claim_token' });
    for (const otp of ['12345', '1234567', 'abcdef', 123456]) {
      expect(await refusal(await postJson(`${svc.base}/agent/auth/claim/complete`, { claim_token: fine.claim_token, otp }))).toMatchObject({ status: 400, error: 'invalid_request' });
    }
  });

  it('at most 10 claim attempts per registration: the eleventh email is too_many_attempts, and none is sent', async () => {
    const { base } = await start();
    const agent = await anonymous(base);
    for (let i = 1; i <= 10; i++) expect((await claim(base, agent.claim_token, `try${i}@example.com`)).status).toBe(200);
    expect(await refusal(await claim(base, agent.claim_token, 'try11@example.com'))).toMatchObject({ status: 429, error: 'too_many_attempts' });
    expect((await mailbox(base)).filter((m) => m.to === 'try11@example.com')).toEqual([]);
  });

  it('20 concurrent completions with the right code: exactly one claim', async () => {
    const { base } = await start();
    const agent = await byEmail(base, 'lou@example.com', 'api_key');
    const { code } = await claimEmail(base, 'lou@example.com');
    const answers = await Promise.all(Array.from({ length: 20 }, () => complete(base, agent.claim_token, code)));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    for (const [i, body] of bodies.entries()) {
      if (answers[i]!.status !== 200) expect(['previously_claimed', 'too_many_attempts']).toContain(body.error);
    }
    expect(bodies.filter((b) => typeof b.credential === 'string')).toHaveLength(1);
  });

  it('a person who said no on the link page: claim_denied', async () => {
    const { base } = await start();
    const agent = await byEmail(base, 'max@example.com');
    const { code, link } = await claimEmail(base, 'max@example.com');
    const token = new URL(link).searchParams.get('token')!;
    const denied = await postForm(`${base}/agent/auth/claim/deny`, { token });
    expect(denied.status).toBe(200);
    expect(await refusal(await complete(base, agent.claim_token, code))).toMatchObject({ status: 403, error: 'claim_denied' });
  });
});

describe('v0.1 next to the other dialects', () => {
  it('an anonymous registration of the current dialect claimed through v0.1 gets an access token for its person', async () => {
    const { base } = await start();
    const current = await registerAnonymous(base);
    expect((await claim(base, current.claim.token, 'ned@example.com')).status).toBe(200);
    const done = await (await complete(base, current.claim.token, (await claimEmail(base, 'ned@example.com')).code)).json();
    expect(done).toMatchObject({ status: 'claimed', credential_type: 'access_token' });
    expect((await callApi(base, done.credential, { method: 'POST' })).status).toBe(200);
    // Its pre-claim assertion stopped working, as after any claim.
    const stale = await postForm(`${base}/oauth2/token`, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: current.identity.assertion });
    expect((await stale.json()).error).toBe('invalid_grant');
  });

  it('a v0.1 claim token at the current claim endpoint starts the read-back ceremony; the emailed code is not a read-back code', async () => {
    const { base } = await start();
    const agent = await anonymous(base);
    await claim(base, agent.claim_token, 'ola@example.com');
    const { code } = await claimEmail(base, 'ola@example.com');
    // The current dialect's /complete needs the person's Authorize on the signed-in page: the emailed code is refused there.
    const readBack = await postJson(`${base}/agent/identity/claim/complete`, { claim_token: agent.claim_token, user_code: code });
    expect((await readBack.json()).error).toBe('claim_not_confirmed');
    const current = await postJson(`${base}/agent/identity/claim`, { type: 'service_auth', claim_token: agent.claim_token, login_hint: 'ola@example.com' });
    expect(current.status).toBe(200);
    expect((await current.json()).attempt.verification_uri).toContain('/claim?token=');
    // That replaced the emailed attempt: its code is over.
    expect((await refusal(await complete(base, agent.claim_token, code))).error).toBe('otp_not_generated');
  });

  it('a v0.1 anonymous registration claimed by the read-back ceremony keeps its API key, upgraded', async () => {
    const { base } = await start();
    const agent = await anonymous(base);
    const started = await startReadBack(base, agent.claim_token, 'pat@example.com');
    const code = await authorize(await signedIn(base, 'pat@example.com'), started.attempt.verification_uri);
    const done = await completeReadBack(base, agent.claim_token, code);
    expect(done.status, await done.clone().text()).toBe(200);
    expect((await callApi(base, agent.credential, { method: 'POST' })).status).toBe(200);
    // And a v0.1 /complete afterwards says it is claimed.
    expect((await refusal(await complete(base, agent.claim_token, '123456'))).error).toBe('previously_claimed');
  });
});
