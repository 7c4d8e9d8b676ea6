import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import { securityChecks } from '../../src/checks/security.ts';
import { startTestProvider, type TestProvider } from '../../src/provider/test-provider.ts';
import { bodyOf, jsonAnswer, pathOf, type Breakage, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

/**
 * Each security check against a service broken in exactly the rule it tests. A service that would
 * accept a bad ID-JAG is played by the proxy swapping it for a clean one of the same person before
 * the real service sees it; a token endpoint that would accept a forgery answers 200 in its place.
 */

type Json = Record<string, any>;

const TIMEOUT_MS = 60_000;

/** The provider first (the service must trust it), then the broken service; `make` sees the provider. */
const { startWithProvider: start } = brokenServices();

function decode(token: string): { header: Json; payload: Json } {
  const [header, payload] = token.split('.') as [string, string];
  const json = (segment: string) => {
    try {
      return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8')) as Json;
    } catch {
      return {};
    }
  };
  return { header: json(header), payload: json(payload) };
}

const isIdJagRegistration = (request: ProxiedRequest) =>
  request.method === 'POST' && pathOf(request) === '/agent/identity' && bodyOf(request).type === 'identity_assertion';

/**
 * A registration endpoint that skips one ID-JAG rule: an assertion that `breaks(header, payload)` is
 * replaced by a clean one about the same person, which the real service then accepts.
 */
function acceptsIdJagsThat(breaks: (header: Json, payload: Json, assertion: string) => boolean | Promise<boolean>): (provider: TestProvider) => Breakage {
  return (provider) => ({
    async request(request) {
      if (!isIdJagRegistration(request)) return request;
      const body = bodyOf(request);
      const { header, payload } = decode(body.assertion);
      if (!(await breaks(header, payload, body.assertion))) return request;
      const clean = await provider.mintIdJag({ audience: `http://${request.headers.host}`, email: typeof payload.email === 'string' ? payload.email : 'someone@example.com' });
      return { ...request, body: Buffer.from(JSON.stringify({ ...body, assertion: clean })) };
    },
  });
}

const isJwtBearer = (request: ProxiedRequest) => request.method === 'POST' && pathOf(request) === '/oauth2/token' && bodyOf(request).grant_type?.endsWith(':jwt-bearer');

/** A token endpoint that issues a token for any assertion that `accepts`. */
function tokenEndpointAccepting(accepts: (header: Json, payload: Json, assertion: string) => boolean): Breakage {
  return {
    answer(request) {
      if (!isJwtBearer(request)) return undefined;
      const assertion = String(bodyOf(request).assertion ?? '');
      const { header, payload } = decode(assertion);
      if (!accepts(header, payload, assertion)) return undefined;
      return jsonAnswer(200, { access_token: 'at_forged', token_type: 'Bearer', expires_in: 3600 }, { 'cache-control': 'no-store', pragma: 'no-cache' });
    },
  };
}

/** The kids the provider publishes in its JWKS. */
async function publishedKids(provider: TestProvider): Promise<Set<unknown>> {
  const jwks = (await (await fetch(provider.jwksUri)).json()) as JSONWebKeySet;
  return new Set(jwks.keys.map((key) => key.kid));
}

function withoutCacheControl(response: ProxiedResponse): ProxiedResponse {
  const headers = { ...response.headers };
  delete headers['cache-control'];
  delete headers.pragma;
  return { ...response, headers };
}

describe('security checks against broken services', () => {
  it('security.code-brute-force fails when wrong codes are not counted', { timeout: TIMEOUT_MS }, async () => {
    let wrongAnswered = 0;
    const { service, provider } = await start(() => ({
      // The first five guesses are refused without reaching the attempt's counter; then the right code works.
      answer(request) {
        if (request.method !== 'POST' || pathOf(request) !== '/agent/identity/claim/complete' || wrongAnswered >= 5) return undefined;
        wrongAnswered += 1;
        return jsonAnswer(401, { error: 'invalid_user_code', error_description: 'The code does not match.' });
      },
    }));
    const result = await runCheck(service, 'security.code-brute-force', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the right code must be refused too .* got POST \/agent\/identity\/claim\/complete → 200 .*wrong guesses are not capped/);
  });

  it('security.code-brute-force fails when a wrong code is answered 200', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      answer: (request) =>
        request.method === 'POST' && pathOf(request) === '/agent/identity/claim/complete' ? jsonAnswer(200, { id: 'reg_forged', status: 'claimed' }) : undefined,
    }));
    const result = await runCheck(service, 'security.code-brute-force', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/wrong code 1 of 5 must be refused with a 4xx, got POST \/agent\/identity\/claim\/complete → 200/);
  });

  it('security.id-jag-replay fails when a jti may be used twice', { timeout: TIMEOUT_MS }, async () => {
    const seen = new Set<string>();
    const { service, provider } = await start(
      acceptsIdJagsThat((_header, _payload, assertion) => {
        if (seen.has(assertion)) return true;
        seen.add(assertion);
        return false;
      }),
    );
    const result = await runCheck(service, 'security.id-jag-replay', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the same ID-JAG presented a second time \(a replayed jti\) must be refused with a 4xx and no credentials, got POST \/agent\/identity → 200 .* carrying an identity assertion/);
  });

  it('security.alg-none fails when the token endpoint takes an unsigned assertion', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => tokenEndpointAccepting((header) => String(header.alg).toLowerCase() === 'none'));
    const result = await runCheck(service, 'security.alg-none', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/its identity assertion with alg "none" and no signature: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it('security.alg-none fails when only the upper-case spelling slips through', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => tokenEndpointAccepting((header) => header.alg === 'NONE'));
    const result = await runCheck(service, 'security.alg-none', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/alg "NONE" and no signature: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it('security.alg-none-id-jag fails when registration takes an unsigned ID-JAG', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((header) => header.alg === 'none'));
    const result = await runCheck(service, 'security.alg-none-id-jag', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG with alg none must be refused with a 4xx and no credentials, got POST \/agent\/identity → 200/);
  });

  it('security.key-confusion fails when the token endpoint takes HS256 keyed by the public key', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => tokenEndpointAccepting((header) => header.alg === 'HS256'));
    const result = await runCheck(service, 'security.key-confusion', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/re-signed with HS256 keyed by the JWK as JSON from its JWKS: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it('security.key-confusion-id-jag fails when registration takes an HS256 ID-JAG', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((header) => header.alg === 'HS256'));
    const result = await runCheck(service, 'security.key-confusion-id-jag', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG signed with HS256 keyed by the provider's public JWK must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.token-type-confusion fails when the token endpoint takes an access token as an assertion', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => tokenEndpointAccepting((_header, _payload, assertion) => assertion.startsWith('at_')));
    const result = await runCheck(service, 'security.token-type-confusion', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/access token as assertion: an access token presented as a jwt-bearer assertion: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it("security.token-type-confusion fails when registration takes the service's own assertion as an ID-JAG", { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((_header, payload) => payload.iss === service!.base));
    const result = await runCheck(service, 'security.token-type-confusion', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/own assertion as ID-JAG: the service's own identity assertion presented as a provider ID-JAG must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.token-type-confusion-id-jag fails when the token endpoint takes a provider ID-JAG', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => tokenEndpointAccepting((_header, payload) => payload.iss === provider.issuer));
    const result = await runCheck(service, 'security.token-type-confusion-id-jag', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/ID-JAG at the token endpoint: a provider's ID-JAG presented at the token endpoint, .*: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it('security.token-type-confusion-id-jag fails when registration takes a SET as an ID-JAG', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((header) => header.typ === 'secevent+jwt'));
    const result = await runCheck(service, 'security.token-type-confusion-id-jag', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/SET as ID-JAG: a SET \(typ secevent\+jwt\) presented as an ID-JAG must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.id-jag-expired fails when exp is not checked', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((_header, payload) => typeof payload.exp === 'number' && payload.exp * 1000 < Date.now()));
    const result = await runCheck(service, 'security.id-jag-expired', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG that expired ten minutes ago must be refused with a 4xx and no credentials, got POST \/agent\/identity → 200/);
  });

  it('security.id-jag-audience fails when an ID-JAG for another service is taken', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((_header, payload) => payload.aud === 'https://another-service.example'));
    const result = await runCheck(service, 'security.id-jag-audience', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG with aud https:\/\/another-service\.example must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.id-jag-audience fails when an audience array that includes the service is taken', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(acceptsIdJagsThat((_header, payload) => Array.isArray(payload.aud)));
    const result = await runCheck(service, 'security.id-jag-audience', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG with aud \[http:\/\/127\.0\.0\.1:\d+, https:\/\/another-service\.example\] must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.id-jag-foreign-key fails when an ID-JAG under an unknown kid is taken', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => {
      const published = publishedKids(provider);
      return acceptsIdJagsThat(async (header) => !(await published).has(header.kid))(provider);
    });
    const result = await runCheck(service, 'security.id-jag-foreign-key', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG signed by a key in no JWKS of the provider must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.id-jag-foreign-key fails when a published kid is trusted without checking the signature', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => {
      const published = publishedKids(provider);
      const verifies = async (assertion: string) => {
        const keys = createLocalJWKSet((await (await fetch(provider.jwksUri)).json()) as JSONWebKeySet);
        return compactVerify(assertion, keys).then(() => true, () => false);
      };
      // Unknown kids are still refused (by the real service); a known kid's signature is never checked.
      return acceptsIdJagsThat(async (header, _payload, assertion) => (await published).has(header.kid) && !(await verifies(assertion)))(provider);
    });
    const result = await runCheck(service, 'security.id-jag-foreign-key', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/an ID-JAG under the provider's published kid but signed by another key must be refused .* got POST \/agent\/identity → 200/);
  });

  it('security.secrets-no-store fails when a claim start may be cached', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      response: (request, response) => (request.method === 'POST' && pathOf(request) === '/agent/identity/claim' ? withoutCacheControl(response) : response),
    }));
    const result = await runCheck(service, 'security.secrets-no-store', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the claim start response carries a secret but has Cache-Control "\(none\)", not no-store/);
  });

  it('security.secrets-no-store fails when the /complete response may be cached', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      response: (request, response) =>
        request.method === 'POST' && pathOf(request) === '/agent/identity/claim/complete' ? { ...response, headers: { ...response.headers, 'cache-control': 'private, max-age=60' } } : response,
    }));
    const result = await runCheck(service, 'security.secrets-no-store', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the \/complete response carries a secret but has Cache-Control "private, max-age=60", not no-store/);
  });
});

