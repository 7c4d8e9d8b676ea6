import { describe, expect, it } from 'vitest';
import { registrationChecks } from '../../src/checks/registration.ts';
import type { TestProvider } from '../../src/provider/test-provider.ts';
import { bodyOf, editJson, jsonAnswer, pathOf, type Breakage, type BrokenService, type ProxiedRequest } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

const services = brokenServices();
let provider: TestProvider | undefined;

/** The broken service; with `provider`, the test provider too, which the service trusts or not. */
async function start(breakage: Breakage, options: { provider?: 'trusted' | 'untrusted' } = {}): Promise<BrokenService> {
  if (!options.provider) return services.start(breakage);
  const started = await services.startWithProvider(() => breakage, { trust: options.provider === 'trusted' ? undefined : 'none' });
  provider = started.provider;
  return started.service;
}

const registering = (request: ProxiedRequest, type: string): boolean => pathOf(request) === '/agent/identity' && bodyOf(request).type === type;

/** Changes the service's answers to registrations of `type`. */
const editRegistrations = (type: string, edit: (body: any) => any): Breakage => ({
  response: (request, response) => (registering(request, type) ? editJson(response, edit) : response),
});

/** The JWS with its protected header changed (the signature no longer matters to the check that reads it). */
function withHeader(token: string, changes: Record<string, unknown>): string {
  const [header, ...rest] = token.split('.');
  const members = { ...JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')), ...changes };
  return [Buffer.from(JSON.stringify(members)).toString('base64url'), ...rest].join('.');
}

const FAKE_ASSERTION = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

describe('registration checks fail against a service that breaks their rule', () => {
  it('registration.anonymous: the v0.7 claim_token_expires is missing', async () => {
    const service = await start(editRegistrations('anonymous', (body) => ({ ...body, claim_token_expires: undefined })));
    const result = await runCheck(service, 'registration.anonymous');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/claim_token_expires is missing/);
  });

  it('registration.anonymous: the assertion has already expired', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const service = await start(editRegistrations('anonymous', (body) => ({ ...body, identity: { ...body.identity, expires_at: past } })));
    const result = await runCheck(service, 'registration.anonymous');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/identity\.expires_at is .* not in the future/);
  });

  it('an anonymous registration without the v0.7 registration_id: the shape check fails on it; a check that only reads the id still runs', async () => {
    const service = await start(editRegistrations('anonymous', (body) => ({ ...body, registration_id: undefined })));
    const [shape, assertion] = await runChecks(service, ['registration.anonymous', 'registration.anonymous-assertion']);
    expect(shape).toMatchObject({ id: 'registration.anonymous', outcome: 'fail', message: expect.stringMatching(/registration_id is missing/) });
    expect(assertion).toMatchObject({ id: 'registration.anonymous-assertion', outcome: 'pass' });
  });

  it('an anonymous registration no dialect reads: the checks that need it skip, naming the member', async () => {
    const service = await start(editRegistrations('anonymous', (body) => ({ ...body, id: undefined, registration_id: undefined })));
    const result = await runCheck(service, 'registration.anonymous-assertion');
    expect(result.outcome).toBe('skip');
    expect(result.message).toMatch(/^needs an anonymous registration, which failed: anonymous registration: the answer does not read \(current: id: is required\): POST \/agent\/identity → 200/);
  });

  it('registration.anonymous: no Cache-Control: no-store', async () => {
    const service = await start({
      response: (request, response) => (registering(request, 'anonymous') ? { ...response, headers: { ...response.headers, 'cache-control': 'max-age=60' } } : response),
    });
    const result = await runCheck(service, 'registration.anonymous');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected Cache-Control: no-store, got Cache-Control: max-age=60/);
  });

  it('registration.anonymous-assertion: the assertion is HMAC-signed', async () => {
    const hs256 = (body: any) => {
      const assertion = withHeader(body.identity.assertion, { alg: 'HS256' });
      return { ...body, identity: { ...body.identity, assertion }, identity_assertion: assertion };
    };
    const service = await start(editRegistrations('anonymous', hs256));
    const result = await runCheck(service, 'registration.anonymous-assertion');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/alg: expected an asymmetric algorithm .*got "HS256"/);
  });

  it('registration.service-auth: an identity assertion before the claim', async () => {
    const service = await start(editRegistrations('service_auth', (body) => ({ ...body, identity_assertion: FAKE_ASSERTION })));
    const result = await runCheck(service, 'registration.service-auth');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected no credential before the person claims it, got identity_assertion/);
  });

  it('registration.service-auth: the v0.7 user_code is not six digits', async () => {
    const service = await start(editRegistrations('service_auth', (body) => ({ ...body, claim: { ...body.claim, user_code: '12345' } })));
    const result = await runCheck(service, 'registration.service-auth');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/claim\.user_code is "12345", not six digits/);
  });

  it('registration.invalid-login-hint: a generic invalid_request instead', async () => {
    const service = await start(editRegistrations('service_auth', (body) => (body.error === 'invalid_login_hint' ? { ...body, error: 'invalid_request' } : body)));
    const result = await runCheck(service, 'registration.invalid-login-hint');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected 400 invalid_login_hint, got POST \/agent\/identity → 400 .*invalid_request/);
  });

  it('registration.same-shape: the answer tells that the address has an account', async () => {
    // The person who signs in (and so has an account) is conformance-agent-…; `nobody` never does.
    const hasAccount = (request: ProxiedRequest) => String(bodyOf(request).login_hint).startsWith('conformance-agent-');
    const service = await start({
      response: (request, response) =>
        registering(request, 'service_auth') && hasAccount(request) ? editJson(response, (body) => ({ ...body, account_exists: true })) : response,
    });
    const result = await runCheck(service, 'registration.same-shape');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/only with an account: account_exists; only without: nothing/);
  });

  it('registration.identity-assertion: the exchange holds only the pre-claim scope', async () => {
    // Only assertions of ID-JAG registrations carry the person's email.
    const ofIdJagRegistration = (request: ProxiedRequest) => {
      const assertion = bodyOf(request).assertion;
      return typeof assertion === 'string' && 'email' in JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8') || '{}');
    };
    const service = await start(
      {
        response: (request, response) =>
          pathOf(request) === '/oauth2/token' && response.status === 200 && ofIdJagRegistration(request) ? editJson(response, (body) => ({ ...body, scope: 'notes.read' })) : response,
      },
      { provider: 'trusted' },
    );
    const result = await runCheck(service, 'registration.identity-assertion', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected the post-claim scope "notes.read notes.write", got "notes.read"/);
  });

  it('registration.identity-assertion-login-required: no WWW-Authenticate challenge', async () => {
    const service = await start(
      {
        response: (request, response) => {
          if (!registering(request, 'identity_assertion') || response.status !== 401) return response;
          const { 'www-authenticate': _challenge, ...headers } = response.headers;
          return { ...response, headers };
        },
      },
      { provider: 'trusted' },
    );
    const result = await runCheck(service, 'registration.identity-assertion-login-required', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected WWW-Authenticate: AgentAuth error="login_required", got no WWW-Authenticate header/);
  });

  it('registration.identity-assertion-login-required: no max_age in the body', async () => {
    const service = await start(editRegistrations('identity_assertion', (body) => ({ ...body, max_age: undefined })), { provider: 'trusted' });
    const result = await runCheck(service, 'registration.identity-assertion-login-required', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected max_age \(seconds\) in the body, got undefined/);
  });

  it('registration.identity-assertion-step-up: a silent link (200 with an assertion)', async () => {
    const service = await start(
      {
        response: (request, response) => {
          if (!registering(request, 'identity_assertion') || response.status !== 401) return response;
          const body = JSON.parse(response.body.toString('utf8'));
          if (body.error !== 'interaction_required') return response;
          return jsonAnswer(200, { id: body.id, type: 'identity_assertion', identity: { assertion: FAKE_ASSERTION, expires_at: new Date(Date.now() + 3_600_000).toISOString() } });
        },
      },
      { provider: 'trusted' },
    );
    const result = await runCheck(service, 'registration.identity-assertion-step-up', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected 401 interaction_required, got POST \/agent\/identity → 200/);
  });

  it('registration.identity-assertion-step-up: credentials alongside the ceremony', async () => {
    const service = await start(
      editRegistrations('identity_assertion', (body) => (body.error === 'interaction_required' ? { ...body, identity_assertion: FAKE_ASSERTION } : body)),
      { provider: 'trusted' },
    );
    const result = await runCheck(service, 'registration.identity-assertion-step-up', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected no credential before the person confirms the link, got identity_assertion/);
  });

  it('registration.method-not-enabled: registers by a method the metadata does not advertise', async () => {
    const service = await start({
      response: (request, response) =>
        pathOf(request) === '/.well-known/oauth-authorization-server'
          ? editJson(response, (body) => ({ ...body, agent_auth: { ...body.agent_auth, identity_types_supported: body.agent_auth.identity_types_supported.filter((t: string) => t !== 'service_auth') } }))
          : response,
    });
    const result = await runCheck(service, 'registration.method-not-enabled');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/service_auth registration, which the metadata does not advertise: expected a 4xx with error service_auth_not_enabled or service_auth_registration_disabled, got POST \/agent\/identity → 200/);
  });

  it('registration.untrusted-issuer: the reference code\'s invalid_issuer instead of issuer_not_enabled', async () => {
    const service = await start(editRegistrations('identity_assertion', (body) => (body.error === 'issuer_not_enabled' ? { ...body, error: 'invalid_issuer' } : body)), { provider: 'trusted' });
    const result = await runCheck(service, 'registration.untrusted-issuer', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected a 4xx with error issuer_not_enabled, got POST \/agent\/identity → 400 .*invalid_issuer/);
  });
});

