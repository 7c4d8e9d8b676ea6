import { describe, expect, it } from 'vitest';
import { refreshChecks } from '../../src/checks/refresh.ts';
import { bodyOf, editJson, jsonAnswer, pathOf, type ProxiedRequest } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';
import { newestAssertionOfItsRegistration } from './ceremony-breakages.ts';

/**
 * Each refresh check against the demo broken in exactly the rule it tests. Every check claims a
 * registration first (the pages human signs in through the development mailbox), so the breakages
 * touch only the refresh, revocation and token requests that come after.
 */

const TIMEOUT_MS = 60_000;

const { start } = brokenServices();

const isRefresh = (request: ProxiedRequest) => request.method === 'POST' && pathOf(request) === '/agent/identity' && bodyOf(request).type === 'refresh';

describe('refresh checks, each against a service broken in its rule', () => {
  it('refresh.rotate fails when refreshing hands back the same refresh token', async () => {
    const service = await start({
      response: (request, response) =>
        isRefresh(request) && response.status === 200
          ? editJson(response, (body) => {
              body.identity.refresh_token.value = bodyOf(request).refresh_token;
              return body;
            })
          : response,
    });
    const result = await runCheck(service, 'refresh.rotate');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/returned the same refresh token it was given; it must rotate/);
  }, TIMEOUT_MS);

  it('refresh.no-store fails when the refresh response may be cached', async () => {
    const service = await start({
      response: (request, response) => {
        if (!isRefresh(request)) return response;
        const headers = { ...response.headers };
        delete headers['cache-control'];
        delete headers.pragma;
        return { ...response, headers };
      },
    });
    const result = await runCheck(service, 'refresh.no-store');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/should carry Cache-Control: no-store, got no Cache-Control/);
  }, TIMEOUT_MS);

  it('refresh.old-assertion fails when an assertion from before the rotation still exchanges', async () => {
    // A token endpoint that resolves any assertion to its registration's current state (no generations).
    const service = await start(newestAssertionOfItsRegistration());
    const result = await runCheck(service, 'refresh.old-assertion');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/exchanging the assertion from before the rotation: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  }, TIMEOUT_MS);

  it('refresh.reuse fails when a reused refresh token is refused but its family lives on', async () => {
    // The reference's behaviour (protocol-reference §2.11): a spent token "just fails", nothing else happens.
    const presented = new Set<string>();
    const service = await start({
      answer(request) {
        if (!isRefresh(request)) return undefined;
        const token = String(bodyOf(request).refresh_token);
        if (presented.has(token)) return jsonAnswer(400, { error: 'invalid_refresh_token', message: 'The refresh token is invalid, expired, or already used.' }, { 'cache-control': 'no-store' });
        presented.add(token);
        return undefined;
      },
    });
    const result = await runCheck(service, 'refresh.reuse');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/after the reuse, the refresh token the rotation issued \(the family must die\): expected 400 invalid_refresh_token or 400 invalid_grant, got POST \/agent\/identity → 200/);
  }, TIMEOUT_MS);

  it('refresh.reuse fails when the family dies but the access tokens of the registration live on', async () => {
    const service = await start({
      response: (request, response) =>
        pathOf(request) === '/api/notes' && response.status === 401 ? jsonAnswer(200, { notes: [] }) : response,
    });
    const result = await runCheck(service, 'refresh.reuse');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/after the reuse, the registration's access tokens should be refused \(401\), got GET \/api\/notes → 200/);
  }, TIMEOUT_MS);

  it('refresh.revoke fails when revoking a refresh token does nothing', async () => {
    const service = await start({
      answer: (request) => (request.method === 'POST' && pathOf(request) === '/oauth2/revoke' ? { status: 200, headers: { 'cache-control': 'no-store' }, cookies: [], body: Buffer.alloc(0) } : undefined),
    });
    const result = await runCheck(service, 'refresh.revoke');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/refreshing with the revoked refresh token: expected 400 invalid_refresh_token or 400 invalid_grant, got POST \/agent\/identity → 200/);
  }, TIMEOUT_MS);

  it('refresh.revoke fails when the revocation endpoint refuses refresh tokens', async () => {
    const service = await start({
      answer: (request) =>
        request.method === 'POST' && pathOf(request) === '/oauth2/revoke' ? jsonAnswer(400, { error: 'unsupported_token_type', error_description: 'Only access tokens can be revoked.' }) : undefined,
    });
    const result = await runCheck(service, 'refresh.revoke');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/revoking the refresh token: expected 200, got POST \/oauth2\/revoke → 400 .*unsupported_token_type/);
  }, TIMEOUT_MS);
});

describe('refresh checks against a service that speaks only v0.7', () => {
  it('all skip, saying the current dialect is not advertised', async () => {
    // The metadata of a v0.7 service: the claim grant, and no `refresh` identity type.
    const service = await start({
      response: (request, response) =>
        pathOf(request) === '/.well-known/oauth-authorization-server'
          ? editJson(response, (metadata) => {
              metadata.agent_auth.identity_types_supported = metadata.agent_auth.identity_types_supported.filter((type: string) => type !== 'refresh');
              return metadata;
            })
          : response,
    });
    const results = await runChecks(service, ['refresh']);
    for (const result of results) {
      expect(result.outcome, `${result.id}: ${result.message}`).toBe('skip');
      expect(result.message).toMatch(/does not advertise the current dialect/);
    }
    expect(service.seen.filter((request) => pathOf(request) === '/agent/identity')).toEqual([]);
  }, TIMEOUT_MS);
});

describe('refresh checks against the unbroken demo', () => {
  it('all pass', async () => {
    const results = await runChecks(await start(), ['refresh']);
    expect(results.map((result) => result.id)).toEqual(refreshChecks.map((check) => check.id));
    for (const result of results) expect(result.outcome, `${result.id}: ${result.message}`).toBe('pass');
  }, TIMEOUT_MS);
});
