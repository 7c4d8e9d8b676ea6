import { describe, expect, it } from 'vitest';
import { exchange, servicePerTest } from '../support/harness.ts';
import { jwtPayload } from '../claim/flows.ts';
import { expectRefused, presentIdJag, registerIdJag, trustedService, type Json } from './setup.ts';
import { CIMD_PATH, JWKS_PATH, providerPerTest, type TestProvider } from './test-provider.ts';

/**
 * The ID-JAG's claims: lifetime with the clock skew (60 s), required claims, auth_time freshness
 * (401 login_required with max_age), the amr policy, a verified email or phone, and the client_id
 * policy with CIMD (standards.md A1, A8, A9, A15 "Clock skew", "Client binding").
 */
const start = servicePerTest();
const startProvider = providerPerTest();
const SKEW = 60;

async function setup(options: { entry?: Json; trustOptions?: Json } = {}) {
  const provider = await startProvider();
  const { svc, base, fetches } = await trustedService(start, { providers: [provider], entry: () => options.entry ?? {}, trustOptions: options.trustOptions });
  return { provider, svc, base, fetches, now: () => provider.now() };
}

async function expectLoginRequired(response: Response, reason: string, maxAge = 3600): Promise<Json> {
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(401);
  expect(body.error).toBe('login_required');
  expect(body.reason).toBe(reason);
  expect(body.max_age).toBe(maxAge);
  expect(typeof body.error_description).toBe('string');
  const challenge = response.headers.get('www-authenticate') ?? '';
  expect(challenge.startsWith(`AgentAuth error="login_required", max_age="${maxAge}", error_description="`), challenge).toBe(true);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return body;
}

describe('lifetime (exp, iat, nbf) with the clock skew', () => {
  it('an ID-JAG expired beyond the skew is refused; one expired just inside it is accepted', async () => {
    const { provider, base, now } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ iat: now() - 400, exp: now() - SKEW - 1, auth_time: now() - 500 })), 'expired');
    await registerIdJag(base, provider.mintIdJag({ iat: now() - 400, exp: now() - SKEW + 1, auth_time: now() - 500 }));
  });

  it('an iat further in the future than the skew is refused; just inside it is accepted', async () => {
    const { provider, base, now } = await setup();
    const refused = await presentIdJag(base, provider.mintIdJag({ iat: now() + SKEW + 5, exp: now() + 600 }));
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toBe('invalid_request');
    await registerIdJag(base, provider.mintIdJag({ iat: now() + SKEW - 5, exp: now() + 600 }));
  });

  it('a future nbf (beyond the skew) is refused', async () => {
    const { provider, base, now } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ nbf: now() + 300 })), 'not_yet_valid');
    await registerIdJag(base, provider.mintIdJag({ nbf: now() + SKEW - 5 }));
  });

  it.each(['jti', 'sub', 'exp', 'iat'])('an ID-JAG without %s is refused', async (claim) => {
    const { provider, base } = await setup();
    const response = await presentIdJag(base, provider.mintIdJag({ [claim]: undefined }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toBe('invalid_request');
  });

  it.each([
    ['jti', ''],
    ['sub', ''],
    ['jti', 42],
    ['sub', 42],
  ])('an ID-JAG whose %s is %j is refused', async (claim, value) => {
    const { provider, base } = await setup();
    const response = await presentIdJag(base, provider.mintIdJag({ [claim]: value }));
    expect(response.status).toBe(400);
  });
});

