import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { ceremonyChecks } from '../../src/checks/ceremony.ts';
import { catalogue } from '../../src/checks/index.ts';
import { bodyOf, editJson, jsonAnswer, pathOf, type Breakage, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';
import { newestAssertionOfItsRegistration } from './ceremony-breakages.ts';

/**
 * Each ceremony check against the demo broken in exactly the rule it tests. The person is the pages
 * human, signing in through the demo's development mailbox behind the proxy; the breakages change the
 * agent-facing answers only (or the protected API, where the check looks at a token's fate).
 */

const TIMEOUT_MS = 60_000;

const { start } = brokenServices();

const isPost = (request: ProxiedRequest, path: string) => request.method === 'POST' && pathOf(request) === path;
const isComplete = (request: ProxiedRequest) => isPost(request, '/agent/identity/claim/complete');
const isClaimStart = (request: ProxiedRequest) => isPost(request, '/agent/identity/claim');
const isClaimGrant = (request: ProxiedRequest) => isPost(request, '/oauth2/token') && bodyOf(request).grant_type === grantTypes.claim;

function errorOf(response: ProxiedResponse): string | undefined {
  try {
    return JSON.parse(response.body.toString('utf8'))?.error;
  } catch {
    return undefined;
  }
}

/** Answers `error` where the service answered `instead` on the requests `where` selects. */
function rewriteError(where: (request: ProxiedRequest) => boolean, instead: string, status: number, error: string): Breakage {
  return {
    response: (request, response) =>
      where(request) && errorOf(response) === instead ? jsonAnswer(status, { error, error_description: `${error} (broken)`, message: `${error} (broken)` }, { 'cache-control': 'no-store' }) : response,
  };
}

describe('ceremony checks, each against a service broken in its rule', () => {
  it('ceremony.read-back fails when /complete hands out no refresh token', async () => {
    const service = await start({
      response: (request, response) =>
        isComplete(request) && response.status === 200
          ? editJson(response, (body) => {
              delete body.identity.refresh_token;
              return body;
            })
          : response,
    });
    const result = await runCheck(service, 'ceremony.read-back');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/read-back completion: no identity\.refresh_token\.value in POST \/agent\/identity\/claim\/complete → 200/);
  }, TIMEOUT_MS);

  it('ceremony.read-back fails, naming the member, when the /complete answer does not read', async () => {
    const service = await start({
      response: (request, response) =>
        isComplete(request) && response.status === 200
          ? editJson(response, (body) => ({ ...body, identity: { ...body.identity, expires_at: 'tomorrow' }, assertion_expires: 'tomorrow' }))
          : response,
    });
    const result = await runCheck(service, 'ceremony.read-back');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/^read-back completion: the answer does not read \(current: identity\.expires_at: must be an ISO-8601 time\): POST \/agent\/identity\/claim\/complete → 200/);
  }, TIMEOUT_MS);

  it('ceremony.read-back fails when the claimed assertion does not exchange for the post-claim scopes', async () => {
    const service = await start({
      response: (request, response) =>
        isPost(request, '/oauth2/token') && response.status === 200 ? editJson(response, (body) => ({ ...body, scope: 'notes.read' })) : response,
    });
    const result = await runCheck(service, 'ceremony.read-back');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/exchanging the claimed assertion: expected the post-claim scopes notes\.read notes\.write, got scope "notes\.read" \(missing notes\.write\)/);
  }, TIMEOUT_MS);

  it('ceremony.not-confirmed fails when an early /complete is answered as a wrong code', async () => {
    const service = await start(rewriteError(isComplete, 'claim_not_confirmed', 401, 'invalid_user_code'));
    const result = await runCheck(service, 'ceremony.not-confirmed');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/\/complete before the person acted: expected 409 claim_not_confirmed, got POST \/agent\/identity\/claim\/complete → 401 .*invalid_user_code/);
  }, TIMEOUT_MS);

  it('ceremony.wrong-code fails when a wrong code is not answered invalid_user_code', async () => {
    const service = await start(rewriteError(isComplete, 'invalid_user_code', 400, 'invalid_request'));
    const result = await runCheck(service, 'ceremony.wrong-code');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/\/complete with a wrong code \(\d{6}, the page showed \d{6}\): expected 401 invalid_user_code, got POST \/agent\/identity\/claim\/complete → 400 .*invalid_request/);
  }, TIMEOUT_MS);

  it('ceremony.wrong-code fails when one wrong code ends the attempt', async () => {
    const wrongOnce = new Set<string>();
    const service = await start({
      answer(request) {
        if (isComplete(request) && wrongOnce.has(String(bodyOf(request).claim_token))) return jsonAnswer(410, { error: 'user_code_expired', message: 'Start a new claim attempt.' });
        return undefined;
      },
      response(request, response) {
        if (isComplete(request) && errorOf(response) === 'invalid_user_code') wrongOnce.add(String(bodyOf(request).claim_token));
        return response;
      },
    });
    const result = await runCheck(service, 'ceremony.wrong-code');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/after one wrong code, \/complete with the code the page showed: expected 200 status "claimed", got .* 410 .*user_code_expired/);
  }, TIMEOUT_MS);

  it('ceremony.complete-once fails when a second /complete hands out the credentials again', async () => {
    const firstSuccess = new Map<string, ProxiedResponse>();
    const service = await start({
      response(request, response) {
        if (!isComplete(request)) return response;
        const token = String(bodyOf(request).claim_token);
        if (response.status === 200) firstSuccess.set(token, response);
        return errorOf(response) === 'already_claimed' ? (firstSuccess.get(token) ?? response) : response;
      },
    });
    const result = await runCheck(service, 'ceremony.complete-once');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/a second \/complete with the same claim token and code: expected a refusal without credentials, got one with an identity assertion and a refresh token: POST \/agent\/identity\/claim\/complete → 200/);
  }, TIMEOUT_MS);

  it('ceremony.type-in fails when the claim grant hands out no identity assertion', async () => {
    const service = await start({
      response: (request, response) =>
        isClaimGrant(request) && response.status === 200
          ? editJson(response, (body) => {
              delete body.identity_assertion;
              return body;
            })
          : response,
    });
    const result = await runCheck(service, 'ceremony.type-in');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the claim grant after the person typed the code: the 200 has no identity_assertion: POST \/oauth2\/token → 200/);
  }, TIMEOUT_MS);

  it('ceremony.type-in fails when the claim grant never leaves authorization_pending', async () => {
    const service = await start({
      answer: (request) => (isClaimGrant(request) ? jsonAnswer(400, { error: 'authorization_pending', error_description: 'Keep polling.' }) : undefined),
    });
    const result = await runCheck(service, 'ceremony.type-in');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the claim grant after the person typed the code: expected 200, got POST \/oauth2\/token → 400 .*authorization_pending/);
  }, TIMEOUT_MS);

  it('ceremony.slow-down fails when an early poll gets an error that ends the ceremony', async () => {
    const service = await start(rewriteError(isClaimGrant, 'slow_down', 429, 'rate_limited'));
    const result = await runCheck(service, 'ceremony.slow-down');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/a poll right after another \(interval 1 s\); an RFC 8628 client stops polling on any other error: expected 400 slow_down, got POST \/oauth2\/token → 429 .*rate_limited/);
  }, TIMEOUT_MS);

  it('ceremony.slow-down fails when slow_down does not add 5 s to the interval', async () => {
    const service = await start({
      response: (request, response) => (isClaimGrant(request) && errorOf(response) === 'slow_down' ? editJson(response, (body) => ({ ...body, interval: 5 })) : response),
    });
    const result = await runCheck(service, 'ceremony.slow-down');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/slow_down must add 5 s to the interval \(RFC 8628 §3\.5\): was 1 s, the answer says interval 5/);
  }, TIMEOUT_MS);

  it('ceremony.slow-down is skipped, saying why, when the service does not throttle polls', async () => {
    const service = await start(rewriteError(isClaimGrant, 'slow_down', 400, 'authorization_pending'));
    const result = await runCheck(service, 'ceremony.slow-down');
    expect(result.outcome, result.message).toBe('skip');
    expect(result.message).toMatch(/the service does not throttle polling \(slow_down is the server's choice in RFC 8628 §3\.5\)/);
  }, TIMEOUT_MS);

  it('ceremony.anonymous-claim fails when the pre-claim access token still works after the claim', async () => {
    const service = await start({
      response: (request, response) => (pathOf(request) === '/api/notes' && response.status === 401 ? jsonAnswer(200, { notes: [] }) : response),
    });
    const result = await runCheck(service, 'ceremony.anonymous-claim');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the pre-claim access token should be refused once the registration is claimed \(401\), got GET \/api\/notes → 200/);
  }, TIMEOUT_MS);

  it('ceremony.anonymous-claim fails when the pre-claim assertion still exchanges after the claim', async () => {
    const service = await start(newestAssertionOfItsRegistration());
    const result = await runCheck(service, 'ceremony.anonymous-claim');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the pre-claim assertion, exchanged after the claim .*: expected 400 invalid_grant, got POST \/oauth2\/token → 200/);
  }, TIMEOUT_MS);

  it('ceremony.deny fails when /complete after Deny keeps the agent waiting', async () => {
    const service = await start(rewriteError(isComplete, 'claim_denied', 409, 'claim_not_confirmed'));
    const result = await runCheck(service, 'ceremony.deny');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/\/complete after the person denied: expected 403 claim_denied, got .* 409 .*claim_not_confirmed/);
  }, TIMEOUT_MS);

  it('ceremony.deny fails when the claim grant after Deny keeps the agent polling', async () => {
    const service = await start(rewriteError(isClaimGrant, 'access_denied', 400, 'authorization_pending'));
    const result = await runCheck(service, 'ceremony.deny');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the claim grant after the person denied: expected 400 access_denied, got POST \/oauth2\/token → 400 .*authorization_pending/);
  }, TIMEOUT_MS);

  it('ceremony.invalid-claim-token fails when claim start answers an unknown token with another error', async () => {
    const service = await start(rewriteError(isClaimStart, 'invalid_claim_token', 400, 'invalid_request'));
    const result = await runCheck(service, 'ceremony.invalid-claim-token');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/claim start with an unknown claim token: expected 401 invalid_claim_token, got POST \/agent\/identity\/claim → 400 .*invalid_request/);
  }, TIMEOUT_MS);

  it('ceremony.invalid-claim-token fails when /complete with an unknown token is a server error', async () => {
    const service = await start(rewriteError(isComplete, 'invalid_claim', 500, 'server_error'));
    const result = await runCheck(service, 'ceremony.invalid-claim-token');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/\/complete with an unknown claim token: expected 400 invalid_claim or 401 invalid_claim_token, got .* 500/);
  }, TIMEOUT_MS);

  it('ceremony.invalid-claim-token fails when the claim grant keeps an unknown token pending', async () => {
    const service = await start(rewriteError(isClaimGrant, 'expired_token', 400, 'authorization_pending'));
    const result = await runCheck(service, 'ceremony.invalid-claim-token');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the claim grant with an unknown claim token .*: expected 400 expired_token or 400 invalid_grant, got POST \/oauth2\/token → 400 .*authorization_pending/);
  }, TIMEOUT_MS);

  it('ceremony.remint fails when a second claim start keeps the old attempt', async () => {
    // A "re-mint" that hands back the attempt the registration already has, so the old code stays good.
    const links = new Map<string, string>();
    const service = await start({
      answer(request) {
        const link = isClaimStart(request) ? links.get(String(bodyOf(request).claim_token)) : undefined;
        return link ? jsonAnswer(200, { id: 'reg_same', type: 'service_auth', attempt: { verification_uri: link, expires_at: new Date(Date.now() + 600_000).toISOString() } }) : undefined;
      },
      response(request, response) {
        if (isPost(request, '/agent/identity') && response.status === 200) {
          const body = JSON.parse(response.body.toString('utf8'));
          if (body.claim?.attempt) links.set(body.claim.token, body.claim.attempt.verification_uri);
        }
        return response;
      },
    });
    const result = await runCheck(service, 'ceremony.remint');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/\/complete with the code of the replaced attempt: expected a refusal without credentials, got one with an identity assertion/);
  }, TIMEOUT_MS);

  it('ceremony.remint fails when a second claim start gives the old user_code again', async () => {
    const codes = new Map<string, string>();
    const service = await start({
      response(request, response) {
        if (isPost(request, '/agent/identity') && response.status === 200) {
          const body = JSON.parse(response.body.toString('utf8'));
          if (body.claim?.user_code) codes.set(body.claim_token, body.claim.user_code);
        }
        const code = isClaimStart(request) && response.status === 200 ? codes.get(String(bodyOf(request).claim_token)) : undefined;
        return code ? editJson(response, (body) => ({ ...body, claim_attempt: { ...body.claim_attempt, user_code: code } })) : response;
      },
    });
    const result = await runCheck(service, 'ceremony.remint');
    expect(result.outcome, result.message).toBe('fail');
    expect(result.message).toMatch(/the new attempt should have a new user_code, got the old one \(\d{6}\) again/);
  }, TIMEOUT_MS);
});