describe('security checks against the unbroken service', () => {
  it('every security check passes', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start();
    const results = await runChecks(service, ['security'], { provider });
    expect(results.map((result) => result.id)).toEqual(securityChecks.map((check) => check.id));
    for (const result of results) expect({ id: result.id, outcome: result.outcome, message: result.message }).toEqual({ id: result.id, outcome: 'pass', message: undefined });
  });

  it('the ID-JAG checks are skipped, saying how to trust it, when the service does not trust the test provider; the rest still run', { timeout: TIMEOUT_MS }, async () => {
    // The service trusts another provider (so it takes ID-JAGs at all), but not the suite's.
    const trusted = await startTestProvider({ port: 0 });
    try {
      const { provider, service } = await start(undefined, { trust: trusted.trustEntry });
      const results = await runChecks(service, ['security'], { provider });
      const needsProvider = /id-jag/;
      for (const result of results) {
        if (needsProvider.test(result.id)) {
          expect({ id: result.id, outcome: result.outcome }).toEqual({ id: result.id, outcome: 'skip' });
          expect(result.message).toMatch(/does not trust the test provider .* add it to the service's trust list/);
        } else {
          expect({ id: result.id, outcome: result.outcome, message: result.message }).toEqual({ id: result.id, outcome: 'pass', message: undefined });
        }
      }
    } finally {
      await trusted.close();
    }
  });
});