describe('auth_time freshness → 401 login_required', () => {
  it('a missing auth_time', async () => {
    const { provider, base } = await setup();
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ auth_time: undefined })), 'auth_time_missing');
  });

  it('an auth_time that is not a number', async () => {
    const { provider, base, now } = await setup();
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ auth_time: String(now()) })), 'auth_time_missing');
  });

  it('a stale auth_time (older than 3600 s + skew); one just inside is accepted', async () => {
    const { provider, base, now } = await setup();
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ auth_time: now() - 3600 - SKEW - 1 })), 'auth_time_too_old');
    await registerIdJag(base, provider.mintIdJag({ auth_time: now() - 3600 - SKEW + 1 }));
  });

  it('an auth_time more than the skew in the future; one just inside is accepted', async () => {
    const { provider, base, now } = await setup();
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ auth_time: now() + SKEW + 1 })), 'auth_time_in_future');
    await registerIdJag(base, provider.mintIdJag({ auth_time: now() + SKEW - 1 }));
  });

  it('the freshness rule applies to a known delegation too', async () => {
    const { provider, base, now } = await setup();
    await registerIdJag(base, provider.mintIdJag());
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ auth_time: now() - 7200 })), 'auth_time_too_old');
  });

  it('max_age follows trust.maxAuthAgeSeconds', async () => {
    const { provider, base, now } = await setup({ trustOptions: { maxAuthAgeSeconds: 600 } });
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ auth_time: now() - 600 - SKEW - 1 })), 'auth_time_too_old', 600);
    await registerIdJag(base, provider.mintIdJag({ auth_time: now() - 600 }));
  });

  it('the error description in WWW-Authenticate is escaped (no raw quotes or backslashes)', async () => {
    const { provider, base } = await setup();
    const response = await presentIdJag(base, provider.mintIdJag({ auth_time: undefined }));
    const challenge = response.headers.get('www-authenticate') ?? '';
    const description = /error_description="(.*)"$/.exec(challenge)?.[1] ?? '';
    expect(description.length).toBeGreaterThan(0);
    expect(description).not.toMatch(/["\\]/);
  });
});

describe('requireAmr', () => {
  it('requireAmr [mfa]: no amr or an amr without mfa → login_required; with mfa → accepted', async () => {
    const { provider, base } = await setup({ entry: { requireAmr: ['mfa'] } });
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({})), 'amr_policy');
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ amr: ['pwd'] })), 'amr_policy');
    await expectLoginRequired(await presentIdJag(base, provider.mintIdJag({ amr: 'mfa' })), 'amr_policy');
    const body = await registerIdJag(base, provider.mintIdJag({ amr: ['pwd', 'mfa'] }));
    expect(jwtPayload(body.identity.assertion).amr).toEqual(['pwd', 'mfa']);
  });
});

describe('a verified email or phone number', () => {
  it.each([
    ['email_verified false', { email_verified: false }],
    ['email_verified missing', { email_verified: undefined }],
    ['email_verified "true" (a string)', { email_verified: 'true' }],
    ['no email at all', { email: undefined, email_verified: undefined }],
    ['a phone number that is not verified', { email_verified: false, phone_number: '+15555550100', phone_number_verified: false }],
  ])('%s and no verified phone → missing_verified_email', async (_name, claims) => {
    const { provider, base } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag(claims)), 'missing_verified_email');
  });

  it('a verified phone only is accepted (a new user, known by the phone)', async () => {
    const { provider, base } = await setup();
    const body = await registerIdJag(base, provider.mintIdJag({ email: undefined, email_verified: undefined, phone_number: '+15555550100', phone_number_verified: true }));
    const claims = jwtPayload(body.identity.assertion);
    expect(claims.phone_number).toBe('+15555550100');
    expect(claims.email).toBeUndefined();
    expect((await exchange(base, body.identity.assertion)).status).toBe(200);
  });

  it('an unverified email next to a verified phone is not recorded as the user\'s email', async () => {
    const { provider, base } = await setup();
    const body = await registerIdJag(base, provider.mintIdJag({ email: 'unverified@example.com', email_verified: false, phone_number: '+15555550101', phone_number_verified: true }));
    const claims = jwtPayload(body.identity.assertion);
    expect(claims.email).toBeUndefined();
    expect(claims.phone_number).toBe('+15555550101');
  });
});