describe('registration checks against the unbroken service', () => {
  it('pass; only method-not-enabled skips, because the demo advertises every method', async () => {
    const service = await start({}, { provider: 'trusted' });
    const results = await runChecks(service, ['registration'], { provider });
    // v0.1's registration checks (src/checks/v01.ts) run with the group: the demo speaks v0.1.
    expect(results.map((r) => r.id)).toEqual([...registrationChecks.map((c) => c.id), 'registration.v01-anonymous', 'registration.v01-api-key']);
    const notPassed = results.filter((r) => r.outcome !== 'pass').map((r) => [r.id, r.outcome, r.message]);
    expect(notPassed).toEqual([['registration.method-not-enabled', 'skip', expect.stringMatching(/advertises both anonymous and service_auth/)]]);
  });

  it('skip the ID-JAG checks, saying how to trust the test provider, when the service does not trust it', async () => {
    // Without a trusted provider the demo does not advertise identity_assertion; this plays a service
    // that does, and trusts other providers than ours.
    const advertised: Breakage = {
      response: (request, response) =>
        pathOf(request) === '/.well-known/oauth-authorization-server'
          ? editJson(response, (body) => ({ ...body, agent_auth: { ...body.agent_auth, identity_types_supported: [...body.agent_auth.identity_types_supported, 'identity_assertion'] } }))
          : response,
    };
    const service = await start(advertised, { provider: 'untrusted' });
    const ids = ['registration.identity-assertion', 'registration.identity-assertion-login-required', 'registration.identity-assertion-step-up'];
    const results = await runChecks(service, ids, { provider });
    expect(results.map((r) => [r.id, r.outcome])).toEqual(ids.map((id) => [id, 'skip']));
    for (const result of results) expect(result.message).toMatch(/does not trust the test provider .*add it to the service's trust list/);
  });
});
