import { describe, expect, it } from 'vitest';
import { callApi, exchange, servicePerTest } from '../support/harness.ts';
import { signedIn } from '../claim/flows.ts';
import { deliverSet, presentIdJag, registerIdJag, trustedService } from './setup.ts';
import { providerPerTest } from './test-provider.ts';

/**
 * The optional direct grant (profile.md §4, `trust.tokenGrant`): a provider's ID-JAG redeemed at
 * `/oauth2/token` with jwt-bearer; and what discovery says about the Agent Verified flow.
 */
const start = servicePerTest();
const startProvider = providerPerTest();
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

async function metadata(base: string) {
  const response = await fetch(`${base}/.well-known/oauth-authorization-server`);
  expect(response.status).toBe(200);
  return response.json();
}

describe('ID-JAG redeemed at the token endpoint (trust.tokenGrant)', () => {
  it('with the option: a clean match gets an access token with the post-claim scopes', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider], trustOptions: { tokenGrant: true } });
    const response = await exchange(base, provider.mintIdJag({ sub: 'direct', email: 'direct@example.com' }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(body.token_type).toBe('Bearer');
    expect(body.scope).toBe('notes.read notes.write');
    expect(body.refresh_token).toBeUndefined();
    expect((await callApi(base, body.access_token, { method: 'POST' })).status).toBe(200);
  });

  it('with the option: the direct grant and /agent/identity share one registration per (iss, sub)', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider], trustOptions: { tokenGrant: true } });
    const registration = await registerIdJag(base, provider.mintIdJag({ sub: 'direct', email: 'direct@example.com' }));
    const token = await (await exchange(base, provider.mintIdJag({ sub: 'direct', email: 'direct@example.com' }))).json();
    const api = await (await callApi(base, token.access_token)).json();
    expect(JSON.stringify(api)).toContain(registration.id);
  });

  it('with the option: a step-up match is invalid_grant with reason interaction_required, and links nothing', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider], trustOptions: { tokenGrant: true } });
    await signedIn(base, 'ada@example.com');
    const response = await exchange(base, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toBe('invalid_grant');
    expect(body.reason).toBe('interaction_required');
    expect((await presentIdJag(base, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' }))).status).toBe(401);
  });

  it('with the option: the ID-JAG is verified as at /agent/identity (replay, audience, untrusted issuer)', async () => {
    const provider = await startProvider();
    const stranger = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider], strangers: [stranger], trustOptions: { tokenGrant: true } });
    const idJag = provider.mintIdJag();
    expect((await exchange(base, idJag)).status).toBe(200);
    const replay = await (await exchange(base, idJag)).json();
    expect([replay.error, replay.reason]).toEqual(['invalid_grant', 'replay_detected']);
    const audience = await (await exchange(base, provider.mintIdJag({ aud: [base, 'https://other.example'] }))).json();
    expect([audience.error, audience.reason]).toEqual(['invalid_grant', 'invalid_audience']);
    const stale = await (await exchange(base, provider.mintIdJag({ auth_time: provider.now() - 7200 }))).json();
    expect(stale.error).toBe('invalid_grant');
    const fetchesBefore = fetches.length;
    const untrusted = await exchange(base, stranger.mintIdJag());
    expect(untrusted.status).toBe(400);
    expect((await untrusted.json()).error).toBe('invalid_grant');
    expect(fetches.length).toBe(fetchesBefore);
    expect(stranger.requests).toEqual([]);
  });

  it('with the option: an ID-JAG of a revoked delegation, minted before the revocation, gets no token', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider], trustOptions: { tokenGrant: true } });
    await registerIdJag(base, provider.mintIdJag());
    const before = provider.mintIdJag();
    expect((await deliverSet(base, provider.mintSet())).status).toBe(202);
    const body = await (await exchange(base, before)).json();
    expect([body.error, body.reason]).toEqual(['invalid_grant', 'revoked']);
  });

  it('without the option: a provider ID-JAG at the token endpoint is invalid_grant, and nothing is fetched', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider] });
    const response = await exchange(base, provider.mintIdJag());
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toBe('invalid_grant');
    expect(fetches).toEqual([]);
    // The same kind of ID-JAG still works at the identity endpoint.
    await registerIdJag(base, provider.mintIdJag());
  });
});

describe('discovery of the Agent Verified flow', () => {
  it('with a trust list: identity_assertion, events_endpoint and assertion_types_supported are listed', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const as = await metadata(base);
    expect(as.agent_auth.identity_types_supported).toContain('identity_assertion');
    expect(as.agent_auth.events_endpoint).toBe(`${base}/agent/event/notify`);
    // v0.1 (on by default) registers an email the agent vouches for as an assertion of type verified_email.
    expect(as.agent_auth.identity_assertion.assertion_types_supported).toEqual([ID_JAG_TOKEN_TYPE, 'verified_email']);
    expect(as.agent_auth.events_supported).toEqual(['https://schemas.workos.com/events/agent/auth/identity/assertion/revoked']);
    expect(as.authorization_grant_profiles_supported).toBeUndefined();
  });

  it('authorization_grant_profiles_supported is listed only with trust.tokenGrant (and jwt-bearer with it)', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider], trustOptions: { tokenGrant: true } });
    const as = await metadata(base);
    expect(as.authorization_grant_profiles_supported).toEqual([ID_JAG_PROFILE]);
    expect(as.grant_types_supported).toContain(JWT_BEARER);
  });

  it('with an empty trust list: none of it is listed, the events endpoint is 404, ID-JAGs are issuer_not_enabled', async () => {
    const provider = await startProvider();
    const svc = await start({ trust: { issuers: [], allowLoopback: true, tokenGrant: true } });
    provider.attach({ audience: svc.base, clock: svc.clock });
    const as = await metadata(svc.base);
    expect(as.agent_auth.identity_types_supported).not.toContain('identity_assertion');
    expect(as.agent_auth.events_endpoint).toBeUndefined();
    expect(as.agent_auth.events_supported).toBeUndefined();
    // Only v0.1's verified_email is left under identity_assertion: no ID-JAG type.
    expect(as.agent_auth.identity_assertion.assertion_types_supported).toEqual(['verified_email']);
    expect(as.authorization_grant_profiles_supported).toBeUndefined();

    const events = await deliverSet(svc.base, provider.mintSet());
    expect(events.status).toBe(404);
    const registration = await presentIdJag(svc.base, provider.mintIdJag());
    expect(registration.status).toBe(400);
    expect((await registration.json()).error).toBe('issuer_not_enabled');
    expect(provider.requests).toEqual([]);
  });

  it('without trust options at all: the same as an empty trust list', async () => {
    const svc = await start();
    const as = await metadata(svc.base);
    expect(as.agent_auth.identity_types_supported).not.toContain('identity_assertion');
    expect(as.agent_auth.events_endpoint).toBeUndefined();
    expect(as.agent_auth.identity_assertion.assertion_types_supported).toEqual(['verified_email']);
    expect((await deliverSet(svc.base, 'a.b.c')).status).toBe(404);
  });

  it('auth.md names the trusted provider by its displayName', async () => {
    const provider = await startProvider({ displayName: 'Acme Agents' });
    const { base } = await trustedService(start, { providers: [provider] });
    const response = await fetch(`${base}/auth.md`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('Acme Agents');
  });
});