describe('client_id', () => {
  it('a missing client_id is refused', async () => {
    const { provider, base } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: undefined })), 'invalid_client_id');
  });

  it('a client_id that is neither the issuer nor a URL is refused when no clientIds are configured', async () => {
    const { provider, base } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: 'some-agent' })), 'invalid_client_id');
  });

  it('with clientIds configured, a client_id not on the list is refused (the issuer included) and a listed one is accepted', async () => {
    const { provider, base } = await setup({ entry: { clientIds: ['agent-app-1'] } });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: 'agent-app-2' })), 'invalid_client_id');
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: provider.issuer })), 'invalid_client_id');
    await registerIdJag(base, provider.mintIdJag({ client_id: 'agent-app-1' }));
  });

  const badUrls: [string, (p: TestProvider) => string][] = [
    ['http on a non-loopback host', () => 'http://agents.example/agent-auth.json'],
    ['dot segments', (p) => `${p.origin}/x/../agent-auth.json`],
    ['a single dot segment', (p) => `${p.origin}/./agent-auth.json`],
    ['percent-encoded dot segments', (p) => `${p.origin}/x/%2E%2E/agent-auth.json`],
    ['a fragment', (p) => `${p.cimdUrl}#frag`],
    ['userinfo', (p) => p.cimdUrl.replace('http://', 'http://user:secret@')],
    ['a user name only', (p) => p.cimdUrl.replace('http://', 'http://user@')],
    ['a query', (p) => `${p.cimdUrl}?x=1`],
    ['no path', (p) => `${p.origin}/`],
    ['a backslash', (p) => `${p.origin}\\agent-auth.json`],
  ];
  it.each(badUrls)('a CIMD client_id URL with %s is refused without a fetch', async (_name, url) => {
    const { provider, base, fetches } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: url(provider) })), 'invalid_client_id');
    expect(provider.hits(CIMD_PATH)).toBe(0);
    expect(fetches).toEqual([provider.jwksUri]);
  });

  it('a valid CIMD document (client_id = its URL, jwks_uri = the provider\'s JWKS) is accepted', async () => {
    const { provider, base, fetches } = await setup();
    await registerIdJag(base, provider.mintIdJag({ client_id: provider.cimdUrl }));
    expect(provider.hits(CIMD_PATH)).toBe(1);
    expect(fetches).toEqual([provider.jwksUri, provider.cimdUrl]);
  });

  it('a CIMD document whose jwks_uri differs from the provider\'s JWKS is refused', async () => {
    const { provider, base } = await setup();
    provider.cimd = { jwks_uri: `${provider.origin}/other-jwks` };
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: provider.cimdUrl })), 'invalid_client_id');
    expect(provider.hits(CIMD_PATH)).toBe(1);
  });

  it('a CIMD document without jwks_uri is refused', async () => {
    const { provider, base } = await setup();
    provider.cimd = { jwks_uri: undefined };
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: provider.cimdUrl })), 'invalid_client_id');
  });

  it('a CIMD document that names another client_id is refused', async () => {
    const { provider, base } = await setup();
    provider.cimd = { client_id: `${provider.origin}/someone-else.json` };
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: provider.cimdUrl })), 'invalid_client_id');
  });

  it('a CIMD document with a shared-secret auth method or a client_secret is refused', async () => {
    const { provider, base } = await setup();
    provider.cimd = { token_endpoint_auth_method: 'client_secret_basic' };
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: provider.cimdUrl })), 'invalid_client_id');
    provider.cimd = { client_secret: 'shh' };
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: provider.cimdUrl })), 'invalid_client_id');
  });

  it('a CIMD document hosted elsewhere, naming its host\'s own keys, does not bind a trusted provider\'s ID-JAG', async () => {
    const provider = await startProvider();
    const other = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ client_id: other.cimdUrl })), 'invalid_client_id');
    expect(other.hits(CIMD_PATH)).toBe(1);
    expect(other.hits(JWKS_PATH)).toBe(0);
  });
});
