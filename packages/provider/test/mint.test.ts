import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type AgentProvider } from '../src/index.ts';
import { afterTest } from '../../../test-support/after-test.ts';
import { ada, startFakeService, startProvider, TestClock, type FakeService } from './support.ts';

let service: FakeService;

beforeAll(async () => {
  service = await startFakeService();
});
afterAll(async () => {
  await service.close();
});

async function provider(clock = new TestClock()): Promise<{ provider: AgentProvider; issuer: string; clock: TestClock }> {
  const r = await startProvider({ clock: clock.now });
  afterTest(() => r.close());
  return { provider: r.provider, issuer: r.server.url, clock };
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe('minting ID-JAGs', () => {
  it('mints an ID-JAG that verifies against the JWKS served over HTTP, with every claim', async () => {
    const clock = new TestClock(Date.now()); // jose checks exp/iat against the real time
    const { provider: p, issuer } = await provider(clock);
    await p.grants.create('user_grace', { audience: service.url, mode: 'always' });
    const authTime = clock.seconds - 120;
    const minted = await p.mintIdJag({
      user: { id: 'user_grace', email: 'grace@example.com', emailVerified: true, phoneNumber: '+15555550100', phoneNumberVerified: true, authTime, amr: ['pwd', 'mfa'] },
      audience: service.url,
      resource: `${service.url}/api`,
      agentPlatform: 'test-platform',
      agentContextId: 'ctx_123',
    });
    expect(minted.expiresIn).toBe(300);

    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(minted.assertion, jwks, {
      typ: 'oauth-id-jag+jwt',
      algorithms: ['ES256'],
      issuer,
      audience: service.issuer,
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'oauth-id-jag+jwt' });
    expect(protectedHeader.kid).toBe(p.jwks().keys[0]!.kid);
    expect(payload).toEqual({
      iss: issuer,
      sub: 'user_grace',
      aud: service.issuer,
      client_id: `${issuer}/agent-auth.json`,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      iat: clock.seconds,
      exp: clock.seconds + 300,
      auth_time: authTime,
      email: 'grace@example.com',
      email_verified: true,
      phone_number: '+15555550100',
      phone_number_verified: true,
      amr: ['pwd', 'mfa'],
      resource: `${service.url}/api`,
      agent_platform: 'test-platform',
      agent_context_id: 'ctx_123',
    });
    expect(typeof payload.aud).toBe('string'); // one audience, never an array
  });

  it('gives every ID-JAG a fresh jti and takes a custom client_id', async () => {
    const r = await startProvider({ clientId: 'https://agents.example/client' });
    afterTest(() => r.close());
    await r.provider.grants.create('user_ada', { audience: service.url, mode: 'always' });
    const a = await r.provider.mintIdJag({ user: ada(Math.floor(Date.now() / 1000)), audience: service.url });
    const b = await r.provider.mintIdJag({ user: ada(Math.floor(Date.now() / 1000)), audience: service.url });
    const jwks = createLocalJWKSet(r.provider.jwks() as never);
    const pa = (await jwtVerify(a.assertion, jwks)).payload;
    const pb = (await jwtVerify(b.assertion, jwks)).payload;
    expect(pa.jti).not.toBe(pb.jti);
    expect(pa.client_id).toBe('https://agents.example/client');
    expect(pa).not.toHaveProperty('phone_number');
    expect(pa).not.toHaveProperty('amr');
  });

  it('consumes a once grant with one mint; an always grant is reusable', async () => {
    const { provider: p, clock } = await provider();
    await p.grants.create('user_ada', { audience: service.url, mode: 'once' });
    await p.mintIdJag({ user: ada(clock.seconds), audience: service.url });
    expect((await rejection(p.mintIdJag({ user: ada(clock.seconds), audience: service.url }))).code).toBe('consent_required');
    const [consumed] = await p.grants.list('user_ada');
    expect(consumed).toMatchObject({ mode: 'once', status: 'consumed', consumedAt: clock.ms });

    // Consenting again (upsert) makes it usable again, keeping the grant's id.
    const again = await p.grants.create('user_ada', { audience: service.url, mode: 'always' });
    expect(again.id).toBe(consumed!.id);
    for (let i = 0; i < 3; i++) await p.mintIdJag({ user: ada(clock.seconds), audience: service.url });
    expect(await p.grants.list('user_ada')).toHaveLength(1);
  });

  it('lets exactly one of many concurrent mints use a once grant', async () => {
    const { provider: p, clock } = await provider();
    await p.grants.create('user_ada', { audience: service.url, mode: 'once' });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => p.mintIdJag({ user: ada(clock.seconds), audience: service.url })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('refuses to mint without a grant, with an expired grant, or for another user', async () => {
    const { provider: p, clock } = await provider();
    const none = await rejection(p.mintIdJag({ user: ada(clock.seconds), audience: service.url }));
    expect(none.code).toBe('consent_required');
    expect(none.status).toBe(403);

    const grant = await p.grants.create('user_ada', { audience: service.url, mode: 'always' });
    expect(grant.expiresAt - grant.createdAt).toBe(86_400_000);
    expect((await rejection(p.mintIdJag({ user: { ...ada(clock.seconds), id: 'user_eve' }, audience: service.url }))).code).toBe('consent_required');

    clock.advance(86_400_000 - 1);
    await p.mintIdJag({ user: ada(clock.seconds), audience: service.url });
    clock.advance(1);
    expect((await rejection(p.mintIdJag({ user: ada(clock.seconds), audience: service.url }))).code).toBe('consent_required');
    expect((await p.grants.list('user_ada'))[0]!.status).toBe('expired');
  });

  it('refuses users without a verified email or phone, before touching the grant', async () => {
    const { provider: p, clock } = await provider();
    await p.grants.create('user_ada', { audience: service.url, mode: 'once' });
    const unverified = { id: 'user_ada', email: 'ada@example.com', emailVerified: false, authTime: clock.seconds };
    const error = await rejection(p.mintIdJag({ user: unverified, audience: service.url }));
    expect(error.code).toBe('missing_verified_email');
    expect(error.status).toBe(403);
    expect((await p.grants.list('user_ada'))[0]!.status).toBe('active');
    expect((await rejection(p.mintIdJag({ user: { id: 'user_ada', authTime: clock.seconds }, audience: service.url }))).code).toBe('missing_verified_email');

    // A verified phone is enough; the unverified email is then stated as such.
    const phoneOnly = { ...unverified, phoneNumber: '+15555550100', phoneNumberVerified: true };
    const { assertion } = await p.mintIdJag({ user: phoneOnly, audience: service.url });
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ email: 'ada@example.com', email_verified: false, phone_number_verified: true });
  });

  it('requires auth_time and well-formed optional values', async () => {
    const { provider: p, clock } = await provider();
    await p.grants.create('user_ada', { audience: service.url, mode: 'always' });
    const noAuthTime = { id: 'user_ada', email: 'ada@example.com', emailVerified: true } as never;
    expect((await rejection(p.mintIdJag({ user: noAuthTime, audience: service.url }))).code).toBe('invalid_request');
    expect((await rejection(p.mintIdJag({ user: ada(clock.seconds), audience: service.url, resource: 'not a url' }))).code).toBe('invalid_request');
    expect((await rejection(p.mintIdJag({ user: ada(clock.seconds), audience: 'ftp://example.com' }))).code).toBe('invalid_request');
  });

  it('signs with ES256 and names its key', async () => {
    const { provider: p, clock } = await provider();
    await p.grants.create('user_ada', { audience: service.url, mode: 'always' });
    const { assertion } = await p.mintIdJag({ user: ada(clock.seconds), audience: service.url });
    expect(decodeProtectedHeader(assertion)).toEqual({ kid: p.jwks().keys[0]!.kid, typ: 'oauth-id-jag+jwt', alg: 'ES256' });
  });
});
