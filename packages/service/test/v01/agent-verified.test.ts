import { describe, expect, it } from 'vitest';
import { callApi, servicePerTest } from '../support/harness.ts';
import { trustedService } from '../agent-verified/setup.ts';
import { providerPerTest } from '../agent-verified/test-provider.ts';
import { claimEmail, complete, refusal, register, registered } from './v01.ts';

/** issue 12: v0.1 registration with a provider's ID-JAG, and the provider's logout token at /agent/auth/revoke. */
const start = servicePerTest();
const startProvider = providerPerTest();
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';

function logout(base: string, token: string, contentType = 'application/logout+jwt'): Promise<Response> {
  return fetch(`${base}/agent/auth/revoke`, { method: 'POST', headers: { 'content-type': contentType }, body: token });
}

describe('v0.1 identity_assertion with an ID-JAG', () => {
  it('returns an access token (default) or an API key directly, with the post-claim scopes', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const token = await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag() });
    expect(token).toMatchObject({ registration_type: 'agent-provider', credential_type: 'access_token', scopes: ['notes.read', 'notes.write'] });
    expect(token.credential).toMatch(/^at_/);
    expect(token.claim_token).toBeUndefined();
    const key = await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag(), requested_credential_type: 'api_key' });
    expect(key).toMatchObject({ registration_id: token.registration_id, credential_type: 'api_key', credential_expires: null });
    for (const credential of [token.credential, key.credential]) expect((await callApi(base, credential, { method: 'POST' })).status).toBe(200);
  });

  it('refuses a replayed ID-JAG and an untrusted issuer, as on the other dialects', async () => {
    const provider = await startProvider();
    const stranger = await startProvider({ displayName: 'Stranger' });
    const { base } = await trustedService(start, { providers: [provider], strangers: [stranger] });
    const idJag = provider.mintIdJag();
    await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: idJag });
    const replay = await refusal(await register(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: idJag }));
    expect(replay).toMatchObject({ status: 400, error: 'invalid_request', body: { reason: 'replay_detected' } });
    const untrusted = await refusal(await register(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: stranger.mintIdJag() }));
    expect(untrusted).toMatchObject({ status: 400, error: 'issuer_not_enabled' });
  });
});

describe('v0.1 first link of a provider account to an existing account', () => {
  it('emails the account\'s owner a code; the 401 carries the claim handle; the code read back gives the credential', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    // Ada has an account already (she claimed an email registration).
    const own = await registered(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'ada@example.com' });
    expect((await complete(base, own.claim_token, (await claimEmail(base, 'ada@example.com')).code)).status).toBe(200);

    const first = await register(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag(), requested_credential_type: 'api_key' });
    const body = await first.json();
    expect(first.status, JSON.stringify(body)).toBe(401);
    expect(body).toMatchObject({ error: 'interaction_required', registration_type: 'agent-provider', claim_url: `${base}/agent/auth/claim` });
    expect(body.claim_token).toMatch(/^clm_/);
    expect(body.credential).toBeUndefined();
    expect(body.error_description).toContain('/agent/auth/claim/complete');
    const email = await claimEmail(base, 'ada@example.com');
    const done = await complete(base, body.claim_token, email.code);
    const claimed = await done.json();
    expect(done.status, JSON.stringify(claimed)).toBe(200);
    expect(claimed).toMatchObject({ registration_id: body.registration_id, status: 'claimed', credential_type: 'api_key' });
    expect((await callApi(base, claimed.credential, { method: 'POST' })).status).toBe(200);
    // Linked now: the next ID-JAG of that provider account gets its credential at once.
    const next = await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag() });
    expect(next).toMatchObject({ registration_id: body.registration_id, credential_type: 'access_token' });
  });
});

describe('POST /agent/auth/revoke (logout+jwt)', () => {
  it('a trusted provider\'s logout token ends every credential of that account, at once; a redelivery revokes nothing more', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const token = await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag() });
    const key = await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag(), requested_credential_type: 'api_key' });
    const other = await registered(base, { type: 'identity_assertion', assertion_type: ID_JAG, assertion: provider.mintIdJag({ sub: 'user-2', email: 'bo@example.com' }) });
    const logoutToken = provider.mintSet({}, { header: { typ: 'logout+jwt' } });
    const answer = await logout(base, logoutToken);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ revoked: 1 });
    for (const credential of [token.credential, key.credential]) expect((await callApi(base, credential)).status).toBe(401);
    expect((await callApi(base, other.credential)).status).toBe(200);
    expect(await (await logout(base, logoutToken)).json()).toEqual({ revoked: 0 });
  });

  it('refuses the wrong content type, an empty body, a SET typ, an untrusted issuer and a bad signature with 400 {error, message}', async () => {
    const provider = await startProvider();
    const stranger = await startProvider({ displayName: 'Stranger' });
    const { base } = await trustedService(start, { providers: [provider], strangers: [stranger] });
    const cases: [Response, string][] = [
      [await logout(base, provider.mintSet({}, { header: { typ: 'logout+jwt' } }), 'application/json'), 'invalid_request'],
      [await logout(base, ''), 'invalid_request'],
      [await logout(base, 'not.a.jwt'), 'invalid_request'],
      [await logout(base, provider.mintSet()), 'invalid_request'],
      [await logout(base, stranger.mintSet({}, { header: { typ: 'logout+jwt' } })), 'invalid_issuer'],
      [await logout(base, provider.mintSet({}, { header: { typ: 'logout+jwt' }, signature: 'garbage' })), 'authentication_failed'],
      [await logout(base, provider.mintSet({ aud: 'https://elsewhere.example' }, { header: { typ: 'logout+jwt' } })), 'invalid_audience'],
    ];
    for (const [response, error] of cases) {
      const body = await response.json();
      expect({ status: response.status, error: body.error }, JSON.stringify(body)).toEqual({ status: 400, error });
      expect(body.message).toEqual(expect.any(String));
    }
  });
});
