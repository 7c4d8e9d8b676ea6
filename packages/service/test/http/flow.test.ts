import { describe, expect, it } from 'vitest';
import { accessTokens, auditEvents, keyrings, registrations } from '../../src/schema.ts';
import { accessTokenFor, callApi, exchange, postForm, postJson, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { decodeJwt, expectError, expectNoStore, json, sha256b64url } from './helpers.ts';

const CURRENT_KEYS = ['id', 'type', 'identity', 'scopes', 'claim'];
const FLAT_KEYS = [
  'registration_id',
  'registration_type',
  'identity_assertion',
  'assertion_expires',
  'pre_claim_scopes',
  'post_claim_scopes',
  'claim_token',
  'claim_url',
  'claim_token_expires',
];

const start = servicePerTest();

describe('the store under the suite', () => {
  // Vitest runs this file on memory, then again in its `postgres` project (vitest.config.ts).
  it('is the one the Vitest project names: memory, or PostgreSQL in the postgres project', async ({ task }) => {
    const { service } = await start();
    expect(service.store.kind).toBe(task.file.projectName === 'postgres' ? 'postgres' : 'memory');
  });
});

describe('the anonymous flow', () => {
  it('registers, exchanges, calls the API, and a revoked access token is refused at the very next call', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    const accessToken = await accessTokenFor(base, registration.identity.assertion);
    expect((await callApi(base, accessToken)).status).toBe(200);

    const revoke = await postForm(`${base}/oauth2/revoke`, { token: accessToken });
    expect(revoke.status).toBe(200);
    expect((await callApi(base, accessToken)).status).toBe(401);
  });

  it('refuses a revoked token at once even when its validation was cached just before', async () => {
    const { base } = await start({ tokenCacheSeconds: 60 });
    const registration = await registerAnonymous(base);
    const accessToken = await accessTokenFor(base, registration.identity.assertion);
    for (let i = 0; i < 3; i++) expect((await callApi(base, accessToken)).status).toBe(200);
    await postForm(`${base}/oauth2/revoke`, { token: accessToken });
    const refused = await callApi(base, accessToken);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('refuses an access token once its expires_in has passed', async () => {
    const { base, clock } = await start();
    const registration = await registerAnonymous(base);
    const accessToken = await accessTokenFor(base, registration.identity.assertion);
    clock.advance(3599 * 1000);
    expect((await callApi(base, accessToken)).status).toBe(200);
    clock.advance(2 * 1000);
    expect((await callApi(base, accessToken)).status).toBe(401);
  });

  it('gives two different working access tokens for the same assertion exchanged twice', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    const first = await accessTokenFor(base, registration.identity.assertion);
    const second = await accessTokenFor(base, registration.identity.assertion);
    expect(first).not.toBe(second);
    expect((await callApi(base, first)).status).toBe(200);
    expect((await callApi(base, second)).status).toBe(200);
  });

  it('answers the exchange with a Bearer token, expires_in and the pre-claim scopes', async () => {
    const { base } = await start();
    const registration = await registerAnonymous(base);
    const response = await exchange(base, registration.identity.assertion);
    expect(response.status).toBe(200);
    expectNoStore(response);
    const body = await json(response);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(3600);
    expect(body.scope).toBe('notes.read');
    expect(body.access_token).toMatch(/^at_/);
    expect(body).not.toHaveProperty('refresh_token');
  });
});

describe('the registration envelope (profile.md §1 superset)', () => {
  it('carries the current keys and the v0.7 flat keys with the same values', async () => {
    const { base, clock } = await start();
    const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
    expect(response.status).toBe(200);
    const body = await json(response);
    for (const key of [...CURRENT_KEYS, ...FLAT_KEYS]) expect(body, key).toHaveProperty(key);

    expect(body.id).toMatch(/^reg_/);
    expect(body.type).toBe('anonymous');
    expect(typeof body.identity.assertion).toBe('string');
    expect(new Date(body.identity.expires_at).toISOString()).toBe(body.identity.expires_at);
    expect(body.scopes).toEqual({ pre_claim: ['notes.read'], post_claim: ['notes.read', 'notes.write'] });
    expect(body.claim.token).toMatch(/^clm_/);
    expect(new Date(body.claim.expires_at).toISOString()).toBe(body.claim.expires_at);
    expect(body.claim.url).toBe(`${base}/agent/identity/claim`);

    const { header, payload } = decodeJwt(body.identity.assertion);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'oauth-id-jag+jwt' });
    expect(payload).toMatchObject({ iss: base, aud: base, sub: body.id, gen: 0 });
    expect(payload.exp * 1000).toBe(Date.parse(body.identity.expires_at));
    expect(Date.parse(body.identity.expires_at)).toBe(clock() + 3600 * 1000);
    expect(Date.parse(body.claim.expires_at)).toBe(clock() + 24 * 3600 * 1000);

    expect(body.registration_id).toBe(body.id);
    expect(body.registration_type).toBe(body.type);
    expect(body.identity_assertion).toBe(body.identity.assertion);
    expect(body.assertion_expires).toBe(body.identity.expires_at);
    expect(body.pre_claim_scopes).toEqual(body.scopes.pre_claim);
    expect(body.post_claim_scopes).toEqual(body.scopes.post_claim);
    expect(body.claim_token).toBe(body.claim.token);
    expect(body.claim_url).toBe(body.claim.url);
    expect(body.claim_token_expires).toBe(body.claim.expires_at);
  });

  it('carries only the current keys when v0.7 is off', async () => {
    const { base } = await start({ dialects: { 'v0.7': false } });
    const body = await registerAnonymous(base);
    expect(Object.keys(body).sort()).toEqual([...CURRENT_KEYS].sort());
    expect((await exchange(base, body.identity.assertion)).status).toBe(200);
  });

  it('carries only the flat keys when current is off', async () => {
    const { base } = await start({ dialects: { current: false } });
    const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(Object.keys(body).sort()).toEqual([...FLAT_KEYS].sort());
    expect((await exchange(base, body.identity_assertion)).status).toBe(200);
  });
});