describe('ceremony checks against a service that speaks fewer dialects', () => {
  const metadata = (edit: (metadata: any) => void): Breakage => ({
    response: (request, response) =>
      pathOf(request) === '/.well-known/oauth-authorization-server'
        ? editJson(response, (body) => {
            edit(body);
            return body;
          })
        : response,
  });

  it('without the claim grant, the type-in checks skip and the others check read-back only', async () => {
    const service = await start(metadata((body) => (body.grant_types_supported = body.grant_types_supported.filter((grant: string) => grant !== grantTypes.claim))));
    const results = await runChecks(service, ['ceremony.type-in', 'ceremony.slow-down', 'ceremony.deny', 'ceremony.invalid-claim-token']);
    expect(results.map((result) => [result.id, result.outcome])).toEqual([
      ['ceremony.type-in', 'skip'],
      ['ceremony.slow-down', 'skip'],
      ['ceremony.deny', 'pass'],
      ['ceremony.invalid-claim-token', 'pass'],
    ]);
    for (const result of results.slice(0, 2)) expect(result.message).toMatch(/does not advertise the v0\.7 claim grant/);
    expect(service.seen.filter(isClaimGrant)).toEqual([]);
  }, TIMEOUT_MS);

  it('speaking only v0.7, the read-back checks skip and the anonymous claim is made by type-in', async () => {
    const service = await start(metadata((body) => (body.agent_auth.identity_types_supported = body.agent_auth.identity_types_supported.filter((type: string) => type !== 'refresh'))));
    const results = await runChecks(service, ['ceremony.read-back', 'ceremony.not-confirmed', 'ceremony.wrong-code', 'ceremony.complete-once', 'ceremony.remint', 'ceremony.anonymous-claim']);
    for (const result of results) {
      if (result.id === 'ceremony.anonymous-claim') {
        expect(result.outcome, result.message).toBe('pass');
        continue;
      }
      expect(result.outcome, `${result.id}: ${result.message}`).toBe('skip');
      expect(result.message).toMatch(/does not advertise the read-back ceremony/);
    }
    expect(results).toHaveLength(6);
    expect(service.seen.filter(isComplete)).toEqual([]);
  }, TIMEOUT_MS);
});

describe('ceremony checks against the unbroken demo', () => {
  it('all pass (the demo speaks both directions and v0.1, so nothing is skipped)', async () => {
    const results = await runChecks(await start(), ['ceremony']);
    // The group's checks, v0.1's (src/checks/v01.ts) included: the demo speaks every dialect.
    expect(results.map((result) => result.id)).toEqual(catalogue.filter((check) => check.group === 'ceremony').map((check) => check.id));
    expect(results.map((result) => result.id)).toEqual(expect.arrayContaining(ceremonyChecks.map((check) => check.id)));
    for (const result of results) expect(result.outcome, `${result.id}: ${result.message}`).toBe('pass');
  }, TIMEOUT_MS);
});
