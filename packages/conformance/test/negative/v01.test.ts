import { describe, expect, it } from 'vitest';
import { catalogue } from '../../src/checks/index.ts';
import { v01Checks } from '../../src/checks/v01.ts';
import { runConformance } from '../../src/runner.ts';
import { bodyOf, editJson, jsonAnswer, pathOf, type Breakage, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

/**
 * Issue 12: each v0.1 check against the demo broken in exactly the rule it tests. The person is the
 * pages human, reading the claim emails from the demo's development mailbox behind the proxy; the
 * breakages change the agent-facing answers (or the protected API, where a check looks at a key's fate).
 */

const TIMEOUT_MS = 60_000;
const REGISTER = '/agent/auth';
const CLAIM = '/agent/auth/claim';
const COMPLETE = '/agent/auth/claim/complete';
const AS = '/.well-known/oauth-authorization-server';

const { start } = brokenServices();

const isPost = (request: ProxiedRequest, path: string): boolean => request.method === 'POST' && pathOf(request) === path;
const bearer = (request: ProxiedRequest): string | undefined => /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
const isApiWithKey = (request: ProxiedRequest): boolean => pathOf(request) === '/api/notes' && (bearer(request) ?? '').startsWith('sk_');

function jsonOf(response: ProxiedResponse): any {
  try {
    return JSON.parse(response.body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The 2xx answers of `path` with their JSON body changed by `edit`. */
function editAnswer(path: string, edit: (body: any, request: ProxiedRequest) => void, where: (request: ProxiedRequest) => boolean = () => true): Breakage {
  return {
    response: (request, response) => (isPost(request, path) && response.status === 200 && where(request) ? editJson(response, (body) => (edit(body, request), body)) : response),
  };
}

/** Answers `error` where the service answered `instead` at `path`. */
function rewriteError(path: string, instead: string, status: number, error: string): Breakage {
  return {
    response: (request, response) =>
      isPost(request, path) && jsonOf(response)?.error === instead ? jsonAnswer(status, { error, error_description: `${error} (broken)` }, { 'cache-control': 'no-store' }) : response,
  };
}

const pretendRevoked = (): ProxiedResponse => ({ status: 200, headers: { 'cache-control': 'no-store', pragma: 'no-cache' }, cookies: [], body: Buffer.alloc(0) });
const serverError = (): ProxiedResponse => ({ status: 500, headers: { 'content-type': 'text/html' }, cookies: [], body: Buffer.from('<h1>Internal Server Error</h1>') });

const isVerifiedEmail = (request: ProxiedRequest): boolean => bodyOf(request).assertion_type === 'verified_email';

describe('v0.1 checks, each against a service broken in its rule', () => {
  it('registration.v01-anonymous: an API key answer with an expiry, and one without Cache-Control: no-store', async () => {
    const service = await start(editAnswer(REGISTER, (body) => (body.credential_expires = '2999-01-01T00:00:00Z')));
    const result = await runCheck(service, 'registration.v01-anonymous');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/v0\.1 anonymous registration: an API key does not expire: expected credential_expires null, got "2999-01-01T00:00:00Z"/);

    const noStore = await start({
      response: (request, response) => {
        if (!isPost(request, REGISTER) || response.status !== 200) return response;
        const { 'cache-control': _dropped, ...headers } = response.headers;
        return { ...response, headers };
      },
    });
    const second = await runCheck(noStore, 'registration.v01-anonymous');
    expect(second.outcome).toBe('fail');
    expect(second.message).toMatch(/it carries an API key and a claim token\): expected Cache-Control: no-store, got no Cache-Control header/);
  });

  it('registration.v01-anonymous: no claim handle', async () => {
    const service = await start(editAnswer(REGISTER, (body) => delete body.claim_token));
    const result = await runCheck(service, 'registration.v01-anonymous');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/^v0\.1 anonymous registration: claim_token is missing \(POST \/agent\/auth → 200/);
  });

  it('registration.v01-anonymous: pre-claim scopes beyond the post-claim ones, and a claim_url that is not claim_uri', async () => {
    const service = await start(editAnswer(REGISTER, (body) => (body.scopes = [...body.scopes, 'admin'])));
    const result = await runCheck(service, 'registration.v01-anonymous');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the pre-claim scopes \["notes\.read","admin"\] must be among the post-claim scopes \["notes\.read","notes\.write"\]; admin is not/);

    const elsewhere = await start(editAnswer(REGISTER, (body) => (body.claim_url = 'https://elsewhere.example/claim')));
    const second = await runCheck(elsewhere, 'registration.v01-anonymous');
    expect(second.outcome).toBe('fail');
    expect(second.message).toMatch(/claim_url should be the advertised claim_uri http:\/\/127\.0\.0\.1:\d+\/agent\/auth\/claim, got "https:\/\/elsewhere\.example\/claim"/);
  });

  it('registration.v01-api-key: the API refuses the API key it handed out', async () => {
    const service = await start({ answer: (request) => (isApiWithKey(request) ? jsonAnswer(401, { error: 'invalid_token' }) : undefined) });
    const result = await runCheck(service, 'registration.v01-api-key');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with the API key of a v0\.1 anonymous registration \(Authorization: Bearer\): expected 2xx, got GET \/api\/notes → 401/);
  });

  it('revocation.v01-api-key: 200, but the API key keeps working', async () => {
    const service = await start({ answer: (request) => (isPost(request, '/oauth2/revoke') && String(bodyOf(request).token).startsWith('sk_') ? pretendRevoked() : undefined) });
    const result = await runCheck(service, 'revocation.v01-api-key');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with the revoked API key: expected 401 within 2 s, still got GET \/api\/notes → 200/);
  });

  it('ceremony.v01-email-claim: the claim answers the pre-claim scopes', async () => {
    const service = await start(editAnswer(COMPLETE, (body) => (body.scopes = ['notes.read'])));
    const result = await runCheck(service, 'ceremony.v01-email-claim');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/\/complete with the emailed code: expected scopes to be the post-claim scopes \["notes\.read","notes\.write"\] the registration announced, got \["notes\.read"\]/);
  }, TIMEOUT_MS);

  it('ceremony.v01-email-claim: the API key stops working once claimed', async () => {
    let claimed = false;
    const service = await start({
      answer: (request) => (claimed && isApiWithKey(request) ? jsonAnswer(401, { error: 'invalid_token' }) : undefined),
      response: (request, response) => {
        if (isPost(request, COMPLETE) && response.status === 200) claimed = true;
        return response;
      },
    });
    const result = await runCheck(service, 'ceremony.v01-email-claim');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the protected API with the API key after the claim \(upgraded in place, protocol-reference §7\.3\): expected 2xx, got GET \/api\/notes → 401/);
  }, TIMEOUT_MS);

  it('ceremony.v01-email-claim: the claim start is not "initiated"', async () => {
    const service = await start(editAnswer(CLAIM, (body) => (body.status = 'pending')));
    const result = await runCheck(service, 'ceremony.v01-email-claim');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the claim start for conformance-v01-claim-\w+@example\.com: status: expected "initiated", got "pending"/);
  }, TIMEOUT_MS);

  it('ceremony.v01-verified-email: a credential before the person sent the code back', async () => {
    const service = await start(editAnswer(REGISTER, (body) => (body.credential = 'sk_before_the_claim'), isVerifiedEmail));
    const result = await runCheck(service, 'ceremony.v01-verified-email');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/before the person sent the code back: expected no credential/);
  }, TIMEOUT_MS);

  it('ceremony.v01-verified-email: the completion hands out another credential type than the one requested', async () => {
    const service = await start(editAnswer(COMPLETE, (body) => (body.credential_type = 'api_key')));
    const result = await runCheck(service, 'ceremony.v01-verified-email');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/credential_type \(the one requested at registration\): expected "access_token", got "api_key"/);
  }, TIMEOUT_MS);

  it('ceremony.v01-wrong-otp: a wrong code is answered with another error', async () => {
    const service = await start(rewriteError(COMPLETE, 'otp_invalid', 400, 'invalid_code'));
    const result = await runCheck(service, 'ceremony.v01-wrong-otp');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/\/complete with a wrong code \(\d{6}; the email said \d{6}\): expected 401 otp_invalid, got POST \/agent\/auth\/claim\/complete → 400 .*invalid_code/);
  }, TIMEOUT_MS);

  it('ceremony.v01-wrong-otp: a wrong code ends the attempt, so the emailed code no longer works', async () => {
    let wrongSeen = false;
    const service = await start({
      answer: (request) => (wrongSeen && isPost(request, COMPLETE) ? jsonAnswer(410, { error: 'otp_expired' }) : undefined),
      response: (request, response) => {
        if (isPost(request, COMPLETE) && jsonOf(response)?.error === 'otp_invalid') wrongSeen = true;
        return response;
      },
    });
    const result = await runCheck(service, 'ceremony.v01-wrong-otp');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/after one wrong code, \/complete with the emailed code: expected 200, got POST \/agent\/auth\/claim\/complete → 410/);
  }, TIMEOUT_MS);

  it('ceremony.v01-complete-once: a second completion hands out a credential again', async () => {
    const service = await start({
      response: (request, response) =>
        isPost(request, COMPLETE) && jsonOf(response)?.error === 'previously_claimed'
          ? jsonAnswer(200, { registration_id: 'reg_x', status: 'claimed', credential_type: 'api_key', credential: 'sk_second_time', credential_expires: null })
          : response,
    });
    const result = await runCheck(service, 'ceremony.v01-complete-once');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/a second \/complete with the same claim token and code: expected no credential/);
  }, TIMEOUT_MS);

  it('ceremony.v01-complete-once: the reference sample\'s claimed_or_in_flight instead of previously_claimed', async () => {
    const service = await start(rewriteError(COMPLETE, 'previously_claimed', 409, 'claimed_or_in_flight'));
    const result = await runCheck(service, 'ceremony.v01-complete-once');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected 409 previously_claimed, got POST \/agent\/auth\/claim\/complete → 409 .*claimed_or_in_flight/);
  }, TIMEOUT_MS);

  it('ceremony.v01-invalid-claim-token: an unknown claim token at /complete is a 404', async () => {
    const service = await start(rewriteError(COMPLETE, 'invalid_claim_token', 404, 'not_found'));
    const result = await runCheck(service, 'ceremony.v01-invalid-claim-token');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/\/complete with an unknown claim token: expected 401 invalid_claim_token, got POST \/agent\/auth\/claim\/complete → 404/);
  });

  it('bad-input.v01-bodies: a 500 page for malformed JSON at register_uri', async () => {
    const service = await start({ answer: (request) => (isPost(request, REGISTER) && request.body.toString('utf8') === '{"type":' ? serverError() : undefined) });
    const result = await runCheck(service, 'bad-input.v01-bodies');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/truncated JSON\) to register_uri: expected 400 invalid_request in JSON, got a server error: POST \/agent\/auth → 500/);
  });

  it('bad-input.v01-bodies: an unsupported requested_credential_type answered invalid_request (as the v0.1 sample does)', async () => {
    const service = await start(rewriteError(REGISTER, 'unsupported_credential_type', 400, 'invalid_request'));
    const result = await runCheck(service, 'bad-input.v01-bodies');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/"requested_credential_type":"password"\} to register_uri .*: expected 400 unsupported_credential_type in JSON, got error invalid_request/);
  });

  it('bad-input.v01-bodies: an HTML 400 for a mistyped completion', async () => {
    const service = await start({
      answer: (request) =>
        isPost(request, COMPLETE) && typeof bodyOf(request).otp === 'number' ? { status: 400, headers: { 'content-type': 'text/html' }, cookies: [], body: Buffer.from('<p>Bad Request</p>') } : undefined,
    });
    const result = await runCheck(service, 'bad-input.v01-bodies');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/"otp":123456\} to <claim_uri>\/complete: expected 400 error in JSON, got a body that is not JSON \(Content-Type text\/html\)/);
  });
});