describe('registration methods that are off or not offered', () => {
  it('refuses anonymous registration with 403 anonymous_not_enabled when it is switched off', async () => {
    const { base } = await start({ methods: { anonymous: false } });
    const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
    await expectError(response, 403, 'anonymous_not_enabled');
    expectNoStore(response);
  });

  it('refuses service_auth registration with 403 service_auth_not_enabled when it is switched off', async () => {
    const { base } = await start({ methods: { serviceAuth: false } });
    const response = await postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: 'user@example.com' });
    await expectError(response, 403, 'service_auth_not_enabled');
    expectNoStore(response);
  });

  it.each([
    [{ type: 'identity_assertion', assertion_type: 'urn:ietf:params:oauth:token-type:id-jag', assertion: 'a.b.c' }, 400, 'issuer_not_enabled'],
    [{ type: 'refresh', refresh_token: 'art_nothing' }, 400, 'invalid_refresh_token'],
  ])('answers %j with %i %s', async (body, status, error) => {
    const { base } = await start();
    const response = await postJson(`${base}/agent/identity`, body);
    await expectError(response, status, error);
    expectNoStore(response);
  });
});

describe('responses that carry secrets are not cached', () => {
  it('sends no-store and Pragma: no-cache on registration, token and their errors', async () => {
    const { base } = await start();
    const registration = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
    expectNoStore(registration);
    const { identity } = await registration.json();
    const responses = [
      await exchange(base, identity.assertion),
      await exchange(base, 'not-a-jwt'),
      await postJson(`${base}/agent/identity`, { type: 'nope' }),
      await postJson(`${base}/agent/identity`, '{oops'),
      await postForm(`${base}/oauth2/token`, { grant_type: 'nope' }),
    ];
    for (const response of responses) expectNoStore(response);
  });
});

describe('secrets at rest', () => {
  it('keeps neither the claim token nor the access token in the store, only their time part and their hashes', async () => {
    const { base, service } = await start();
    const registration = await registerAnonymous(base);
    const accessToken = await accessTokenFor(base, registration.identity.assertion);
    const claimToken: string = registration.claim.token;

    const registrationRow = await service.store.get(registrations, registration.id);
    const tokenRows = await service.store.findMany(accessTokens, 'registration_id', registration.id);
    const events = await service.store.findMany(auditEvents, 'registration_id', registration.id);
    const keyring = await service.store.get(keyrings, 'service');
    // The time part (10 base-32 digits after the prefix) orders the keys; the rest is the whole token's SHA-256.
    expect(registrationRow?.claim_token_hash).toBe(claimToken.slice(4, 14) + sha256b64url(claimToken));
    expect(tokenRows.map((row) => row.token_hash)).toEqual([accessToken.slice(3, 13) + sha256b64url(accessToken)]);
    expect(events.length).toBeGreaterThan(0);

    const dump = JSON.stringify({ registrationRow, tokenRows, events, keyring });
    expect(dump).not.toContain(claimToken);
    expect(dump).not.toContain(claimToken.slice(4));
    expect(dump).not.toContain(accessToken);
    expect(dump).not.toContain(accessToken.slice(3));
  });
});
