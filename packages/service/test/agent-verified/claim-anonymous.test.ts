import { describe, expect, it } from 'vitest';
import { accessToken, callApi, exchange, servicePerTest } from '../support/harness.ts';
import { authorize, claimStart, completeClaim, jwtPayload, registerServiceAuth, signedIn } from '../claim/flows.ts';
import { expectNotLinkedTo, expectRefused, presentIdJag, registerIdJag, trustedService, tryToConfirmAs } from './setup.ts';
import { providerPerTest } from './test-provider.ts';

/**
 * v0.7 (protocol-reference §3): an anonymous registration claimed with an ID-JAG,
 * `POST /agent/identity/claim {type:"identity_assertion", claim_token, assertion}`.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

async function setup() {
  const provider = await startProvider({ displayName: 'Acme Agents' });
  const { svc, base } = await trustedService(start, { providers: [provider] });
  return { provider, svc, base };
}

function claimWithIdJag(base: string, claimToken: string, assertion: string): Promise<Response> {
  return claimStart(base, { type: 'identity_assertion', claim_token: claimToken, assertion });
}

describe('claiming an anonymous registration with an ID-JAG', () => {
  it('a clean match claims at once: 200 status "claimed"; pre-claim credentials die; the new assertion has the post-claim scopes', async () => {
    const { provider, base } = await setup();
    const { token: preClaimToken, registration } = await accessToken(base);
    expect((await callApi(base, preClaimToken)).status).toBe(200);

    const response = await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe('claimed');
    expect(body.registration_id).toBe(registration.id);
    expect(body.registration_type).toBe('identity_assertion');
    expect(typeof body.identity_assertion).toBe('string');
    expect(body.assertion_expires).toBe(body.identity.expires_at);
    expect(body.identity.assertion).toBe(body.identity_assertion);
    expect(jwtPayload(body.identity_assertion).email).toBe('bob@example.com');

    expect((await callApi(base, preClaimToken)).status).toBe(401);
    const old = await exchange(base, registration.identity.assertion);
    expect(old.status).toBe(400);
    expect((await old.json()).error).toBe('invalid_grant');

    const fresh = await exchange(base, body.identity_assertion);
    expect(fresh.status).toBe(200);
    expect((await fresh.json()).scope).toBe('notes.read notes.write');
  });

  it('after the claim, the provider account is linked: its next ID-JAG is a clean 200 with the same registration', async () => {
    const { provider, base } = await setup();
    const { registration } = await accessToken(base);
    expect((await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }))).status).toBe(200);
    const clean = await registerIdJag(base, provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }));
    expect(clean.id).toBe(registration.id);
  });

  it('the claim token is spent by the claim', async () => {
    const { provider, base } = await setup();
    const { registration } = await accessToken(base);
    expect((await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'bob', email: 'bob@example.com' }))).status).toBe(200);
    const again = await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'mallory', email: 'mallory@example.com' }));
    expect(again.status).not.toBe(200);
  });

  it('a conflict with an existing account: 200 with a claim_attempt ceremony and registration_type identity_assertion', async () => {
    const { provider, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const { token: preClaimToken, registration } = await accessToken(base);
    const response = await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe('initiated');
    expect(body.registration_id).toBe(registration.id);
    expect(body.registration_type).toBe('identity_assertion');
    expect(body.claim_attempt_id).toMatch(/^cla_/);
    expect(body.claim_attempt.user_code).toMatch(/^\d{6}$/);
    expect(body.claim_attempt.verification_uri).toBe(body.attempt.verification_uri);
    expect(body.identity_assertion).toBeUndefined();
    // Nothing is bound yet: the pre-claim token still has only its pre-claim scope.
    expect((await callApi(base, preClaimToken, { method: 'POST' })).status).toBe(403);

    const page = await browser.open(body.claim_attempt.verification_uri);
    expect(page.status, page.html).toBe(200);
    expect(page.html).toContain('Link Acme Agents to your account?');

    const code = await authorize(browser, body.claim_attempt.verification_uri);
    const completed = await completeClaim(base, registration.claim.token, code);
    expect(completed.status).toBe(200);
    const claimed = await completed.json();
    expect(jwtPayload(claimed.identity.assertion).email).toBe('ada@example.com');
    // The provider account is linked to ada now.
    const clean = await registerIdJag(base, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' }));
    expect(clean.id).toBe(registration.id);
  });

  it('after an ID-JAG conflict, switching the claim to another email does not link the provider account to that account', async () => {
    const { provider, base } = await setup();
    await signedIn(base, 'ada@example.com');
    const mallory = await signedIn(base, 'mallory@example.com');
    const { registration } = await accessToken(base);
    const conflict = await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' }));
    expect((await conflict.json()).status).toBe('initiated');
    await tryToConfirmAs(base, mallory, registration.claim.token, 'mallory@example.com');
    // Mallory may claim the anonymous registration for herself, but ada's provider account must not lead into her account.
    await expectNotLinkedTo(await presentIdJag(base, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' })), 'mallory@example.com');
  });

  it('a non-anonymous (service_auth) registration cannot be claimed with an ID-JAG: 409', async () => {
    const { provider, base } = await setup();
    const registration = await registerServiceAuth(base, 'carol@example.com');
    const response = await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ sub: 'carol', email: 'carol@example.com' }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(409);
  });

  it('an unknown claim token: 401 invalid_claim_token', async () => {
    const { provider, base } = await setup();
    const response = await claimWithIdJag(base, 'clm_unknown', provider.mintIdJag());
    expect(response.status).toBe(401);
    expect((await response.json()).error).toBe('invalid_claim_token');
  });

  it('the ID-JAG is verified like any other: a stale auth_time → 401 login_required; a replay → replay_detected', async () => {
    const { provider, base } = await setup();
    const { registration } = await accessToken(base);
    const stale = await claimWithIdJag(base, registration.claim.token, provider.mintIdJag({ auth_time: provider.now() - 7200 }));
    expect(stale.status).toBe(401);
    expect((await stale.json()).error).toBe('login_required');
    expect(stale.headers.get('www-authenticate')).toMatch(/^AgentAuth error="login_required", max_age="3600"/);

    const used = provider.mintIdJag({ sub: 'someone', email: 'someone@example.com' });
    await registerIdJag(base, used);
    await expectRefused(await claimWithIdJag(base, registration.claim.token, used), 'replay_detected');
  });

  it('an untrusted issuer\'s ID-JAG cannot claim: issuer_not_enabled, no fetch', async () => {
    const provider = await startProvider();
    const stranger = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider], strangers: [stranger] });
    const { registration } = await accessToken(base);
    const response = await claimWithIdJag(base, registration.claim.token, stranger.mintIdJag());
    expect(response.status).toBe(400);
    expect((await response.json()).error).toBe('issuer_not_enabled');
    expect(fetches).toEqual([]);
    expect(stranger.requests).toEqual([]);
  });
});