describe('v0.1 checks against the unbroken service', () => {
  it('all pass', async () => {
    const service = await start({});
    const ids = v01Checks.map((check) => check.id);
    const results = await runChecks(service, ids);
    expect(results.map((r) => [r.id, r.outcome, r.message])).toEqual(catalogue.filter((c) => ids.includes(c.id)).map((c) => [c.id, 'pass', undefined]));
  }, TIMEOUT_MS * 2);

  it('all skip, saying why, when the service does not advertise v0.1', async () => {
    const service = await start({
      response: (request, response) => {
        if (pathOf(request) !== AS) return response;
        return editJson(response, (body) => {
          for (const key of ['register_uri', 'claim_uri', 'revocation_uri', 'anonymous']) delete body.agent_auth[key];
          return body;
        });
      },
    });
    const report = await runConformance({ base: service.base, api: service.api, only: v01Checks.map((check) => check.id), providerPort: false });
    expect(report.results.map((result) => result.id)).toEqual([
      'registration.v01-anonymous',
      'registration.v01-api-key',
      'revocation.v01-api-key',
      'ceremony.v01-email-claim',
      'ceremony.v01-verified-email',
      'ceremony.v01-wrong-otp',
      'ceremony.v01-complete-once',
      'ceremony.v01-invalid-claim-token',
      'bad-input.v01-bodies',
    ]);
    for (const result of report.results) {
      expect({ id: result.id, outcome: result.outcome, message: result.message }).toEqual({ id: result.id, outcome: 'skip', message: expect.stringMatching(/does not advertise the v0\.1 dialect/) });
    }
  });
});
