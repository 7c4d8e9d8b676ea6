import { describe, expect, it } from 'vitest';
import { revocationChecks } from '../../src/checks/revocation.ts';
import { bodyOf, jsonAnswer, pathOf, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

const { start } = brokenServices();

const revoking = (request: ProxiedRequest): boolean => pathOf(request) === '/oauth2/revoke';

/** RFC 7009's answer, without the revocation behind it. */
const pretendRevoked = (): ProxiedResponse => ({ status: 200, headers: { 'cache-control': 'no-store', pragma: 'no-cache' }, cookies: [], body: Buffer.alloc(0) });

describe('revocation checks fail against a service that breaks their rule', () => {
  it('revocation.access-token: 200, but the access token keeps working', async () => {
    const service = await start({ answer: (request) => (revoking(request) ? pretendRevoked() : undefined) });
    const result = await runCheck(service, 'revocation.access-token');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with the revoked access token: expected 401 within 2 s, still got GET \/api\/notes → 200/);
  });

  it('revocation.unknown-token: an unknown token is an error', async () => {
    // This breakage knows the demo's token formats: access tokens `at_…`, refresh tokens `art_…`, JWTs.
    const known = (token: unknown) => typeof token === 'string' && (/^art?_/.test(token) || token.split('.').length === 3);
    const service = await start({
      answer: (request) => (revoking(request) && !known(bodyOf(request).token) ? jsonAnswer(400, { error: 'invalid_token', error_description: 'Unknown token.' }) : undefined),
    });
    const result = await runCheck(service, 'revocation.unknown-token');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/revocation of a token the service never issued: expected 200, got POST \/oauth2\/revoke → 400 .*invalid_token/);
  });

  it('revocation.assertion: 200, but the identity assertion can still be exchanged', async () => {
    const service = await start({ answer: (request) => (revoking(request) && String(bodyOf(request).token).split('.').length === 3 ? pretendRevoked() : undefined) });
    const result = await runCheck(service, 'revocation.assertion');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/exchange of the revoked identity assertion: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it('revocation.missing-token: a request without a token answers 200', async () => {
    const service = await start({ answer: (request) => (revoking(request) && bodyOf(request).token === undefined ? pretendRevoked() : undefined) });
    const result = await runCheck(service, 'revocation.missing-token');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/revocation without a token parameter: expected 400 invalid_request, got POST \/oauth2\/revoke → 200/);
  });

  it('revocation.hint-ignored: a hint other than access_token is refused (as in the reference code)', async () => {
    const service = await start({
      answer: (request) => {
        const hint = revoking(request) ? bodyOf(request).token_type_hint : undefined;
        return hint !== undefined && hint !== 'access_token' ? jsonAnswer(400, { error: 'unsupported_token_type' }) : undefined;
      },
    });
    const result = await runCheck(service, 'revocation.hint-ignored');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/revocation of an access token with token_type_hint=conformance_unknown_hint: expected 200, got POST \/oauth2\/revoke → 400 .*unsupported_token_type/);
  });

  it('revocation.hint-ignored: a wrong hint makes the service look only among refresh tokens', async () => {
    const service = await start({ answer: (request) => (revoking(request) && bodyOf(request).token_type_hint === 'refresh_token' ? pretendRevoked() : undefined) });
    const result = await runCheck(service, 'revocation.hint-ignored');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with the access token revoked with token_type_hint=refresh_token: expected 401 within 2 s, still got GET \/api\/notes → 200/);
  });
});

describe('revocation checks against the unbroken service', () => {
  it('all pass', async () => {
    const service = await start({});
    const results = await runChecks(service, ['revocation']);
    // v0.1's API key revocation (src/checks/v01.ts) runs with the group: the demo speaks v0.1.
    expect(results.map((r) => [r.id, r.outcome, r.message])).toEqual([...revocationChecks.map((c) => c.id), 'revocation.v01-api-key'].map((id) => [id, 'pass', undefined]));
  });

  it('all skip, saying why, when the service advertises no revocation_endpoint', async () => {
    const service = await start({
      response: (request, response) => {
        if (pathOf(request) !== '/.well-known/oauth-authorization-server') return response;
        const { revocation_endpoint: _endpoint, ...metadata } = JSON.parse(response.body.toString('utf8'));
        return { ...response, body: Buffer.from(JSON.stringify(metadata)) };
      },
    });
    const results = await runChecks(service, ['revocation']);
    expect(results.map((r) => [r.id, r.outcome, r.message])).toEqual([...revocationChecks.map((c) => c.id), 'revocation.v01-api-key'].map((id) => [id, 'skip', 'the service advertises no revocation_endpoint']));
  });
});
