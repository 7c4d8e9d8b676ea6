import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { tokenChecks } from '../../src/checks/token.ts';

import { bodyOf, editJson, jsonAnswer, pathOf, type Breakage, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

const { start } = brokenServices();

const atToken = (request: ProxiedRequest): boolean => pathOf(request) === '/oauth2/token';
const jwtBearer = (request: ProxiedRequest): boolean => atToken(request) && bodyOf(request).grant_type === grantTypes.jwtBearer;
const bodyJson = (response: ProxiedResponse): any => JSON.parse(response.body.toString('utf8') || 'null');

/** Changes the token endpoint's successful jwt-bearer answers. */
const editIssued = (edit: (body: any) => any): Breakage => ({
  response: (request, response) => (jwtBearer(request) && response.status === 200 ? editJson(response, edit) : response),
});

describe('token checks fail against a service that breaks their rule', () => {
  it('token.jwt-bearer: token_type is not Bearer', async () => {
    const service = await start(editIssued((body) => ({ ...body, token_type: 'mac' })));
    const result = await runCheck(service, 'token.jwt-bearer');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/token_type: expected Bearer, got "mac"/);
  });

  it('token.jwt-bearer: an unclaimed anonymous registration gets the post-claim scope', async () => {
    const service = await start(editIssued((body) => ({ ...body, scope: 'notes.read notes.write' })));
    const result = await runCheck(service, 'token.jwt-bearer');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected the pre-claim scope "notes.read", got "notes.read notes.write"/);
  });

  it('token.jwt-bearer: the API refuses the token', async () => {
    const service = await start({ answer: (request) => (pathOf(request) === '/api/notes' ? jsonAnswer(401, { error: 'invalid_token' }) : undefined) });
    const result = await runCheck(service, 'token.jwt-bearer');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with the new access token: expected 2xx, got GET \/api\/notes → 401/);
  });

  it('token.no-store: error answers lack Pragma: no-cache', async () => {
    const service = await start({
      response: (request, response) => {
        if (!atToken(request) || response.status < 400) return response;
        const { pragma: _pragma, ...headers } = response.headers;
        return { ...response, headers };
      },
    });
    const result = await runCheck(service, 'token.no-store');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/token endpoint, an exchange of a malformed assertion: expected Pragma: no-cache, got no Pragma header/);
  });

  it('token.no-store: successful answers may be cached', async () => {
    const service = await start({
      response: (request, response) => (jwtBearer(request) && response.status === 200 ? { ...response, headers: { ...response.headers, 'cache-control': 'private, max-age=300' } } : response),
    });
    const result = await runCheck(service, 'token.no-store');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/token endpoint, a successful exchange: expected Cache-Control: no-store, got Cache-Control: private, max-age=300/);
  });

  it('token.unsupported-grant: invalid_grant instead of unsupported_grant_type', async () => {
    const service = await start({
      response: (request, response) => (atToken(request) && bodyOf(request).grant_type === 'password' ? editJson(response, (body) => ({ ...body, error: 'invalid_grant' })) : response),
    });
    const result = await runCheck(service, 'token.unsupported-grant');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/grant_type=password: expected 400 unsupported_grant_type, got POST \/oauth2\/token → 400 .*invalid_grant/);
  });

  it('token.invalid-grant: a tampered assertion is accepted (its signature is not checked against the payload)', async () => {
    // The service below verifies signatures; the proxy plays one that does not, by handing it the
    // genuine assertion that carries the same signature.
    const genuine = new Map<string, string>();
    const service = await start({
      request: (request) => {
        const assertion = jwtBearer(request) ? bodyOf(request).assertion : undefined;
        const original = typeof assertion === 'string' ? genuine.get(assertion.split('.')[2] ?? '') : undefined;
        if (!original || original === assertion) return request;
        return { ...request, body: Buffer.from(new URLSearchParams({ ...bodyOf(request), assertion: original }).toString()) };
      },
      response: (request, response) => {
        const assertion = pathOf(request) === '/agent/identity' && response.status === 200 ? bodyJson(response)?.identity?.assertion : undefined;
        if (typeof assertion === 'string') genuine.set(assertion.split('.')[2]!, assertion);
        return response;
      },
    });
    const result = await runCheck(service, 'token.invalid-grant');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/jwt-bearer with a genuine assertion whose payload was tampered with \(exp changed, signature kept\): expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  });

  it('token.invalid-grant: a malformed assertion answers invalid_request', async () => {
    const service = await start({
      response: (request, response) => (jwtBearer(request) && bodyOf(request).assertion === 'not-a-jwt' ? editJson(response, (body) => ({ ...body, error: 'invalid_request' })) : response),
    });
    const result = await runCheck(service, 'token.invalid-grant');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/jwt-bearer with assertion "not-a-jwt": expected 400 invalid_grant, got POST \/oauth2\/token → 400 .*invalid_request/);
  });

  it('token.missing-assertion: invalid_grant instead of invalid_request', async () => {
    const service = await start({
      response: (request, response) => (jwtBearer(request) && bodyOf(request).assertion === undefined ? editJson(response, (body) => ({ ...body, error: 'invalid_grant' })) : response),
    });
    const result = await runCheck(service, 'token.missing-assertion');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/jwt-bearer without an assertion parameter: expected 400 invalid_request, got POST \/oauth2\/token → 400 .*invalid_grant/);
  });

  it('token.resource-binding: resource is ignored (as in the reference code), so a foreign one gets a token', async () => {
    const service = await start({
      request: (request) => {
        if (!atToken(request)) return request;
        const { resource: _resource, ...form } = bodyOf(request);
        return { ...request, body: Buffer.from(new URLSearchParams(form).toString()) };
      },
    });
    const result = await runCheck(service, 'token.resource-binding');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/jwt-bearer with resource=https:\/\/elsewhere\.example\/, which is not the service's: expected 400 invalid_target, got POST \/oauth2\/token → 200/);
  });

  it('token.resource-binding: a token bound to the metadata\'s resource is refused by the API', async () => {
    const bound = new Set<string>();
    const service = await start({
      answer: (request) => {
        const token = request.headers.authorization?.replace(/^Bearer /, '');
        return pathOf(request) === '/api/notes' && token && bound.has(token) ? jsonAnswer(401, { error: 'invalid_token' }) : undefined;
      },
      response: (request, response) => {
        if (jwtBearer(request) && bodyOf(request).resource !== undefined && response.status === 200) bound.add(bodyJson(response).access_token);
        return response;
      },
    });
    const result = await runCheck(service, 'token.resource-binding');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with a token bound to http:\/\/127\.0\.0\.1:\d+\/api\/notes: expected 2xx, got GET \/api\/notes → 401/);
  });

  it('token.unclaimed-refused: the claim grant hands out a token before anyone claimed the registration', async () => {
    const service = await start({
      answer: (request) =>
        atToken(request) && bodyOf(request).grant_type === grantTypes.claim ? jsonAnswer(200, { access_token: 'at_early', token_type: 'Bearer', expires_in: 3600, scope: 'notes.read notes.write' }, { 'cache-control': 'no-store' }) : undefined,
    });
    const result = await runCheck(service, 'token.unclaimed-refused');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the claim grant for a service_auth registration nobody has claimed: expected 400 authorization_pending, got POST \/oauth2\/token → 200 .*at_early/);
  });
});

describe('token checks against the unbroken service', () => {
  it('all pass (the demo speaks the v0.7 claim grant, so unclaimed-refused runs too)', async () => {
    const service = await start({});
    const results = await runChecks(service, ['token']);
    expect(results.map((r) => [r.id, r.outcome, r.message])).toEqual(tokenChecks.map((c) => [c.id, 'pass', undefined]));
  });

  it('token.unclaimed-refused skips, saying why, when the service does not speak the claim grant', async () => {
    const service = await start({
      response: (request, response) =>
        pathOf(request) === '/.well-known/oauth-authorization-server'
          ? editJson(response, (body) => ({ ...body, grant_types_supported: body.grant_types_supported.filter((grant: string) => grant !== grantTypes.claim) }))
          : response,
    });
    const result = await runCheck(service, 'token.unclaimed-refused');
    expect(result.outcome).toBe('skip');
    expect(result.message).toMatch(/does not advertise the v0\.7 claim grant/);
  });
});
