import { describe, expect, it } from 'vitest';
import { accessToken, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { expectRefused, presentIdJag, registerIdJag, trustedService } from './setup.ts';
import { CIMD_PATH, JWKS_PATH, METADATA_PATH, providerPerTest } from './test-provider.ts';

/**
 * standards.md A15 "Token-type confusion", "Audience injection / mix-up" and "Revocation oracle /
 * DoS" (untrusted issuers refused before any key fetch), and where a trusted issuer's keys come from.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

async function expectUntrusted(response: Response): Promise<void> {
  const body = await response.json();
  expect({ status: response.status, error: body.error }, JSON.stringify(body)).toEqual({ status: 400, error: 'issuer_not_enabled' });
}

describe('the issuer is checked against the trust list before anything is fetched', () => {
  it('an untrusted issuer is refused with issuer_not_enabled and zero fetches', async () => {
    const trusted = await startProvider();
    const stranger = await startProvider({ displayName: 'Stranger' });
    const { base, fetches } = await trustedService(start, { providers: [trusted], strangers: [stranger] });
    await expectUntrusted(await presentIdJag(base, stranger.mintIdJag()));
    expect(fetches).toEqual([]);
    expect(stranger.requests).toEqual([]);
    expect(trusted.requests).toEqual([]);
  });

  it('an untrusted issuer naming its keys in jku / x5u is not fetched either', async () => {
    const trusted = await startProvider();
    const stranger = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [trusted], strangers: [stranger] });
    const token = stranger.mintIdJag({}, { header: { jku: stranger.jwksUri, x5u: `${stranger.origin}/cert.pem` } });
    await expectUntrusted(await presentIdJag(base, token));
    expect(fetches).toEqual([]);
    expect(stranger.requests).toEqual([]);
  });

  it('a trusted iss with a jku header pointing at another key set: the jku is never dereferenced', async () => {
    const trusted = await startProvider();
    const stranger = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [trusted], strangers: [stranger] });
    const token = trusted.mintIdJag({}, { key: stranger.keys.ES256, header: { jku: stranger.jwksUri } });
    const response = await presentIdJag(base, token);
    expect(response.status).toBe(400);
    expect(stranger.requests).toEqual([]);
    expect(fetches.every((url) => url.startsWith(trusted.origin))).toBe(true);
  });

  it('iss with a trailing slash that the trust list does not have is untrusted (no fetch)', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider] });
    await expectUntrusted(await presentIdJag(base, provider.mintIdJag({ iss: `${provider.issuer}/` })));
    expect(fetches).toEqual([]);
    expect(provider.requests).toEqual([]);
    // Control: exactly as listed, it is accepted.
    await registerIdJag(base, provider.mintIdJag());
  });

  it('a trust list entry with a trailing slash does not match an iss without one (no fetch)', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider], entry: (p) => ({ issuer: `${p.issuer}/` }) });
    await expectUntrusted(await presentIdJag(base, provider.mintIdJag()));
    expect(fetches).toEqual([]);
    expect(provider.requests).toEqual([]);
    // Control: the entry's exact spelling is trusted.
    await registerIdJag(base, provider.mintIdJag({ iss: `${provider.issuer}/`, client_id: `${provider.issuer}/` }));
  });

  it('iss in another case or with a default port is untrusted', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider] });
    await expectUntrusted(await presentIdJag(base, provider.mintIdJag({ iss: provider.issuer.replace('http://', 'HTTP://') })));
    await expectUntrusted(await presentIdJag(base, provider.mintIdJag({ iss: provider.issuer.replace('127.0.0.1', 'localhost') })));
    expect(fetches).toEqual([]);
  });

  it('a trusted issuer\'s pinned JWKS is fetched through the configured fetcher', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider] });
    await registerIdJag(base, provider.mintIdJag());
    expect(fetches).toEqual([provider.jwksUri]);
    expect(provider.hits(JWKS_PATH)).toBe(1);
  });

  it('without a pinned jwksUri the keys are found from the issuer\'s RFC 8414 metadata, through the configured fetcher', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider], entry: () => ({ jwksUri: undefined }) });
    await registerIdJag(base, provider.mintIdJag());
    expect(fetches).toEqual([provider.origin + METADATA_PATH, provider.jwksUri]);
    expect(provider.hits(METADATA_PATH)).toBe(1);
    expect(provider.hits(JWKS_PATH)).toBe(1);
  });

  it('the JWKS is cached for the lifetime its Cache-Control asks for', async () => {
    const provider = await startProvider();
    provider.jwksHeaders = { 'cache-control': 'public, max-age=7200' };
    const { svc, base } = await trustedService(start, { providers: [provider] });
    await registerIdJag(base, provider.mintIdJag());
    svc.clock.advance(3600_000);
    await registerIdJag(base, provider.mintIdJag());
    expect(provider.hits(JWKS_PATH)).toBe(1);
    svc.clock.advance(3700_000);
    await registerIdJag(base, provider.mintIdJag());
    expect(provider.hits(JWKS_PATH)).toBe(2);
  });
});

describe('typ: an ID-JAG is accepted only as an ID-JAG', () => {
  it('an opaque access token presented as an ID-JAG is refused', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider] });
    const { token } = await accessToken(base);
    const response = await presentIdJag(base, token);
    const body = await response.json();
    expect(response.status).toBe(400);
    expect(body.error).toBe('invalid_request');
    expect(fetches).toEqual([]);
  });

  it('a SET of the trusted provider presented as an ID-JAG is refused', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintSet()), 'invalid_token_type');
  });

  it('a SET carrying every ID-JAG claim is still refused for its typ', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const idJagClaims = JSON.parse(Buffer.from(provider.mintIdJag().split('.')[1]!, 'base64url').toString());
    await expectRefused(await presentIdJag(base, provider.mintSet(idJagClaims)), 'invalid_token_type');
  });

  it('the service\'s own identity assertion (from an anonymous registration) presented as an ID-JAG is refused, without a fetch', async () => {
    const provider = await startProvider();
    const { base, fetches } = await trustedService(start, { providers: [provider] });
    const registration = await registerAnonymous(base);
    const response = await presentIdJag(base, registration.identity.assertion);
    const body = await response.json();
    expect(response.status).toBe(400);
    expect(body.error).toBe('issuer_not_enabled');
    expect(fetches).toEqual([]);
  });

  it.each([
    ['missing', undefined],
    ['JWT', 'JWT'],
    ['at+jwt', 'at+jwt'],
    ['logout+jwt', 'logout+jwt'],
    ['secevent+jwt', 'secevent+jwt'],
    ['client-authentication+jwt', 'client-authentication+jwt'],
    ['oauth-id-jag', 'oauth-id-jag'],
  ])('typ %s is refused', async (_name, typ) => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({}, { header: { typ } })), 'invalid_token_type');
  });

  it.each(['application/oauth-id-jag+jwt', 'oauth-id-jag+jwt', 'OAuth-ID-JAG+JWT'])('typ %s is accepted', async (typ) => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await registerIdJag(base, provider.mintIdJag({}, { header: { typ } }));
  });
});

describe('aud: exactly one audience, ours', () => {
  it('an array of two audiences, ours included, is refused', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ aud: [base, 'https://other-service.example'] })), 'invalid_audience');
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ aud: [base, base] })), 'invalid_audience');
  });

  it('an array of one audience, ours, is accepted', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await registerIdJag(base, provider.mintIdJag({ aud: [base] }));
  });

  it('aud = the token endpoint URL is refused', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ aud: `${base}/oauth2/token` })), 'invalid_audience');
  });

  it('aud = the identity endpoint, our issuer with a trailing slash, or another service is refused', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    for (const aud of [`${base}/agent/identity`, `${base}/`, 'https://other-service.example']) {
      await expectRefused(await presentIdJag(base, provider.mintIdJag({ aud })), 'invalid_audience');
    }
  });

  it('a missing aud is refused', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const response = await presentIdJag(base, provider.mintIdJag({ aud: undefined }));
    expect(response.status).toBe(400);
    expect((await response.json()).error).toBe('invalid_request');
  });

  it('aud = the resource of the protected resource metadata is accepted', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider], extraResources: ['/api'] });
    const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/api`)).json();
    expect(prm.resource).toBe(`${base}/api`);
    await registerIdJag(base, provider.mintIdJag({ aud: prm.resource }));
    // …and a resource that is not ours is not.
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ aud: `${base}/admin` })), 'invalid_audience');
  });

  it('a refused audience does not reach the CIMD document', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ aud: 'https://other-service.example', client_id: provider.cimdUrl })), 'invalid_audience');
    expect(provider.hits(CIMD_PATH)).toBe(0);
  });
});
