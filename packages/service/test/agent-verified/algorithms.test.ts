import { describe, expect, it, vi } from 'vitest';
import { createMemoryStore, createService, silentLogger } from '@authmd/service';
import { servicePerTest } from '../support/harness.ts';
import { expectRefused, presentIdJag, registerIdJag, trustedService } from './setup.ts';
import { JWKS_PATH, providerPerTest, type Alg } from './test-provider.ts';

/**
 * standards.md A15 "Algorithm confusion" (RFC 8725 §3.1/§3.2, the Hono CVEs): the verification
 * method comes from the issuer's allow-list and the key, never from the token's `alg`; and the
 * `kid` rows: an unknown kid costs one coalesced refetch, then a refusal.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

async function setup(entry: Record<string, unknown> = {}) {
  const provider = await startProvider();
  const { svc, base, fetches } = await trustedService(start, { providers: [provider], entry: () => entry });
  return { provider, svc, base, fetches };
}

describe('ID-JAG algorithms', () => {
  it.each(['ES256', 'RS256', 'PS256', 'EdDSA'] as Alg[])('a valid %s ID-JAG is accepted with the default allow-list', async (alg) => {
    const { provider, base } = await setup();
    const body = await registerIdJag(base, provider.mintIdJag({ sub: `sub-${alg}`, email: `${alg.toLowerCase()}@example.com` }, { key: alg }));
    expect(body.type).toBe('identity_assertion');
  });

  it.each(['none', 'None', 'NONE'])('alg "%s" with an empty signature is refused', async (alg) => {
    const { provider, base } = await setup();
    const token = provider.mintIdJag({}, { header: { alg, kid: undefined }, signature: 'none' });
    expect(token.endsWith('.')).toBe(true);
    await expectRefused(await presentIdJag(base, token), 'malformed');
  });

  it.each(['none', 'None', 'NONE'])('alg "%s" with a non-empty signature segment is refused by the allow-list', async (alg) => {
    const { provider, base, fetches } = await setup();
    const token = provider.mintIdJag({}, { header: { alg }, signature: 'garbage' });
    await expectRefused(await presentIdJag(base, token), 'unsupported_algorithm');
    expect(fetches).toEqual([]);
  });

  // How often a key is imported (once per fetched key set) is counted in trust/jws-verify.test.ts.
  it('verifies ID-JAGs on node:crypto: no WebCrypto key import or verification per ID-JAG', async () => {
    const { provider, base } = await setup();
    await registerIdJag(base, provider.mintIdJag({ sub: 'warm', email: 'warm@example.com' }));
    const imports = vi.spyOn(globalThis.crypto.subtle, 'importKey');
    const verifies = vi.spyOn(globalThis.crypto.subtle, 'verify');
    try {
      for (let i = 0; i < 5; i++) await registerIdJag(base, provider.mintIdJag({ sub: `user-${i}`, email: `user-${i}@example.com` }));
      expect(imports).not.toHaveBeenCalled();
      expect(verifies).not.toHaveBeenCalled();
    } finally {
      imports.mockRestore();
      verifies.mockRestore();
    }
  });

  it('the same claims unsigned are refused while the signed ID-JAG is accepted (control)', async () => {
    const { provider, base } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ jti: 'j-1' }, { header: { alg: 'none' }, signature: 'garbage' })), 'unsupported_algorithm');
    await registerIdJag(base, provider.mintIdJag({ jti: 'j-1' }));
  });

  describe('HS256 signed with the provider\'s public key bytes', () => {
    const variants: [string, (p: Awaited<ReturnType<typeof startProvider>>) => { kid: string; secret: string }][] = [
      ['the EC key as SPKI PEM', (p) => ({ kid: p.keys.ES256.kid, secret: p.keys.ES256.pem })],
      ['the RSA key as SPKI PEM', (p) => ({ kid: p.keys.RS256.kid, secret: p.keys.RS256.pem })],
      ['the EC key as its JWK JSON', (p) => ({ kid: p.keys.ES256.kid, secret: JSON.stringify(p.keys.ES256.jwk) })],
      ['the RSA key as its JWK JSON', (p) => ({ kid: p.keys.RS256.kid, secret: JSON.stringify(p.keys.RS256.jwk) })],
    ];
    it.each(variants)('%s is refused', async (_name, pick) => {
      const { provider, base, fetches } = await setup();
      const { kid, secret } = pick(provider);
      const token = provider.mintIdJag({}, { header: { alg: 'HS256', kid }, signature: { hmac: secret } });
      await expectRefused(await presentIdJag(base, token), 'unsupported_algorithm');
      expect(fetches).toEqual([]);
    });

    it('a token HMAC-signed with the provider\'s own shared secret is refused too', async () => {
      const { provider, base } = await setup();
      const token = provider.mintIdJag({}, { header: { alg: 'HS256', kid: undefined }, signature: { hmac: provider.hmacSecret } });
      await expectRefused(await presentIdJag(base, token), 'unsupported_algorithm');
    });
  });

  it('an alg not on the issuer\'s allow-list is refused even with a valid signature', async () => {
    const { provider, base, fetches } = await setup({ algorithms: ['ES256'] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({}, { key: 'RS256' })), 'unsupported_algorithm');
    expect(fetches).toEqual([]);
    await registerIdJag(base, provider.mintIdJag({}, { key: 'ES256' }));
  });

  it('case variants of an allowed alg are refused', async () => {
    const { provider, base } = await setup();
    await expectRefused(await presentIdJag(base, provider.mintIdJag({}, { header: { alg: 'es256' } })), 'unsupported_algorithm');
  });

  it('an RSA key under an ES256 header (an RS256 signature labelled ES256) is refused', async () => {
    const { provider, base } = await setup();
    const token = provider.mintIdJag({}, { key: 'RS256', header: { alg: 'ES256' } });
    const body = await expectRefused(await presentIdJag(base, token), 'unknown_key');
    expect(body.error_description).not.toMatch(/signature does not verify/);
  });

  it('an RSA key published without alg, under an ES256 header, is refused', async () => {
    const { provider, base } = await setup();
    provider.jwkOverrides.set(provider.keys.RS256.kid, { alg: undefined });
    const token = provider.mintIdJag({}, { key: 'RS256', header: { alg: 'ES256' } });
    await expectRefused(await presentIdJag(base, token), 'unknown_key');
    // Control: with its own algorithm the same key works.
    await registerIdJag(base, provider.mintIdJag({}, { key: 'RS256' }));
  });

  it('an RSA key published mislabelled as alg ES256 does not verify an ES256-headed RSA signature', async () => {
    const { provider, base } = await setup();
    provider.jwkOverrides.set(provider.keys.RS256.kid, { alg: 'ES256' });
    const token = provider.mintIdJag({}, { key: 'RS256', header: { alg: 'ES256' } });
    const response = await presentIdJag(base, token);
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toBe('invalid_request');
  });

  it.each([['HS256'], ['none'], ['RS1']])('the trust list cannot be configured to accept %s', async (alg) => {
    const provider = await startProvider();
    const options = {
      issuer: 'https://service.example',
      scopes: { preClaim: ['notes.read'], postClaim: ['notes.read'] },
      store: createMemoryStore(),
      logger: silentLogger,
      maintenanceIntervalSeconds: 0,
      trust: { issuers: [provider.trustEntry({ algorithms: [alg] }) as never], allowLoopback: true },
    };
    await expect(createService(options)).rejects.toThrow(/asymmetric JWS algorithm/);
  });

  it('a JWK published for PS256 does not verify an RS256-labelled token of the same RSA key', async () => {
    const { provider, base } = await setup();
    // The PS256 key signs PKCS#1 v1.5 (RS256) and the header says RS256 with the PS256 key's kid.
    const token = provider.mintIdJag({}, { key: { ...provider.keys.PS256, alg: 'RS256' }, header: { alg: 'RS256', kid: provider.keys.PS256.kid } });
    const response = await presentIdJag(base, token);
    expect(response.status).toBe(400);
    expect((await response.json()).reason).toMatch(/^(unknown_key|unsupported_algorithm)$/);
  });

  it('an unknown crit header parameter is refused', async () => {
    const { provider, base } = await setup();
    const token = provider.mintIdJag({}, { header: { crit: ['urn:example:must-understand'], 'urn:example:must-understand': true } });
    const response = await presentIdJag(base, token);
    expect(response.status).toBe(400);
    expect((await response.json()).error).toBe('invalid_request');
  });

  it('a signature by another key under a published kid is refused as invalid_signature', async () => {
    const { provider, base } = await setup();
    const stranger = provider.addKey('ES256', 'not-published');
    const token = provider.mintIdJag({}, { key: stranger, header: { kid: provider.keys.ES256.kid } });
    await expectRefused(await presentIdJag(base, token), 'invalid_signature');
  });
});

describe('ID-JAG kid', () => {
  // The cache refetches for an unknown kid at most once per 30 s (a flood of made-up kids cannot make
  // the service hammer the provider); each test moves past that since the first fetch.
  const COOLDOWN_MS = 31_000;

  it('an unknown kid costs exactly one refetch of the JWKS, then the ID-JAG is refused', async () => {
    const { provider, svc, base } = await setup();
    await registerIdJag(base, provider.mintIdJag());
    expect(provider.hits(JWKS_PATH)).toBe(1);
    svc.clock.advance(COOLDOWN_MS);
    const unknown = provider.addKey('ES256', 'unknown-kid');
    await expectRefused(await presentIdJag(base, provider.mintIdJag({}, { key: unknown })), 'unknown_key');
    expect(provider.hits(JWKS_PATH)).toBe(2);
    // Another made-up kid right away does not make the service fetch again.
    await expectRefused(await presentIdJag(base, provider.mintIdJag({}, { key: unknown, header: { kid: 'made-up' } })), 'unknown_key');
    expect(provider.hits(JWKS_PATH)).toBe(2);
  });

  it('a kid the provider rotated in since the last fetch is found by the one refetch', async () => {
    const { provider, svc, base } = await setup();
    await registerIdJag(base, provider.mintIdJag());
    svc.clock.advance(COOLDOWN_MS);
    const rotated = provider.addKey('ES256', 'rotated-in');
    provider.published = [rotated.kid];
    await registerIdJag(base, provider.mintIdJag({}, { key: rotated }));
    expect(provider.hits(JWKS_PATH)).toBe(2);
    // The key that was rotated out is no longer accepted once the new set is in.
    const response = await presentIdJag(base, provider.mintIdJag({}, { key: 'ES256' }));
    expect(response.status).toBe(400);
  });

  it('concurrent ID-JAGs with unknown kids share one refetch', async () => {
    const { provider, svc, base } = await setup();
    await registerIdJag(base, provider.mintIdJag());
    expect(provider.hits(JWKS_PATH)).toBe(1);
    svc.clock.advance(COOLDOWN_MS);
    provider.jwksDelayMs = 200;
    const unknown = provider.addKey('ES256', 'unknown-concurrent');
    const responses = await Promise.all(Array.from({ length: 10 }, () => presentIdJag(base, provider.mintIdJag({}, { key: unknown }))));
    for (const response of responses) await expectRefused(response, 'unknown_key');
    expect(provider.hits(JWKS_PATH)).toBe(2);
  });

  it('concurrent first ID-JAGs share one JWKS fetch', async () => {
    const { provider, base } = await setup();
    provider.jwksDelayMs = 200;
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) => presentIdJag(base, provider.mintIdJag({ sub: `u-${i}`, email: `u${i}@example.com` }))),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(provider.hits(JWKS_PATH)).toBe(1);
  });
});
