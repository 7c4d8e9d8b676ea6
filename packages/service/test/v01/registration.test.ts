import { describe, expect, it } from 'vitest';
import { callApi, postForm, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { accessTokens } from '../../src/schema.ts';
import { claimEmail, complete, mailbox, refusal, register, registered } from './v01.ts';

/** issue 12: `POST /agent/auth` (protocol-reference §7.2) and the API key it hands out. */
const start = servicePerTest();

describe('v0.1 anonymous registration', () => {
  it('returns an API key at once, with the pre-claim scopes, and a claim handle', async () => {
    const { base } = await start();
    const body = await registered(base, { type: 'anonymous', requested_credential_type: 'api_key' });
    expect(body).toMatchObject({
      registration_type: 'anonymous',
      credential_type: 'api_key',
      credential_expires: null,
      scopes: ['notes.read'],
      claim_url: `${base}/agent/auth/claim`,
      post_claim_scopes: ['notes.read', 'notes.write'],
    });
    expect(body.registration_id).toMatch(/^reg_/);
    expect(body.credential).toMatch(/^sk_[A-Za-z0-9_-]{40,}$/);
    expect(body.claim_token).toMatch(/^clm_/);
    expect(Date.parse(body.claim_token_expires)).toBeGreaterThan(Date.now() - 86_400_000 * 365);
    // No assertion: v0.1 hands out the credential itself.
    expect(body.identity).toBeUndefined();
    expect(body.identity_assertion).toBeUndefined();
  });

  it('the API key is a Bearer credential for protect(): reads, cannot write before a claim', async () => {
    const { base } = await start();
    const { credential } = await registered(base, { type: 'anonymous' });
    const read = await callApi(base, credential);
    expect(read.status).toBe(200);
    expect((await read.json()).principal).toMatchObject({ scopes: ['notes.read'], expiresAt: null });
    const write = await callApi(base, credential, { method: 'POST' });
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toContain('insufficient_scope');
  });

  it('keeps the API key only as a hash', async () => {
    const svc = await start();
    const { credential, registration_id } = await registered(svc.base, { type: 'anonymous' });
    const rows = await svc.service.store.findMany(accessTokens, 'registration_id', registration_id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'api_key', expires_at: null, revoked_at: null, scope: 'notes.read' });
    expect(JSON.stringify(rows)).not.toContain(credential);
    expect(JSON.stringify(rows)).not.toContain(credential.slice(3));
  });

  it('an API key revoked by RFC 7009, or by the operator, is refused on the next request', async () => {
    const svc = await start();
    const first = await registered(svc.base, { type: 'anonymous' });
    expect((await callApi(svc.base, first.credential)).status).toBe(200);
    expect((await postForm(`${svc.base}/oauth2/revoke`, { token: first.credential })).status).toBe(200);
    expect((await callApi(svc.base, first.credential)).status).toBe(401);

    const second = await registered(svc.base, { type: 'anonymous' });
    expect((await callApi(svc.base, second.credential)).status).toBe(200);
    expect(await svc.service.revokeRegistration(second.registration_id)).toBe(true);
    expect((await callApi(svc.base, second.credential)).status).toBe(401);
  });

  it('refuses a credential type anonymous registration does not issue, and bad bodies, as JSON with v0.1 names', async () => {
    const { base } = await start();
    for (const [body, status, error] of [
      [{ type: 'anonymous', requested_credential_type: 'access_token' }, 400, 'unsupported_credential_type'],
      [{ type: 'anonymous', requested_credential_type: 7 }, 400, 'invalid_request'],
      [{ type: 'sorcery' }, 400, 'invalid_request'],
      [{ type: 'identity_assertion', assertion_type: 'password', assertion: 'x' }, 400, 'invalid_request'],
      [{ type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'not an email' }, 400, 'invalid_request'],
      [{ type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'ada\u0000@example.com' }, 400, 'invalid_request'],
      [{ type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'ada@exam\u007fple.com' }, 400, 'invalid_request'],
      [{ type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'ada@example.com', requested_credential_type: 'password' }, 400, 'unsupported_credential_type'],
      [[1, 2], 400, 'invalid_request'],
    ] as const) {
      const refused = await refusal(await register(base, body));
      expect({ status: refused.status, error: refused.error }, JSON.stringify(body)).toEqual({ status, error });
      expect(refused.body.error_description).toEqual(expect.any(String));
    }
    const notJson = await fetch(`${base}/agent/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":' });
    expect(notJson.status).toBe(400);
    expect((await notJson.json()).error).toBe('invalid_request');
  });

  it('says verified_email_not_enabled and anonymous_not_enabled in v0.1 words when the method is off', async () => {
    const { base } = await start({ methods: { anonymous: false, serviceAuth: false } });
    expect((await refusal(await register(base, { type: 'anonymous' }))).error).toBe('anonymous_not_enabled');
    const email = await refusal(await register(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'ada@example.com' }));
    expect({ status: email.status, error: email.error }).toEqual({ status: 403, error: 'verified_email_not_enabled' });
  });

  it('counts v0.1 registrations in the same rate limit as the other dialects, and says rate_limited', async () => {
    const { base } = await start({ rateLimits: { anonymous: { perIp: 2, perService: 100 } } });
    expect((await register(base, { type: 'anonymous' })).status).toBe(200);
    await registerAnonymous(base);
    const third = await refusal(await register(base, { type: 'anonymous' }));
    expect({ status: third.status, error: third.error }).toEqual({ status: 429, error: 'rate_limited' });
    expect(third.body.retry_after).toBeGreaterThan(0);
  });
});

describe('v0.1 verified_email registration', () => {
  it('emails the person a code at once; nothing usable until the agent sends it back', async () => {
    const { base } = await start();
    const body = await registered(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'Ada@Example.com', requested_credential_type: 'api_key' });
    expect(body).toMatchObject({ registration_type: 'email-verification', claim_url: `${base}/agent/auth/claim`, post_claim_scopes: ['notes.read', 'notes.write'] });
    expect(body.credential).toBeUndefined();
    const email = await claimEmail(base, 'ada@example.com');
    expect(email.count).toBe(1);
    const done = await complete(base, body.claim_token, email.code);
    const claimed = await done.json();
    expect(done.status, JSON.stringify(claimed)).toBe(200);
    expect(claimed).toMatchObject({ registration_id: body.registration_id, status: 'claimed', credential_type: 'api_key', credential_expires: null, scopes: ['notes.read', 'notes.write'] });
    expect(claimed.credential).toMatch(/^sk_/);
    expect((await callApi(base, claimed.credential, { method: 'POST' })).status).toBe(200);
  });

  it('hands out an access token by default, which expires', async () => {
    const { base } = await start();
    const body = await registered(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'bea@example.com' });
    const done = await (await complete(base, body.claim_token, (await claimEmail(base, 'bea@example.com')).code)).json();
    expect(done).toMatchObject({ status: 'claimed', credential_type: 'access_token' });
    expect(done.credential).toMatch(/^at_/);
    expect(Date.parse(done.credential_expires)).toBeGreaterThan(0);
    expect((await callApi(base, done.credential, { method: 'POST' })).status).toBe(200);
  });

  it('sends no more claim emails to one address than its hourly budget, whoever registers', async () => {
    const { base } = await start({ limits: { signInCodesPerHour: 2, signInCodesPerIpPerHour: 1_000_000 } });
    const asks = [];
    for (let i = 0; i < 3; i++) asks.push(await register(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'flood@example.com' }));
    expect(asks.map((r) => r.status)).toEqual([200, 200, 429]);
    expect((await asks[2]!.json()).error).toBe('rate_limited');
    expect((await mailbox(base)).filter((m) => m.to === 'flood@example.com')).toHaveLength(2);
    // Another address is not affected.
    expect((await register(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'other@example.com' })).status).toBe(200);
  });

  it('one client cannot spend an address\'s whole budget: the person\'s own agent still gets its email', async () => {
    const svc = await start({ limits: { signInCodesPerHour: 5, signInCodesPerAddressAndIpPerHour: 2, signInCodesPerIpPerHour: 1_000_000 } });
    const from = (clientIp: string) =>
      svc.service.handler(
        new Request(`${svc.base}/agent/auth`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'victim@example.com' }),
        }),
        { clientIp },
      );
    const attacker = [];
    for (let i = 0; i < 4; i++) attacker.push((await from('127.0.0.2')).status);
    expect(attacker).toEqual([200, 200, 429, 429]);
    expect((await from('127.0.0.1')).status).toBe(200);
    expect((await mailbox(svc.base)).filter((m) => m.to === 'victim@example.com')).toHaveLength(3);
  });
});
